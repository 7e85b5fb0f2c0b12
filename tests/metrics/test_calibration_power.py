"""The calibration's tolerances: honest (about 3× what was measured) and able to tell conventions apart.

An audit of the metrics (2026-12-06) found issue 4's tolerance classes (1e-6 closed form, 1e-3 windowed,
1e-2 for the Octave shims, 2 × the round-off share absolute for Qc) 10²–10⁶× looser than the measured
agreement, so that wrong conventions passed the calibration: Qcb.vifb passed 11 of the 12 MEFB Qcb records,
SSIM.cddfuse with data_range 1 instead of 2 passed 12 of 12, FMI_edge without thinning 18 of 23, FMI_w with
a db4 wavelet 5 of 11, Qc with a 9×9 window or C = (0.01·255)² 10 of 12.  ``calibration.tolerance`` is now
MARGIN (3) × the measured worst per preset (``calibration.MEASURED``, ``KNOWN_DEVIATIONS``,
``QC_SHARE_FACTOR``).  These tests hold those tables to the measurements in ``docs/calibration_summary*.csv``
(written by ``scripts/calibration_summary.py`` with the calibration code; ``test_calibration.py`` and
``test_calibration_nonsquare.py`` check that those files are current) and check that each variant the audit
named now fails several calibration records.

Qc is the exception: halving the share bound did not make its synthetic records discriminating.  On every
synthetic record (and the crops with windows flat at a non-zero level) the absolute bound, the share of such
windows (0.0151 on each 128² triple, 0.017–0.024 on the crops), is as large as a wrong convention's effect:
our own gap to MEFB there is 0.0013–0.0038 absolute (0.0071 on the F = B crop), and a 9×9 window still passes
10 of the 12 square records and 5 of the 8 crops with a value, σ = 2 8 and 5, C = (0.01·255)² 9 and 4,
C = 1e-4 10 and 5 (an audit, 2026-12-06).  The Qc variants below fail only the records without such windows:
the 2 Harvard triples and 2 Harvard crops (held to 1e-9, measured 3.6e-14) and deg_sameAB.  What pins Qc's
window, σ and C on every record is ``test_qc_octave_order.py`` (our Qc code with Octave's summation order
emulated: every MEFB record to ≤ 3.4e-14; those variants fail 13–19 of 21).
"""
from __future__ import annotations

import csv
import json
import math
import re
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metrics import calibration as C

DOCS = Path(__file__).resolve().parents[2] / "docs"
NONSQUARE = json.loads(Path(__file__).with_name("nonsquare_reference.json").read_text())
CROPS = {t["id"]: t for t in NONSQUARE["triples"]}


def _summary_rows() -> list[dict]:
    rows = []
    for name in ("calibration_summary.csv", "calibration_summary_nonsquare.csv"):
        with (DOCS / name).open() as fh:
            rows += [r for r in csv.DictReader(fh) if r["role"] == "target" and r["rel_diff"]]
    return rows


def test_tolerances_are_about_three_times_the_measured_worst() -> None:
    """Every tolerance is MARGIN × the worst relative difference of docs/calibration_summary*.csv (rounded up to
    two digits), or ROUNDOFF where that is smaller; the tables' measured values are the files' (not stale)."""
    worst: dict[tuple[str, str], float] = defaultdict(float)
    tols: dict[tuple[str, str], set[float]] = defaultdict(set)
    qc_ratios = []
    for r in _summary_rows():
        preset, cls = r["preset"], C.triple_class(r["triple"])
        rel = float(r["rel_diff"])
        if math.isinf(rel):
            raise AssertionError(f"{preset} on {r['triple']}: undefined on one side only")
        tols[preset, cls].add(C.tolerance(preset, r["triple"]))
        if preset in C.ROUNDOFF_BOUND and (m := re.search(r"or ([0-9.e+-]+) absolute", r["tolerance"])) \
                and r["abs_diff"]:
            qc_ratios.append(float(r["abs_diff"]) / float(m.group(1)))
            continue  # held by the absolute bound, checked below
        worst[preset, cls] = max(worst[preset, cls], rel)
    measured = defaultdict(float)
    for (preset, cls), w in worst.items():
        if (preset, cls) in C.KNOWN_DEVIATIONS:
            table = C.KNOWN_DEVIATIONS[preset, cls][0]
            assert table / 1.01 <= w <= table * 1.01, f"KNOWN_DEVIATIONS[{preset}, {cls}] = {table:g}, files {w:.4g}"
            explicit = C.KNOWN_DEVIATIONS[preset, cls][2] if len(C.KNOWN_DEVIATIONS[preset, cls]) > 2 else None
            if explicit is None:
                (tol,) = tols[preset, cls]
                assert 2.9 * w <= tol <= 3.5 * w, f"{preset} on {cls}: tolerance {tol:g} for a measured {w:.3g}"
        else:
            measured[preset] = max(measured[preset], w)
    for preset, w in measured.items():
        tol = C.tolerance(preset)
        if preset in C.MEASURED:
            table = C.MEASURED[preset][0]
            assert table / 1.01 <= w <= table * 1.01, f"MEASURED[{preset}] = {table:g}, files {w:.4g}"
            assert 2.9 * w <= tol <= 3.5 * w, f"{preset}: tolerance {tol:g} for a measured {w:.3g}"
        else:
            assert tol == C.ROUNDOFF and w <= C.ROUNDOFF / C.MARGIN, f"{preset}: measured {w:.3g}, held to {tol:g}"
    assert set(C.MEASURED) <= set(measured), "MEASURED lists presets without a record"
    # Qc: |ours − MEFB| ≤ 0.344 × the round-off share; the bound (QC_SHARE_FACTOR × the share) is ~3× that
    assert len(qc_ratios) >= 14 and 2.5 <= 1 / max(qc_ratios) <= 4, f"Qc: worst |Δ|/bound {max(qc_ratios):.3f}"


