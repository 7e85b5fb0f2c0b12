"""Metric presets: public name → implementation + frozen options + metadata.

Modelled on pyiqa's ``DEFAULT_CONFIGS``.  ``NAME`` is the default convention
(``metrics_conventions.md`` §6); ``NAME.vifb``, ``NAME.mefb``, ``NAME.tang``
and ``NAME.cddfuse`` reproduce those reference implementations, bugs included
(the ``convention`` line says so).  Each ``_add`` line registers its preset
directly in the core registry (``fusionbench.metric_registry.METRICS``, the one
store of presets: name, callable, :class:`MetricInfo`); ``PRESETS`` is a
read-only view of it.

Groups: ``paper`` (the seven of the founding paper), ``standard`` (the paper
seven plus the standard fusion set) and ``all`` (every default-convention
preset).  Profile presets belong to no group; ask for them by name.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from fusionbench.metric_registry import METRICS, MetricInfo, register_metric

from . import functional as F

INF = float("inf")
PAPER = ("paper", "standard", "all")
STANDARD = ("standard", "all")
ALL = ("all",)
PROFILE: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preset:
    """The registered callable of one preset: the function and its frozen options.

    Its metadata (groups, range, convention...) is the registry entry's :class:`MetricInfo`.
    """

    name: str
    fn: Callable[..., float]
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self, fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None, *,
                 data_range: float | None = None) -> float:
        return float(self.fn(fused, a, b, data_range=data_range, **self.options))

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"<metric preset {self.name}: {self.fn.__name__}({opts})>"


class _PresetView(Mapping[str, Preset]):
    """Read-only ``name -> Preset`` view of the presets in the metric registry (the one store)."""

    def _presets(self) -> dict[str, Preset]:
        return {e.name: e.obj for e in METRICS.entries() if isinstance(e.obj, Preset)}

    def __getitem__(self, name: str) -> Preset:
        return self._presets()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._presets())

    def __len__(self) -> int:
        return len(self._presets())


#: every registered preset, read from the registry (kept for ``fusionbench.metrics.PRESETS`` users)
PRESETS: Mapping[str, Preset] = _PresetView()


def _add(name: str, fn: Callable[..., float], *, options: dict[str, Any] | None = None,
         groups: tuple[str, ...] | None = None, **meta: Any) -> None:
    """Register preset ``name`` = ``fn`` with frozen ``options`` and its :class:`MetricInfo` fields."""
    profile = name.split(".", 1)[1] if "." in name else "default"
    if groups is None:
        groups = ALL if profile == "default" else PROFILE
    opts = dict(options or {})
    register_metric(name, Preset(name, fn, opts),
                    MetricInfo(name=name, groups=groups, profile=profile, options=dict(opts), **meta))


def _profiles(base: str, fn: Callable[..., float], profiles: dict[str, tuple[dict, str]], **kw: Any) -> None:
    """Add ``base.<profile>`` presets sharing ``kw`` metadata."""
    for prof, (opts, conv) in profiles.items():
        _add(f"{base}.{prof}", fn, options=opts, convention=conv, **kw)


# ---------------------------------------------------------------- paper seven
_add("AG", F.average_gradient, needs_sources=False, score_range=(0.0, INF), groups=PAPER,
     convention="AG: central-difference gradient (np.gradient), sqrt((gx²+gy²)/2) summed / (M-1)(N-1)")
_profiles("AG", F.average_gradient, {
    "vifb": ({}, "AG (VIFB): as default"),
    "mefb": ({}, "AG (MEFB): as default"),
    "tang": ({}, "AG (Tang): as default"),
    "cddfuse": ({"normalise": "MN", "dtype": "float32"}, "AG (CDDFuse): mean over all M·N pixels, float32"),
}, needs_sources=False, score_range=(0.0, INF))

_add("EN", F.entropy, needs_sources=False, score_range=(0.0, 8.0), groups=PAPER,
     convention="EN: 256-bin histogram of uint8 grey, log2 (bits)")
for _p in ("vifb", "mefb", "tang", "cddfuse"):
    _add(f"EN.{_p}", F.entropy, needs_sources=False, score_range=(0.0, 8.0),
         convention=f"EN ({_p}): as default (bits, 256 bins)")

_add("SF", F.spatial_frequency, needs_sources=False, score_range=(0.0, INF), groups=PAPER,
     convention="SF: sqrt(mean Δh² + mean Δv²), means over the valid neighbour differences")
_profiles("SF", F.spatial_frequency, {
    "vifb": ({"normalise": "MN"}, "SF (VIFB): sums of squared differences ÷ M·N"),
    "mefb": ({"normalise": "MN"}, "SF (MEFB): sums of squared differences ÷ M·N"),
    "tang": ({}, "SF (Tang): as default"),
    "cddfuse": ({"dtype": "float32"}, "SF (CDDFuse): as default, float32"),
}, needs_sources=False, score_range=(0.0, INF))

_add("SD", F.standard_deviation, needs_sources=False, score_range=(0.0, 127.5), groups=PAPER,
     convention="SD: population std (ddof=0) of uint8 grey levels")
_profiles("SD", F.standard_deviation, {
    "vifb": ({}, "SD (VIFB 'Variance'): as default (it is a std)"),
    "mefb": ({}, "SD (MEFB): as default"),
    "tang": ({}, "SD (Tang): as default"),
    "cddfuse": ({"dtype": "float32"}, "SD (CDDFuse): np.std in float32"),
}, needs_sources=False, score_range=(0.0, 127.5))

_add("CC", F.correlation_coefficient, score_range=(-1.0, 1.0), groups=PAPER,
     convention="CC: (r(A,F)+r(B,F))/2, Pearson")
_profiles("CC", F.correlation_coefficient, {
    "tang": ({}, "CC (Tang): as default (its mean(A) typo cancels)"),
    "cddfuse": ({}, "CC (CDDFuse): as default"),
}, score_range=(-1.0, 1.0))

_add("MI", F.mutual_information, score_range=(0.0, 16.0), groups=PAPER,
     convention="MI: MI(A,F)+MI(B,F), exact 256×256 joint histogram, bits")
_profiles("MI", F.mutual_information, {
    "vifb": ({"base": "e", "stretch_first": True}, "MI (VIFB 'Mutinf'): nats, after min-max stretch"),
    "tang": ({"saturate_255": True}, "MI (Tang): bits; levels 254/255 merged in the joint histogram (uint8 bug)"),
    "cddfuse": ({"base": "e"}, "MI (CDDFuse): sklearn mutual_info_score, nats"),
}, score_range=(0.0, 16.0))

_add("SCD", F.sum_of_correlation_differences, score_range=(-2.0, 2.0), groups=PAPER,
     convention="SCD: r(F-B,A)+r(F-A,B); NaN when F equals a source")
_profiles("SCD", F.sum_of_correlation_differences, {
    "tang": ({}, "SCD (Tang): as default"),
    "cddfuse": ({}, "SCD (CDDFuse): as default"),
}, score_range=(-2.0, 2.0))

# ----------------------------------------------------------- error measures
_add("MSE", F.mean_squared_error, higher_is_better=False, score_range=(0.0, 255.0 ** 2), groups=STANDARD,
     convention="MSE: (MSE(A,F)+MSE(B,F))/2 on 0-255")
_profiles("MSE", F.mean_squared_error, {
    "tang": ({"scale": 1.0}, "MSE (Tang): on [0,1] images"),
    "cddfuse": ({}, "MSE (CDDFuse): as default (0-255)"),
}, higher_is_better=False, score_range=(0.0, 255.0 ** 2))

_add("RMSE", F.root_mean_squared_error, higher_is_better=False, score_range=(0.0, 255.0), groups=STANDARD,
     convention="RMSE: sqrt((MSE(A,F)+MSE(B,F))/2) on 0-255")
_profiles("RMSE", F.root_mean_squared_error, {
    "vifb": ({"variant": "vifb"}, "RMSE (VIFB): mean of sqrt(SSE)/(MN) = RMSE/sqrt(MN), size-dependent (bug)"),
    # MEFB has no RMSE (no metricsRmse.m, no record): this is VIFB's formula, the √SSE/(MN) helper MEFB's
    # metricsPsnr.m builds its PSNR on; values identical to RMSE.vifb.  Kept under its name (stored results).
    "mefb": ({"variant": "vifb"}, "RMSE ('MEFB'): MEFB reports no RMSE; VIFB's formula, identical to RMSE.vifb "
                                  "(the sqrt(SSE)/(MN) helper of MEFB's metricsPsnr.m), uncalibrated"),
}, higher_is_better=False, score_range=(0.0, 255.0))

_add("PSNR", F.peak_signal_to_noise_ratio, score_range=(0.0, INF), groups=STANDARD,
     convention="PSNR: 10·log10(255²/MSE̅), MSE̅=(MSE(A,F)+MSE(B,F))/2, dB")
_profiles("PSNR", F.peak_signal_to_noise_ratio, {
    "vifb": ({"variant": "vifb"},
             "PSNR (VIFB): 20·log10(255/√m̃), m̃ = mean over sources of √SSE_X/(MN) (bug: not an MSE, ~53 dB)"),
    "mefb": ({"variant": "vifb"},
             "PSNR (MEFB): 20·log10(255/√m̃), m̃ = mean over sources of √SSE_X/(MN) (bug: not an MSE, ~53 dB)"),
    "tang": ({"variant": "tang"}, "PSNR (Tang): MSE on [0,1] with peak 255 = standard + 48.13 dB (bug)"),
}, score_range=(0.0, INF))
# peak max(F): negative where max(F)² < MSE̅ (a dark F), -∞ for F = 0
_add("PSNR.cddfuse", F.peak_signal_to_noise_ratio, options={"variant": "cddfuse"}, score_range=(-INF, INF),
     convention="PSNR (CDDFuse): peak max(F)")

# ------------------------------------------------------- colour fidelity (fusionbench's own, reads RGB)
_add("ChromaErr", F.chroma_error, colour="rgb", higher_is_better=False, score_range=(0.0, INF),
     convention="ChromaErr: mean CbCr distance (BT.601 full range, levels 0-255) of F from the colour source "
                "(b, else a), on the RGB images; grey F = neutral; NaN without a colour source; fusionbench's own")

# ------------------------------------------------------- histogram measures
# CE skips the bins where p_F = 0 (as VIFB/MEFB), so it is not a KL divergence and can be negative; by the
# log-sum inequality it is >= min_P P·log2(P) = -log2(e)/e (functional.information.cross_entropy).
CE_MIN = -math.log2(math.e) / math.e
_add("CE", F.cross_entropy, higher_is_better=False, score_range=(CE_MIN, INF), groups=STANDARD,
     convention="CE: mean over sources of Σ p_X·log2(p_X/p_F) over the 256 bins where p_X, p_F > 0 "
                "(empty F bins skipped, as VIFB/MEFB: not a KL divergence, can be negative), bits")
for _p in ("vifb", "mefb"):
    _add(f"CE.{_p}", F.cross_entropy, higher_is_better=False, score_range=(CE_MIN, INF),
         convention=f"CE ({_p}): as default")

_add("NMI", F.normalized_mutual_information, score_range=(0.0, 2.0), groups=STANDARD,
     convention="NMI: 2·Σ_X MI(X,F)/(H_X+H_F), bits (Liu toolbox/MEFB)")
_add("NMI.mefb", F.normalized_mutual_information, options={"stretch_first": True}, score_range=(0.0, 2.0),
     convention="NMI (MEFB): as default, after min-max stretch")

# TE follows the Liu toolbox as in MEFB (metrics_conventions.md §6: "Liu toolbox as in MEFB"), bug included;
# version 2: version 1 used the correct marginals, which no reference computes (MEFB 34.0, cslib 31.4 and
# version 1 11.1 on syn_s0_128_avg) and was dropped.
_TE_MEFB = {"transposed_marginals": True, "stretch_first": True}
_add("TE", F.tsallis_entropy, options=_TE_MEFB, score_range=(-INF, INF), groups=STANDARD, version="2",
     convention="TE: Tsallis q=1.85, T(A,F)+T(B,F) as the Liu toolbox/MEFB compute it: min-max stretch, "
                "marginals indexed transposed (not a Tsallis MI; = TE.mefb)")
_add("TE.mefb", F.tsallis_entropy, options=_TE_MEFB, score_range=(-INF, INF),
     convention="TE (MEFB): q=1.85, min-max stretch, marginals indexed transposed as in the Liu code (bug kept)")

_add("Qncie", F.nonlinear_correlation_information_entropy, score_range=(0.0, 1.0), groups=STANDARD,
     convention="Qncie: 1 - eigen-entropy of the NCC matrix of (A,B,F), 256 bins")
_add("Qncie.mefb", F.nonlinear_correlation_information_entropy, score_range=(0.0, 1.0),
     convention="Qncie (MEFB): as default")

# --------------------------------------------------------- gradient measures
_add("EI", F.edge_intensity, needs_sources=False, score_range=(0.0, INF), groups=STANDARD,
     convention="EI: mean Sobel magnitude, replicate padding (VIFB/MEFB)")
for _p in ("vifb", "mefb"):
    _add(f"EI.{_p}", F.edge_intensity, needs_sources=False, score_range=(0.0, INF),
         convention=f"EI ({_p}): as default")

_add("Qabf", F.qabf, score_range=(0.0, 1.0), groups=STANDARD,
     convention="Qabf: Xydeas-Petrovic, Sobel zero-pad, L=1, reference quirk G=gF where gX=gF kept")
for _p in ("vifb", "mefb", "tang", "cddfuse"):
    _add(f"Qabf.{_p}", F.qabf, score_range=(0.0, 1.0), convention=f"Qabf ({_p}): as default")

# Nabf < 1: each artifact term (1 − Q_XF)·w_X is below w_X, the denominator is Σ(w_A + w_B) (weights > 0).
_add("Nabf", F.nabf, higher_is_better=False, score_range=(0.0, 1.0), groups=STANDARD,
     convention="Nabf: Shreyamsha Kumar's modified N_abf, fused image first")
_add("Nabf.tang", F.nabf, options={"tang_argument_bug": True}, higher_is_better=False, score_range=(0.0, 1.0),
     convention="Nabf (Tang HEAD): called as analysis_nabf(A, B, F), A treated as fused (argument bug kept); "
                "A is Tang's ir: for Tang's IVIF numbers pass (F, IR, VIS), not fusionbench's (F, VIS, IR)")

# Q_SF: Zheng et al. 2007 as Liu's metricZheng.m computes it.  The reference returns the signed rSFe, best at 0;
# MetricInfo has only higher_is_better, so the default preset is |rSFe| (lower is better) and the signed value is
# the profile Q_SF.liu, kept for reproduction: not rankable (best at 0), rank with Q_SF.
_Q_SF_TERMS = ("SF² = (Σ Δrow² + Σ Δcol² + (√2/2)·(Σ Δmain-diag² + Σ Δsec-diag²))/(M·N), over every neighbour "
               "pair inside the image; SF_R from max(|ΔA|, |ΔB|) at each pair")
_add("Q_SF", F.q_sf, higher_is_better=False, score_range=(0.0, INF), groups=STANDARD,
     convention=f"Q_SF: |rSFe| = |SF_F − SF_R|/SF_R, Zheng et al. 2007 as Liu's metricZheng.m: {_Q_SF_TERMS}; "
                "0 best; NaN when both sources are constant (SF_R = 0)")
_add("Q_SF.liu", F.q_sf, options={"signed": True}, higher_is_better=False, rankable=False, score_range=(-1.0, INF),
     convention="Q_SF (Liu toolbox metricZheng.m): the signed rSFe = (SF_F − SF_R)/SF_R it returns (SF_F, SF_R "
                "as in Q_SF), 0 best, < 0 for missing detail (−1 for a constant F), > 0 for added detail, NaN "
                "when both sources are constant; the sign is kept for reproduction: not ranked (reports mark no "
                "best), rank with Q_SF = |rSFe|")

# ------------------------------------------------------- structural measures
_add("SSIM", F.ssim, score_range=(-1.0, 1.0), groups=STANDARD,
     convention="SSIM: Gaussian 11x11 σ=1.5, K=(0.01,0.03), L=255, 'valid', (SSIM(A,F)+SSIM(B,F))/2")
_profiles("SSIM", F.ssim, {  # summed over the two sources: up to 2
    "vifb": ({"variant": "vifb"}, "SSIM (VIFB): as default but summed over sources (range up to 2)"),
    "cddfuse": ({"variant": "cddfuse"}, "SSIM (CDDFuse): skimage 0.19 semantics, data_range=2, 7x7 uniform, summed"),
}, score_range=(-2.0, 2.0))
_add("SSIM.tang", F.ssim, options={"variant": "tang"}, score_range=(-1.0, 1.0),  # averaged over the sources
     convention="SSIM (Tang): MATLAB ssim on 0-255 doubles, i.e. L=1; replicate padding; averaged")

_add("MS_SSIM", F.ms_ssim, score_range=(0.0, 1.0), groups=STANDARD,
     convention="MS_SSIM: Wang 2003, 5 scales, L=255, 'valid', (½); 2×2 mean downsampling as Wang's MATLAB "
                "(odd side: last row/column mirrored), per-scale values clipped at 0; NaN at ≤160 px")

_add("MEF_SSIM", F.mef_ssim, score_range=(-1.0, 1.0), groups=STANDARD,
     convention="MEF_SSIM: Ma et al. 2015 MEF-MS-SSIM, 3 scales, K=0.03 (= MEFB MEF_SSIM = Tang 'MS_SSIM')")
_profiles("MEF_SSIM", F.mef_ssim, {
    "mefb": ({}, "MEF_SSIM (MEFB): as default"),
    "tang": ({}, "MEF_SSIM (Tang, labelled 'MS_SSIM' there): as default"),
}, score_range=(-1.0, 1.0))

# range [-1, 1], not [0, 1]: each local score is a convex combination of two SSIM values in [-1, 1] (or the
# reference's 0 or 1), so an F whose structure is inverted against the sources scores below 0 (session 37 audit F10)
_add("Qc", F.qc, score_range=(-1.0, 1.0), groups=STANDARD,
     convention="Qc: Cvejić, covariance-weighted SSIM maps, 7x7 Gaussian, C=2e-16 (Liu/MEFB); not symmetric: "
                "A = MRI/visible is MEFB's img1 (local score 1 where λ=σ_AF/(σ_AF+σ_BF)>1, 0 where λ<0)")
_add("Qc.mefb", F.qc, score_range=(-1.0, 1.0),
     convention="Qc (MEFB): as default (A is metricsQc's img1; swapping A and B changes the value)")
# version 2: NaN with an UndefinedMetricWarning for a constant F (version 1 returned a ratio of round-offs)
_add("Qy", F.qy, score_range=(-1.0, 1.0), groups=STANDARD, version="2",
     convention="Qy: Yang, SSIM(A,B)>=0.75 switch, 7x7 Gaussian, C=2e-16 (Liu/MEFB); NaN for a constant F")
_add("Qy.mefb", F.qy, score_range=(-1.0, 1.0), version="2", convention="Qy (MEFB): as default")

_add("Q_S", F.piella, options={"kind": "S"}, score_range=(-1.0, 1.0), groups=STANDARD,
     convention="Q_S: Piella, variance-weighted local SSIM (Gaussian 11, L=255), Liu toolbox")
_add("Q_W", F.piella, options={"kind": "W"}, score_range=(-1.0, 1.0), groups=STANDARD,
     convention="Q_W: Piella, saliency-weighted Q_S, Liu toolbox")
_add("Q_E", F.piella, options={"kind": "E"}, score_range=(-1.0, 1.0), groups=STANDARD,
     convention="Q_E: Piella, Q_W on Prewitt edge maps, α=1 (= MEFB 'Qw')")
_add("Q_E.mefb", F.piella, options={"kind": "E"}, score_range=(-1.0, 1.0),
     convention="Q_E (MEFB, labelled 'Qw' there): as default")

# ----------------------------------------------------------- visual measures
_add("VIFF", F.viff, score_range=(0.0, INF), groups=STANDARD,
     convention="VIFF: Han et al. 2013, 4-scale GSM, σn²=0.005·255², weights (1,0,.15,1)/2.15")
_add("VIFF.mefb", F.viff, score_range=(0.0, INF), convention="VIFF (MEFB, labelled 'VIF' there): as default")
_add("VIFp_sum", F.vifp_sum, score_range=(0.0, INF), groups=STANDARD,
     convention="VIFp_sum: VIFp(A,F)+VIFp(B,F), Sheikh-Bovik pixel VIF, σn²=2 (Tang/CDDFuse 'VIF')")
_profiles("VIFp_sum", F.vifp_sum, {
    "tang": ({}, "VIFp_sum (Tang, labelled 'VIF' there): as default"),
    "cddfuse": ({}, "VIFp_sum (CDDFuse, labelled 'VIFF' in its code): as default"),
}, score_range=(0.0, INF))

_add("Qcb", F.qcb, score_range=(0.0, 1.0), groups=STANDARD,
     convention="Qcb: Chen-Blum, CSF-filtered local contrast, Liu toolbox as in VIFB")
_profiles("Qcb", F.qcb, {
    "vifb": ({}, "Qcb (VIFB): as default"),
    "mefb": ({"unit_scale_first": True}, "Qcb (MEFB): im2double before the stretch (rounding differs)"),
}, score_range=(0.0, 1.0))
_add("Qcv", F.qcv, higher_is_better=False, score_range=(0.0, INF), groups=STANDARD,
     convention="Qcv: Chen-Varshney, 16x16 blocks, CSF-filtered differences, lower is better (Liu toolbox)")
_profiles("Qcv", F.qcv, {
    "vifb": ({}, "Qcv (VIFB): as default"),
    "mefb": ({}, "Qcv (MEFB): as default"),
}, higher_is_better=False, score_range=(0.0, INF))

# ---------------------------------------------------- feature-based measures
for _name, _feat, _conv in (
    ("FMI_pixel", "none", "FMI_pixel: Haghighat fast-FMI on raw pixels, 3x3 windows, mean over A and B"),
    ("FMI_dct", "dct", "FMI_dct: fast-FMI on the orthonormal 2-D DCT, 3x3 windows"),
    ("FMI_w", "wavelet", "FMI_w: fast-FMI on dmey dwt2 subbands rescaled to [0,1], 3x3 windows; NaN for a "
                         "constant F"),
    ("FMI_edge", "edge", "FMI_edge: fast-FMI on Sobel edge maps (Octave edge rules), 3x3 windows; a blank F "
                         "(empty edge map) scores high, as in the reference"),
):
    # FMI_w version 2: NaN with an UndefinedMetricWarning for a constant F (version 1: a round-off value)
    _version = "2" if _feat == "wavelet" else "1"
    _add(_name, F.fmi, options={"feature": _feat}, score_range=(0.0, 1.0), groups=STANDARD, convention=_conv,
         version=_version)
    _add(f"{_name}.tang", F.fmi, options={"feature": _feat}, score_range=(0.0, 1.0), version=_version,
         convention=f"{_name} (Tang): as default" + (" (Tang labels it 'FMI_pixel')" if _feat == "edge" else ""))
_add("FMI_edge.mefb", F.fmi, options={"feature": "edge"}, score_range=(0.0, 1.0),
     convention="FMI_edge (MEFB, labelled 'FMI' there): as default")

_add("Qp", F.qp, score_range=(0.0, 1.0), groups=STANDARD,
     convention="Qp: Zhao et al. phase congruency (Kovesi phasecong3, 4 scales x 6 orientations), Liu toolbox")
_add("Qp.mefb", F.qp, score_range=(0.0, 1.0), convention="Qp (MEFB): as default")

