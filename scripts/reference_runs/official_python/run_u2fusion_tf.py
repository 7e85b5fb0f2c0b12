"""Run the official U2Fusion ``test_main.py`` (hanna-xu/U2Fusion @ 0a58821), unchanged, under TF 2.15.

    python run_u2fusion_tf.py U2FUSION_REPO WEIGHTS_DIR OUT_DIR SOURCE1.png:SOURCE2.png[@y0,x0,h,w] ...

``test_main.py`` restores ``./model/model.ckpt``, fuses every image of ``path1``
with the image of the same name in ``path2`` (its medical setting: ``pet/`` and
``mri/``; IR-VIS: ``vis/`` and ``ir/``) and saves ``output_path/<name>.png``
with ``scipy.misc.toimage(output, cmin=0, cmax=output.max())``.  This script
imports it from the repository with the stand-ins of ``legacy_shims.py``,
builds a working directory (``OUT_DIR/work``: ``model/`` linked to the weights,
each case's two images copied as ``source1/<n>.png`` and ``source2/<n>.png``,
cropped if asked), points the module's ``path1``, ``path2`` and ``output_path``
there and calls its ``main()``.  Results: ``OUT_DIR/work/results/<n>.png`` and,
unrounded, ``<n>.png.raw.npy`` (the array handed to ``toimage``); ``OUT_DIR/cases.csv``.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import legacy_shims  # noqa: E402
from _cases import link_files, write_manifest, write_pairs  # noqa: E402


def main(argv: list[str]) -> None:
    repo, weights, out = Path(argv[0]).resolve(), Path(argv[1]).resolve(), Path(argv[2]).resolve()
    work = out / "work"
    link_files(weights, "model.ckpt.*", work / "model")
    rows = write_pairs(argv[3:], lambda n: work / "source1" / f"{n}.png",
                       lambda n: work / "source2" / f"{n}.png", ("source1", "source2"))
    write_manifest(out / "cases.csv", rows)
    legacy_shims.install()
    sys.path.insert(0, str(repo))
    os.chdir(work)
    test_main = importlib.import_module("test_main")
    test_main.path1 = str(work / "source1") + "/"
    test_main.path2 = str(work / "source2") + "/"
    test_main.output_path = str(work / "results") + "/"
    test_main.main()


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(sys.argv[1:])