def _vifp_sum(F, A, B, first: int) -> float:
    """VIFp_sum as ``functional.visual`` computes it, decimating from sample ``first`` (0: the reference)."""
    from fusionbench.metrics.functional._filters import gaussian_1d
    from fusionbench.metrics.functional._vif_kernels import gsm_log_args
    from fusionbench.metrics.functional.visual import _sep_valid

    stack = np.stack([A, B, F]).astype(np.float64)
    stack -= stack.mean(axis=(-2, -1), keepdims=True)
    num, den = np.zeros(2), np.zeros(2)
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        g = gaussian_1d(n, n / 5.0)
        if scale > 1:
            stack = np.ascontiguousarray(_sep_valid(stack, g)[..., first::2, first::2])
        mu = _sep_valid(stack, g)
        d, mu_d = stack[2], mu[2]
        s11 = np.stack([_sep_valid(stack[i] * stack[i], g) - mu[i] * mu[i] for i in range(2)])
        s12 = np.stack([_sep_valid(stack[i] * d, g) - mu[i] * mu_d for i in range(2)])
        s22 = _sep_valid(d * d, g) - mu_d * mu_d
        n_, d_ = np.empty_like(s11), np.empty_like(s11)
        gsm_log_args(s11, s22, s12, 2.0, n_, d_)
        num += np.log10(n_).sum(axis=(1, 2))
        den += np.log10(d_).sum(axis=(1, 2))
    return float((num / den).sum())


def _fmi(F, A, B, feature) -> float:
    from fusionbench.metrics.functional._fmi_lanes import fmi_mean

    ff, fa, fb = (np.ascontiguousarray(feature(x.astype(np.float64))) for x in (F, A, B))
    return fmi_mean(ff, fa, fb, 3)


def _edges(thin: bool):
    from fusionbench.metrics.functional import _edge

    def feature(x):
        if thin:
            return _edge.sobel_edge(x).astype(np.float64)
        s = np.empty_like(x)
        _edge._strength(np.ascontiguousarray(x / 255.0), s)
        return (s > 4 * s.mean()).astype(np.float64)
    return feature


def _wavelet(wavelet):
    import pywt

    from fusionbench.metrics.functional.feature import _dmey102, _rerange

    def feature(x):
        cA, (cH, cV, cD) = pywt.dwt2(x, _dmey102() if wavelet == "dmey102" else wavelet, mode="symmetric")
        return _rerange(np.block([[cA, cH], [cV, cD]]))
    return feature


def _qc(window=(7, 1.5), c=2e-16):
    from fusionbench.metrics.functional import structural as S
    from fusionbench.metrics.functional._ssim_fast import ssim_formula

    def qc(F, A, B):
        f, A, B = (x.astype(np.float64) for x in (F, A, B))
        (sa, caf), (sb, cbf) = ((ssim_formula(*st, c, c), st[4]) for st in (S._stats(X, f, window) for X in (A, B)))
        with np.errstate(all="ignore"):
            lam = caf / (caf + cbf)
            s = lam * sa + (1 - lam) * sb
        s = np.where(lam > 1, 1.0, np.where(lam < 0, 0.0, s))
        return float(s[~np.isnan(s)].mean())
    return qc


