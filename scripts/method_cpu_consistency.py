"""Do the fused images depend on the CPU's instruction set?  (the methods' twin of ``cpu_consistency.py``)

Fuses a few pairs with every available registered method once per *setting*, each setting a fresh
subprocess whose environment makes numpy, numba, OpenBLAS and torch's three kernel families (oneDNN, MKL,
ATen) take the code paths another x86 CPU would take (``docs/cpu_independence.md``), and compares every
fused uint8 image with the ``native`` one: identical, or how many values differ and by how much.

    FUSIONBENCH_HOME=... python scripts/method_cpu_consistency.py                  # native vs avx2
    FUSIONBENCH_HOME=... python scripts/method_cpu_consistency.py --settings native,avx2,sse4 --methods 'mdl*,cnn'

Methods whose weights are not in ``$FUSIONBENCH_HOME`` are reported as unavailable.  The pairs: three
Harvard pairs (MRI-CT 16003, MRI-PET 25016, MRI-SPECT 10007) and a 97×131 crop of TNO 01, from
``$FUSIONBENCH_SHARED`` (default ``../shared`` beside the checkout).
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cpu_consistency import SETTINGS as METRIC_SETTINGS

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FUSIONBENCH_SHARED", REPO.parent / "shared"))

#: the stand-ins of ``cpu_consistency.py`` (numpy, numba, OpenBLAS) with torch's three kernel families held to the
#: same instruction set (``docs/cpu_independence.md``, "The deep methods")
_TORCH = {"avx2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
          "sse4": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"}}
SETTINGS: dict[str, dict[str, str]] = {name: {**METRIC_SETTINGS[name], **_TORCH.get(name, {})}
                                       for name in ("native", "avx2", "sse4")}

#: (name, task, other image, MRI/visible image, crop y0, x0, h, w or None), images relative to the shared folder
PAIRS = (
    ("ct16003", "MRI-CT", "data/harvard/MRI-CT/CT/16003.png", "data/harvard/MRI-CT/MRI/16003.png", None),
    ("pet25016", "MRI-PET", "data/harvard/MRI-PET/PET/25016.png", "data/harvard/MRI-PET/MRI/25016.png", None),
    ("spect10007", "MRI-SPECT", "data/harvard/MRI-SPECT/SPECT/10007.png", "data/harvard/MRI-SPECT/MRI/10007.png", None),
    ("tno01_97x131", "IR-VIS", "data/tno/ir/01.png", "data/tno/vis/01.png", (200, 300, 97, 131)),
)

_CHILD = r"""
import json, sys
import numpy as np
import fusionbench
from fusionbench.io import load_image
from fusionbench.method_registry import create_method

shared, methods, pairs, out = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
images = {}
for name, task, other, mri, crop in pairs:
    a, b = load_image(f"{shared}/{mri}"), load_image(f"{shared}/{other}")
    if crop:
        y0, x0, h, w = crop
        a, b = a[y0:y0 + h, x0:x0 + w], b[y0:y0 + h, x0:x0 + w]
    images[name] = (task, a, b)
result = {}
for method in methods:
    m = create_method(method)
    if m.unavailable_reason():
        result[method] = "unavailable"
        continue
    fused = {}
    for name, (task, a, b) in images.items():
        if m.info.tasks and task not in m.info.tasks:
            continue
        fused[name] = fusionbench.fuse(m, a, b)
    np.savez(f"{out}/{method}.npz", **fused)
    result[method] = sorted(fused)
print(json.dumps(result))
"""


def _run(setting: str, methods: list[str], folder: Path) -> dict:
    env = dict(os.environ, **SETTINGS[setting])
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", _CHILD, str(SHARED), json.dumps(methods), json.dumps(PAIRS),
                           str(folder)], env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from fusionbench.method_registry import list_methods

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", default="native,avx2")
    parser.add_argument("--methods", default="*", help="fnmatch patterns, comma-separated (default: every method)")
    parser.add_argument("--json", default=None, help="also write the per-method figures here")
    args = parser.parse_args(argv)
    patterns = args.methods.split(",")
    methods = [m for m in list_methods() if any(fnmatch.fnmatch(m, p) for p in patterns)]
    settings = args.settings.split(",")
    if settings[0] != "native":
        settings.insert(0, "native")
    report: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {s: _run(s, methods, Path(tmp) / s) for s in settings}
        for method in methods:
            if runs["native"][method] == "unavailable":
                report[method] = {s: "unavailable" for s in settings[1:]}
                continue
            native = dict(np.load(Path(tmp) / "native" / f"{method}.npz"))
            digest = hashlib.sha256(b"".join(native[n].tobytes() for n in sorted(native))).hexdigest()[:12]
            report[method] = {"native_sha256": digest}
            for s in settings[1:]:
                other = dict(np.load(Path(tmp) / s / f"{method}.npz"))
                differ = total = worst = 0
                for name, image in native.items():
                    d = np.abs(image.astype(int) - other[name].astype(int))
                    differ += int((d > 0).sum())
                    total += d.size
                    worst = max(worst, int(d.max()))
                report[method][s] = "identical" if differ == 0 else f"{differ} of {total} values differ, max {worst}"
    width = max(len(m) for m in methods)
    print(f"{'method':<{width}}  " + "  ".join(f"{s:<32}" for s in settings[1:]))
    for method in methods:
        print(f"{method:<{width}}  " + "  ".join(f"{report[method][s]:<32}" for s in settings[1:]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
