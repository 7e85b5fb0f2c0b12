"""Information-theoretic metrics: EN, MI, NMI, CE, TE, Qncie.

All work on the 256 integer grey levels of 8-bit images (the default input
convention, see ``fusionbench.metrics._input``).  Histograms are exact
(``np.bincount``); the joint histogram of two images is 256×256.  Sources:
VIFB/MEFB ``metrics*.m`` (Liu's toolbox for NMI, TE, Qncie), Tang's
``Evaluation-for-Image-Fusion``, CDDFuse ``utils/Evaluator.py``; the
differences between them are described in ``docs/metrics.md``.
"""
from __future__ import annotations

import math

import numpy as np

from .._input import levels, prepare, undefined
from ._options import FLAG, number, option

LN2 = np.log(2.0)


def hist256(x: np.ndarray) -> np.ndarray:
    """Normalised 256-bin histogram of integer grey levels."""
    h = np.bincount(x.ravel(), minlength=256).astype(np.float64)
    return h / h.sum()


def joint_hist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Normalised 256×256 joint histogram ``p[x, y]`` of two integer images."""
    h = np.bincount((x.ravel() * 256 + y.ravel()), minlength=65536).astype(np.float64)
    return (h / h.sum()).reshape(256, 256)


def _entropy_bits(p: np.ndarray) -> float:
    q = p[p > 0]
    return float(0.0 - (q * np.log2(q)).sum())  # 0.0, not -0.0, for a one-level histogram


def stretch(x: np.ndarray, *, rounding: str = "half_away") -> np.ndarray:
    """Min-max stretch to integer levels 0–255 (MATLAB ``normalize1`` / VIFB ``mutinf``).

    A constant image becomes all zeros.  For 8-bit data the stretch is a
    bijection on the levels present, so histogram metrics do not change.
    ``rounding``: ``'half_away'`` (default; MATLAB's integer conversion, halves away
    from zero) or ``'half_even'`` (``np.round``); any other value raises ``ValueError``.
    """
    rounding = option("stretch", "rounding", rounding, ("half_away", "half_even"))
    lo, hi = x.min(), x.max()
    if hi == lo:
        return np.zeros_like(x, dtype=np.int64)
    y = (x - lo) / (hi - lo) * 255.0
    y = np.floor(y + 0.5) if rounding == "half_away" else np.round(y)  # rounding checked above
    return y.astype(np.int64)


def entropy(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None, *,
            data_range: float | None = None) -> float:
    """EN: Shannon entropy in bits of the 256-bin histogram of the fused image.

    Convention: exact histogram of uint8 levels, log2.  Identical in VIFB, MEFB,
    Tang (MATLAB ``entropy``) and CDDFuse.
    """
    f, _, _ = prepare(fused, data_range=data_range, need_sources=False)
    return _entropy_bits(hist256(levels(f)))


def _mi_pair(x: np.ndarray, f: np.ndarray, *, saturate_255: bool) -> float:
    """Mutual information in bits of two integer images (exact joint histogram)."""
    hx, hf = _entropy_bits(hist256(x)), _entropy_bits(hist256(f))
    if saturate_255:
        # Tang's Hab adds 1 to uint8 images: 255 + 1 saturates, so levels 254
        # and 255 share one bin of the joint histogram (marginals unaffected).
        x, f = np.minimum(x, 254), np.minimum(f, 254)
    return hx + hf - _entropy_bits(joint_hist(x, f))


def mutual_information(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, base: str | float = "2",
                       stretch_first: bool = False, saturate_255: bool = False,
                       data_range: float | None = None) -> float:
    """MI: MI(A,F) + MI(B,F) from exact 256×256 joint histograms.

    ``base='2'`` gives bits (default; Tang), ``'e'`` nats (VIFB, CDDFuse/sklearn).
    The numbers ``2`` and ``math.e`` (= ``np.e``) are accepted as the same two bases;
    any other base (``'E'``, ``10``, ``'nats'``) raises ``ValueError`` (until the
    session 37 audit, every value but the string ``'e'`` silently gave bits).
    ``stretch_first`` applies VIFB's min-max stretch with int16 rounding (no
    effect on 8-bit data except constant images).  ``saturate_255`` reproduces
    Tang's uint8 saturation bug (levels 254/255 merged in the joint histogram).
    """
    nats = option("mutual_information", "base", base, ("2", "e", 2, math.e),
                  "'2', 'e', 2, math.e") in ("e", math.e)
    option("mutual_information", "stretch_first", stretch_first, FLAG)
    option("mutual_information", "saturate_255", saturate_255, FLAG)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if stretch_first:
        fi, ai, bi = stretch(f), stretch(A), stretch(B)
    else:
        fi, ai, bi = levels(f), levels(A), levels(B)
    mi = _mi_pair(ai, fi, saturate_255=saturate_255) + _mi_pair(bi, fi, saturate_255=saturate_255)
    return mi * LN2 if nats else mi


def normalized_mutual_information(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *,
                                  stretch_first: bool = False, data_range: float | None = None) -> float:
    """NMI (Liu toolbox, MEFB): 2·[MI(A,F)/(H_A+H_F) + MI(B,F)/(H_B+H_F)], bits.

    Each term ``2·MI/(H_X+H_F)`` lies in [0, 1]; their sum lies in [0, 2].
    NaN with a warning when an image and the fused image are both constant.
    """
    option("normalized_mutual_information", "stretch_first", stretch_first, FLAG)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    conv = stretch if stretch_first else levels
    fi, ai, bi = conv(f), conv(A), conv(B)
    hf = _entropy_bits(hist256(fi))
    total = 0.0
    for x in (ai, bi):
        hx = _entropy_bits(hist256(x))
        if hx + hf == 0:
            return undefined("NMI is undefined: a source and the fused image are both constant")
        total += (hx + hf - _entropy_bits(joint_hist(x, fi))) / (hx + hf)
    return 2.0 * total


def cross_entropy(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, data_range: float | None = None) -> float:
    """CE (VIFB/MEFB ``metricsCross_entropy.m``): mean over sources of Σ p_X·log2(p_X/p_F), bits.

    The sum runs over the 256-bin histogram bins where **both** p_X > 0 and p_F > 0:
    bins where the fused histogram is empty are skipped, as the VIFB/MEFB code does
    (it sums only the finite terms).  So this is *not* the KL divergence KL(p_X‖p_F)
    (which is +∞ when F lacks a level that X has): it can be negative, and a
    posterised or constant F can score "better" (lower) than a real fusion
    (0.4263 for the average of syn_s0_128, −0.2134 for that average quantised to 16
    levels, −0.0358 for a constant 128).  By the log-sum inequality each source's
    term is ≥ P·log2(P/Q) ≥ P·log2(P) ≥ −log2(e)/e ≈ −0.531, with P = Σ p_X and
    Q = Σ p_F over the kept bins, so the range is [−0.531, ∞).  Lower is better.
    """
    f, A, B = prepare(fused, a, b, data_range=data_range)
    pf = hist256(levels(f))
    out = 0.0
    for x in (A, B):
        px = hist256(levels(x))
        m = (px > 0) & (pf > 0)
        out += float((px[m] * np.log2(px[m] / pf[m])).sum())
    return out / 2.0


#: within this distance of q = 1 Tsallis' sum is taken in its expm1 form (no cancellation; the same value in exact
#: arithmetic); farther out the textbook form, whose values are pinned (tests/metrics/test_options.py)
TSALLIS_NEAR_ONE = 1e-3


def tsallis_entropy(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, q: float = 1.85,
                    transposed_marginals: bool = False, stretch_first: bool = False,
                    data_range: float | None = None) -> float:
    """TE: Tsallis mutual information T_q(A,F) + T_q(B,F) with Cvejić's q = 1.85.

    T_q(X,F) = (1 − Σ p(x,f)^q / (p(x)p(f))^(q−1)) / (1 − q).
    ``transposed_marginals=True`` reproduces the Liu/MEFB code (``metricsTE.m``),
    which divides p(x=i, f=j) by p_F(i)·p_X(j) (the marginals indexed the other way
    round); with that bug the bin positions matter, so the Liu code's min-max
    stretch (``stretch_first``) changes the value.  The ``TE`` preset (version 2)
    uses both, as MEFB does (``metrics_conventions.md`` §6: "Liu toolbox as in
    MEFB"); the defaults of this function (the correct marginals, no stretch) are
    the textbook formula, which no reference computes (11.1 on syn_s0_128_avg,
    against MEFB's 34.0 and cslib's soft-histogram 31.4).
    ``q`` must be finite, > 0 and not 1 (``ValueError``; at 1 the formula divides by zero: its limit is Shannon's
    mutual information in nats, :func:`mutual_information` with ``base='e'``, which q within
    :data:`TSALLIS_NEAR_ONE` of 1 approach without cancellation).
    """
    q = number("tsallis_entropy", "q", q, low=0, low_open=True, excluded=(1,))
    option("tsallis_entropy", "transposed_marginals", transposed_marginals, FLAG)
    option("tsallis_entropy", "stretch_first", stretch_first, FLAG)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    conv = stretch if stretch_first else levels
    fi = conv(f)
    total = 0.0
    for x in (conv(A), conv(B)):
        p = joint_hist(x, fi)
        px, pf = p.sum(axis=1), p.sum(axis=0)
        denom = np.outer(pf, px) if transposed_marginals else np.outer(px, pf)
        m = denom > 0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if abs(q - 1.0) < TSALLIS_NEAR_ONE:
                # 1 − Σ p^q/d^(q−1) = Σ_{d=0} p − Σ_{d>0} p·expm1((q−1)·ln(p/d)): the same sum without the
                # cancellation of 1 − (1 + O(q−1)), which left q = 1 + 1e-15 4 % off (session 38's metrics audit)
                pm, dm = p[m], denom[m]
                nz = pm > 0
                lost = float(p[~m].sum()) - float((pm[nz] * np.expm1((q - 1.0) * np.log(pm[nz] / dm[nz]))).sum())
            else:
                lost = 1.0 - float((p[m] ** q / denom[m] ** (q - 1.0)).sum())
        total += lost / (1.0 - q)
    if not math.isfinite(total):  # a large q: powers of the probabilities under- or overflow (q = 1e6: 0/0)
        return undefined(f"TE is undefined in float64 for q = {q:g} on this input (its powers overflow)")
    return total


def _ncc(x: np.ndarray, y: np.ndarray) -> float:
    """Nonlinear correlation coefficient (Wang et al.): MI in bits ÷ log2(256)."""
    p = joint_hist(x, y)
    return (_entropy_bits(p.sum(axis=0)) + _entropy_bits(p.sum(axis=1)) - _entropy_bits(p)) / 8.0


def nonlinear_correlation_information_entropy(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *,
                                              data_range: float | None = None) -> float:
    """Qncie (Wang, Shen & Zhang; Liu toolbox/MEFB): 1 + Σ λ_i/3·log_256(λ_i/3).

    λ_i are the eigenvalues of the 3×3 nonlinear-correlation matrix of (A, B, F),
    whose entries are NCC = MI/8 bits.  Range [0, 1].
    """
    f, A, B = prepare(fused, a, b, data_range=data_range)
    ai, bi, fi = levels(A), levels(B), levels(f)
    nab, naf, nbf = _ncc(ai, bi), _ncc(ai, fi), _ncc(bi, fi)
    R = np.array([[1.0, nab, naf], [nab, 1.0, nbf], [naf, nbf, 1.0]])
    r = np.linalg.eigvalsh(R)
    r = r[r > 0]
    hr = -float((r * np.log2(r / 3.0) / 3.0).sum()) / 8.0
    return 1.0 - hr
