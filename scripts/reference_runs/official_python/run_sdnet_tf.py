"""Run the official SDNet medical ``test.py`` (HaoZhang1018/SDNet @ bf6a2ee), unchanged, under TF 2.15.

    python run_sdnet_tf.py SDNET/Medical WEIGHTS_DIR OUT_DIR FUNCTION.png:STRUCTURE.png[@y0,x0,h,w] ...

``test.py`` reads ``./checkpoint/Medical.model-29`` and the numbered images in
``Test_Function/`` (PET/SPECT Y, or CT) and ``Test_Structure/`` (MRI) of the working
directory, and writes ``result/epoch29/<n>.png`` with ``scipy.misc.imsave``.  This
script builds that working directory in ``OUT_DIR/work`` (the checkpoint files
linked, each case's two images copied, cropped if asked), runs ``test.py`` there
with the stand-ins of ``legacy_shims.py``, and writes ``OUT_DIR/cases.csv``
(n, the inputs, the crop).  Every result is also kept unrounded:
``result/epoch29/<n>.png.raw.npy`` is ``test.py``'s ``result`` (the network's
output × 127.5 + 127.5) before ``imsave`` stretches it.
"""
from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import legacy_shims  # noqa: E402
from _cases import link_files, write_manifest, write_pairs  # noqa: E402


def main(argv: list[str]) -> None:
    medical, weights, out = Path(argv[0]).resolve(), Path(argv[1]).resolve(), Path(argv[2]).resolve()
    work = out / "work"
    link_files(weights, "Medical.model-29.*", work / "checkpoint")
    rows = write_pairs(argv[3:], lambda n: work / "Test_Function" / f"{n}.png",
                       lambda n: work / "Test_Structure" / f"{n}.png", ("function", "structure"))
    write_manifest(out / "cases.csv", rows)
    legacy_shims.install()
    os.chdir(work)
    runpy.run_path(str(medical / "test.py"), run_name="__main__")


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(sys.argv[1:])
