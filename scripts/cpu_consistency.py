"""Do the metric values depend on the CPU's instruction set?  (issue 14, point 3)

Runs every default preset (the ``all`` group, 34 today) and every preset the
calibration test checks, on the ``metrics_ref`` triples and on a few Harvard
pairs fused by average and maximum, once per *setting*: a subprocess whose
environment makes numpy, numba and OpenBLAS take the code paths another x86
CPU would take (numpy's runtime dispatch via ``NPY_DISABLE_CPU_FEATURES``,
numba's code generation via ``NUMBA_CPU_NAME``, OpenBLAS's kernels via
``OPENBLAS_CORETYPE``).  It prints, per preset, the largest relative
difference to the ``native`` setting over all triples, and whether the values
are bit-identical.  scipy's pocketfft FFTs have no runtime dispatch (their
vector width is fixed when the wheel is built), so they take the same path on
every x86-64 CPU.

    python scripts/cpu_consistency.py                 # all settings, table on stdout
    python scripts/cpu_consistency.py --json out.json # also the per-preset figures as JSON
    python scripts/cpu_consistency.py --settings native,avx2
    python scripts/cpu_consistency.py --presets FMI --settings native,avx2   # quick: presets starting with FMI

Read ``docs/cpu_independence.md`` for what the figures mean.  Assets are read
from ``$FUSIONBENCH_SHARED`` (default: ``../shared`` beside the checkout).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FUSIONBENCH_SHARED", REPO.parent / "shared"))

# numpy >= 2.4 feature groups (``numpy.show_runtime()``); numba/OpenBLAS names of the matching cores
_NO_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"
SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    # numpy without AVX-512 (its SVML exp/log/pow... and AVX-512 loops): an AVX2 machine's numpy
    "numpy-avx2": {"NPY_DISABLE_CPU_FEATURES": _NO_AVX512},
    # numba kernels compiled for Haswell (AVX2, FMA); NUMBA_CPU_FEATURES empty: the CPU's own features only (without
    # it numba adds the host's, AVX-512 included, whatever CPU is named: until session 29 these settings did)
    "numba-haswell": {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""},
    # the whole AVX2 stand-in: numpy, numba and OpenBLAS as on a Haswell/Zen AVX2 machine
    "avx2": {"NPY_DISABLE_CPU_FEATURES": _NO_AVX512, "NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "",
             "OPENBLAS_CORETYPE": "Haswell"},
    # an x86-64-v2 machine (SSE4.2, no AVX, no FMA)
    "sse4": {"NPY_DISABLE_CPU_FEATURES": "X86_V3 " + _NO_AVX512, "NUMBA_CPU_NAME": "nehalem", "NUMBA_CPU_FEATURES": "",
             "OPENBLAS_CORETYPE": "Nehalem"},
}

HARVARD = [("MRI-CT", "MRI", "CT", "16003"), ("MRI-PET", "MRI", "PET", "25016"), ("MRI-SPECT", "MRI", "SPECT", "10007")]


def _triples() -> dict[str, tuple]:
    """id -> (F, A, B) uint8: the metrics_ref triples and average/maximum fusions of three Harvard pairs."""
    import numpy as np

    from fusionbench.colour import luma_uint8
    from fusionbench.io import load_image
    from fusionbench.metrics import calibration as C

    out = {}
    ref_dir = SHARED / "metrics_ref"
    ref = C.load_reference(ref_dir)
    for t in ref["triples"]:
        out[t["id"]] = C.triple_images(ref_dir, ref, t["id"])
    for task, ma, mb, stem in HARVARD:
        folder = SHARED / "data" / "harvard" / task
        a = luma_uint8(load_image(folder / ma / f"{stem}.png"))
        b = luma_uint8(load_image(folder / mb / f"{stem}.png"))
        avg = ((a.astype(np.int64) + b + 1) // 2).astype(np.uint8)
        out[f"harvard_{task}_{stem}_avg"] = (avg, a, b)
        out[f"harvard_{task}_{stem}_max"] = (np.maximum(a, b), a, b)
    return out


def presets() -> list[str]:
    """The ``all`` group and every calibrated preset, sorted (only those starting with a
    ``$FUSIONBENCH_CPU_PRESETS`` prefix, comma-separated, when set: ``--presets``)."""
    from fusionbench.metric_registry import resolve_metrics
    from fusionbench.metrics import calibration as C

    names = set(resolve_metrics("all"))
    ref_file = SHARED / "metrics_ref" / "reference_values.json"
    names |= {c.preset for c in C.cases(json.loads(ref_file.read_text()))}
    prefixes = tuple(p.strip() for p in os.environ.get("FUSIONBENCH_CPU_PRESETS", "").split(",") if p.strip())
    return sorted(n for n in names if not prefixes or n.startswith(prefixes))


def worker(out_path: Path) -> None:
    """Compute every preset on every triple in this process; write {preset: {triple: float.hex}}."""
    import fusionbench.metrics as M

    res: dict[str, dict[str, str]] = {}
    triples = _triples()
    for name in presets():
        res[name] = {}
        for tid, (f, a, b) in triples.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res[name][tid] = float(M.compute(name, f, a, b)).hex()
    out_path.write_text(json.dumps(res))


def run_setting(name: str, tmp: Path) -> dict[str, dict[str, float]]:
    env = dict(os.environ)
    env.update(SETTINGS[name])
    path = tmp / f"{name}.json"
    subprocess.run([sys.executable, __file__, "--worker", str(path)], env=env, check=True)
    raw = json.loads(path.read_text())
    return {p: {t: float.fromhex(v) for t, v in d.items()} for p, d in raw.items()}


def rel(x: float, y: float) -> float:
    if x == y or (math.isnan(x) and math.isnan(y)):
        return 0.0
    if not (math.isfinite(x) and math.isfinite(y)):
        return math.inf
    return abs(x - y) / max(abs(x), abs(y), 1e-300)


def compare(results: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict]:
    """Per preset: max relative difference to 'native' per setting, the worst triple, and bit-identity."""
    base = results["native"]
    table = {}
    for preset, vals in base.items():
        row = {"max_rel": 0.0, "worst": None, "bit_identical": True, "per_setting": {}}
        for setting, res in results.items():
            if setting == "native":
                continue
            worst, worst_t = 0.0, None
            for t, v in vals.items():
                w = res[preset][t]
                if v.hex() != w.hex() and not (math.isnan(v) and math.isnan(w)):
                    row["bit_identical"] = False
                d = rel(v, w)
                if d > worst:
                    worst, worst_t = d, t
            row["per_setting"][setting] = worst
            if worst > row["max_rel"]:
                row["max_rel"], row["worst"] = worst, f"{setting}:{worst_t}"
        table[preset] = row
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma list of settings (first must be native)")
    ap.add_argument("--json", type=Path, help="write the comparison as JSON here")
    ap.add_argument("--presets", default="", help="quick mode: only presets starting with one of these comma-separated "
                    "prefixes (e.g. FMI,Qp)")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.presets:
        os.environ["FUSIONBENCH_CPU_PRESETS"] = args.presets  # read by the workers (they inherit it)
    if args.worker:
        worker(args.worker)
        return 0
    if not (SHARED / "metrics_ref" / "reference_values.json").is_file():
        print(f"cpu_consistency: metrics_ref not found under {SHARED} (set FUSIONBENCH_SHARED)", file=sys.stderr)
        return 2
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    if names[0] != "native" or any(s not in SETTINGS for s in names):
        ap.error(f"settings must start with native and be among {', '.join(SETTINGS)}")
    with tempfile.TemporaryDirectory() as tmp:
        results = {s: run_setting(s, Path(tmp)) for s in names}
    table = compare(results)
    cols = names[1:]
    print(f"{'preset':<22} {'bit-exact':>9} " + " ".join(f"{c:>13}" for c in cols) + "  worst")
    for preset, row in table.items():
        print(f"{preset:<22} {'yes' if row['bit_identical'] else 'no':>9} "
              + " ".join(f"{row['per_setting'][c]:13.2e}" for c in cols) + f"  {row['worst'] or ''}")
    worst = max(r["max_rel"] for r in table.values())
    print(f"\n{len(table)} presets x {len(next(iter(results['native'].values())))} triples; "
          f"max relative difference over all settings: {worst:.2e}")
    if args.json:
        args.json.write_text(json.dumps({"settings": {s: SETTINGS[s] for s in names}, "presets": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
