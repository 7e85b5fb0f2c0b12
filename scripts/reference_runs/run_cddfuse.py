"""Score the crop triples with CDDFuse's ``utils/Evaluator.py``, read as its ``image_read_cv2(path, 'GRAY')``.

Usage: python run_cddfuse.py CDDFUSE_UTILS_DIR TRIPLES_DIR id1,id2,...   (an environment with numpy,
scipy, scikit-image, scikit-learn and opencv; not fusionbench's).  Prints reference,label,triple,value.
``SSIM@skimage0.19-semantics``: the repository's pinned skimage 0.19 took a float image's data range
from its dtype (−1..1, i.e. 2); current skimage requires it, so it is passed explicitly.
"""
import functools
import sys

if len(sys.argv) < 4 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read
    raise SystemExit(__doc__)
sys.path.insert(0, sys.argv[1])
import Evaluator as E  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

for tid in sys.argv[3].split(","):
    F, A, B = (E.image_read_cv2(f"{sys.argv[2]}/{tid}_{k}.png", "GRAY") for k in "FAB")
    ev = E.Evaluator
    calls = {
        "EN": lambda: ev.EN(F), "SD": lambda: ev.SD(F), "SF": lambda: ev.SF(F), "AG": lambda: ev.AG(F),
        "MI": lambda: ev.MI(F, A, B), "MSE": lambda: ev.MSE(F, A, B), "CC": lambda: ev.CC(F, A, B),
        "PSNR": lambda: ev.PSNR(F, A, B), "SCD": lambda: ev.SCD(F, A, B), "VIFF": lambda: ev.VIFF(F, A, B),
        "Qabf": lambda: ev.Qabf(F, A, B), "VIFF(module-level fn)": lambda: E.VIFF(F, A, B),
    }
    for label, fn in calls.items():
        print(f"cddfuse,{label},{tid},{float(fn())!r}")
    E.ssim = functools.partial(structural_similarity, data_range=2.0)
    print(f"cddfuse,SSIM@skimage0.19-semantics,{tid},{float(ev.SSIM(F, A, B))!r}")
    E.ssim = structural_similarity
