"""Write the metric calibration summary: our value beside each reference value.

Usage::

    python scripts/calibration_summary.py [--ref ../shared/metrics_ref] [--out docs/calibration_summary.csv]
    python scripts/calibration_summary.py --nonsquare     # -> docs/calibration_summary_nonsquare.csv

One row per record of ``reference_values.json`` (with ``--nonsquare``: of
``tests/metrics/nonsquare_reference.json``, the crops): reference, its label, the
preset we map it to (targets vifb/mefb/tang/cddfuse; cslib is listed as a
cross-check against our default or closest preset), the triple, both values,
the absolute and relative difference, the tolerance and whether it is met.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import warnings
from pathlib import Path

import fusionbench.metrics as M
from fusionbench.metric_registry import list_metrics
from fusionbench.metrics import calibration as C

REPO = Path(__file__).resolve().parents[1]

# cslib cross-check: its function → our closest preset (not a calibration target)
CSLIB = {
    "en_metric": "EN", "sd_metric": "SD", "sf_metric": "SF", "ag_metric": "AG", "cc_metric": "CC",
    "scd_metric": "SCD", "mi_metric": "MI.cddfuse", "psnr_metric": "PSNR", "q_abf_metric": "Qabf",
    "n_abf_metric": "Nabf", "nmi_metric": "NMI", "q_ncie_metric": "Qncie", "ce_metric": "CE", "ei_metric": "EI",
    "te_metric": "TE.mefb", "q_cb_metric": "Qcb", "q_cv_metric": "Qcv", "q_c_metric": "Qc", "q_y_metric": "Qy",
    "q_s_metric": "Q_S", "q_w_metric": "Q_W", "q_e_metric": "Q_E", "viff_metric": "VIFF", "vif_metric": "VIFF",
    "fmi_p_metric": "FMI_pixel", "fmi_d_metric": "FMI_dct", "fmi_w_metric": "FMI_w", "ms_ssim_metric": "MS_SSIM",
}


NONSQUARE = REPO / "tests" / "metrics" / "nonsquare_reference.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", type=Path, default=REPO.parent / "shared" / "metrics_ref")
    ap.add_argument("--nonsquare", action="store_true", help="the crops of " + str(NONSQUARE.relative_to(REPO)))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    ref = C.load_reference(args.ref)
    if args.nonsquare:
        data = json.loads(NONSQUARE.read_text())
        crops = {t["id"]: t for t in data["triples"]}
        records = data["records"]
        images = lambda triple: C.crop_triple_images(args.ref, ref, crops[triple])  # noqa: E731
        out = args.out or REPO / "docs" / "calibration_summary_nonsquare.csv"
    else:
        records = ref["records"]
        images = lambda triple: C.triple_images(args.ref, ref, triple)  # noqa: E731
        out = args.out or REPO / "docs" / "calibration_summary.csv"
    known = set(list_metrics())
    rows = []
    for r in records:
        target = r["reference"] in C.TARGETS
        preset = C.preset_for(r["reference"], r["metric"]) if target else CSLIB.get(r["metric"])
        if isinstance(r["value"], list):
            continue
        theirs = C.reference_value(r, preset)
        row = {"reference": r["reference"], "label": r["metric"], "role": "target" if target else "cross-check",
               "preset": preset or "", "triple": r["triple"], "reference_value": "", "ours": "",
               "abs_diff": "", "rel_diff": "", "tolerance": "", "ok": "", "note": ""}
        if theirs is None:
            row["note"] = (r.get("error") or "no value")[:120]
            rows.append(row)
            continue
        row["reference_value"] = repr(float(theirs))
        if not preset or preset not in known:
            row["note"] = "not mapped"
            rows.append(row)
            continue
        if reason := C.NOT_COMPARABLE.get((preset, r["triple"])):
            row["note"] = f"not comparable: {reason}"[:200]
            rows.append(row)
            continue
        F, A, B = images(r["triple"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = M.compute(preset, F, A, B)
        rel = C.relative_difference(ours, float(theirs))
        row.update(ours=repr(ours), rel_diff=f"{rel:.3e}",
                   abs_diff="" if not (math.isfinite(ours) and math.isfinite(theirs)) else f"{abs(ours - theirs):.3e}")
        if target:
            tol = C.tolerance(preset, r["triple"])
            bound = C.absolute_bound(preset, F, A, B)
            row.update(tolerance=f"{tol:g}" + (f" or {bound:.3g} absolute" if bound else ""),
                       ok=str(C.within_tolerance(ours, float(theirs), tol, bound)))
            if C.known_deviation(preset, r["triple"]):
                row["note"] = "known deviation (see docs/metrics.md)"
            elif bound:
                row["note"] = "absolute bound from the triple's round-off windows (see docs/metrics.md)"
        rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tgt = [r for r in rows if r["role"] == "target" and r["ok"]]
    bad = [r for r in tgt if r["ok"] != "True"]
    print(f"{len(rows)} records, {len(tgt)} calibrated targets, {len(bad)} outside tolerance -> {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