def _ssim_cddfuse(data_range):
    from fusionbench.metrics.functional.structural import _ssim_skimage019

    return lambda F, A, B: _ssim_skimage019(*(x.astype(np.float64) for x in (F, A, B)), data_range=data_range)


def _preset(name):
    return lambda F, A, B: M.compute(name, F, A, B)


# (preset whose records are used, the variant's name, the variant, the reference form: the same code with the
# documented convention, which must give our value bit for bit, so that the variant differs in that one thing)
VARIANTS = [
    ("Qcb.mefb", "Qcb.vifb (no im2double before the stretch)", _preset("Qcb.vifb"), None),
    ("Qcb.vifb", "Qcb.mefb (im2double before the stretch)", _preset("Qcb.mefb"), None),
    ("SSIM.cddfuse", "data_range=1", _ssim_cddfuse(1.0), _ssim_cddfuse(2.0)),
    ("SSIM.cddfuse", "data_range=0.5", _ssim_cddfuse(0.5), _ssim_cddfuse(2.0)),
    ("VIFp_sum.tang", "decimation from the 2nd sample", lambda F, A, B: _vifp_sum(F, A, B, 1),
     lambda F, A, B: _vifp_sum(F, A, B, 0)),
    ("VIFp_sum.cddfuse", "decimation from the 2nd sample", lambda F, A, B: _vifp_sum(F, A, B, 1),
     lambda F, A, B: _vifp_sum(F, A, B, 0)),
    ("FMI_edge.mefb", "no thinning", lambda F, A, B: _fmi(F, A, B, _edges(False)),
     lambda F, A, B: _fmi(F, A, B, _edges(True))),
    ("FMI_edge.tang", "no thinning", lambda F, A, B: _fmi(F, A, B, _edges(False)),
     lambda F, A, B: _fmi(F, A, B, _edges(True))),
    ("FMI_w.tang", "PyWavelets' 62-tap dmey", lambda F, A, B: _fmi(F, A, B, _wavelet("dmey")),
     lambda F, A, B: _fmi(F, A, B, _wavelet("dmey102"))),
    ("FMI_w.tang", "db4", lambda F, A, B: _fmi(F, A, B, _wavelet("db4")),
     lambda F, A, B: _fmi(F, A, B, _wavelet("dmey102"))),
    ("Qc.mefb", "Gaussian 9x9, σ=1.5", _qc(window=(9, 1.5)), _qc()),
    ("Qc.mefb", "Gaussian 7x7, σ=2", _qc(window=(7, 2.0)), _qc()),
    ("Qc.mefb", "C1=C2=(0.01·255)²", _qc(c=(0.01 * 255) ** 2), _qc()),
    ("Qc.mefb", "C1=C2=1e-4", _qc(c=1e-4), _qc()),
    ("Qc.mefb", "sources swapped", lambda F, A, B: M.compute("Qc", F, B, A), None),
]


@pytest.mark.calibration
@pytest.mark.parametrize(("preset", "name", "variant", "reference_form"), VARIANTS,
                         ids=[f"{p}-{n}" for p, n, _, _ in VARIANTS])
def test_calibration_tells_the_variant_apart(preset, name, variant, reference_form, metrics_ref) -> None:
    """A wrong convention fails at least 3 of the preset's calibration records (square and non-square)."""
    ref_dir, data = metrics_ref
    records = [(c, C.triple_images(ref_dir, data, c.triple)) for c in C.cases(data) if c.preset == preset]
    records += [(c, C.crop_triple_images(ref_dir, data, CROPS[c.triple])) for c in C.cases(NONSQUARE)
                if c.preset == preset and math.isfinite(c.value)]
    assert len(records) >= 11
    failed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.UndefinedMetricWarning)
        for case, (F, A, B) in records:
            if reference_form is not None and case is records[0][0]:  # the variant's code, with our
                assert reference_form(F, A, B) == M.compute(preset, F, A, B), case.triple  # convention, is ours
            v = variant(F, A, B)
            if not C.within_tolerance(v, case.value, case.tol, C.absolute_bound(preset, F, A, B)):
                failed.append(case.triple)
    assert len(failed) >= 3, f"{preset} with {name} passes {len(records) - len(failed)} of {len(records)} records"
