"""Gradient-based metrics: AG, SF, EI, Qabf, Nabf, Q_SF.

Sources: VIFB/MEFB ``metrics*.m``, Tang ``AG_evaluation.m``/``SF_evaluation.m``/
``analysis_Qabf.m``/``analysis_nabf.m``, CDDFuse ``Evaluator.py`` and Z. Liu's
imageFusionMetrics ``metricZheng.m`` (Q_SF); all re-implemented here, vectorised.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .._input import prepare, undefined
from ._options import FLAG, float_dtype, option


def average_gradient(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None, *,
                     normalise: str = "(M-1)(N-1)", dtype: str = "float64", data_range: float | None = None) -> float:
    """AG: Σ √((g_x² + g_y²)/2) / ((M−1)(N−1)), central differences (MATLAB ``gradient``).

    Gradients are central differences inside and one-sided at the border
    (``np.gradient``).  ``normalise='MN'`` divides by M·N instead (CDDFuse); the default
    is ``'(M-1)(N-1)'``.  ``dtype``: float64 (default) or float32 (CDDFuse's arithmetic), any
    numpy spelling.  Any other value of either raises ``ValueError``.
    """
    option("average_gradient", "normalise", normalise, ("(M-1)(N-1)", "MN"))
    dt = float_dtype("average_gradient", dtype)
    f, _, _ = prepare(fused, data_range=data_range, need_sources=False)
    f = f.astype(dt)
    gy, gx = np.gradient(f)
    s = np.sqrt((gx * gx + gy * gy) / 2)
    M, N = f.shape
    if normalise == "MN":
        return float(s.mean())
    return float(s.sum(dtype=np.float64) / ((M - 1) * (N - 1)))


def spatial_frequency(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None, *,
                      normalise: str = "mean", dtype: str = "float64", data_range: float | None = None) -> float:
    """SF: √(RF² + CF²) with RF² = mean of squared horizontal neighbour differences.

    Default: means over the M(N−1) and (M−1)N valid differences (Tang, CDDFuse,
    cslib; ``normalise='mean'``).  ``normalise='MN'`` divides both sums by M·N (VIFB, MEFB).
    ``dtype``: float64 (default) or float32 (CDDFuse's arithmetic), any numpy spelling.  Any
    other value of either raises ``ValueError``.
    """
    option("spatial_frequency", "normalise", normalise, ("mean", "MN"))
    dt = float_dtype("spatial_frequency", dtype)
    f, _, _ = prepare(fused, data_range=data_range, need_sources=False)
    f = f.astype(dt)
    dh = np.diff(f, axis=1)
    dv = np.diff(f, axis=0)
    if normalise == "MN":
        return float(np.sqrt(((dh * dh).sum() + (dv * dv).sum()) / f.size))
    return float(np.sqrt((dh * dh).mean() + (dv * dv).mean()))


_PAD_MODES = {"constant": "constant", "nearest": "edge", "mirror": "reflect", "reflect": "symmetric", "wrap": "wrap"}


def _sobel(x: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Sobel responses (horizontal derivative, vertical derivative), unnormalised, on the last two axes.

    Same as ``ndimage.correlate1d`` with [−1, 0, 1] along the derivative axis and [1, 2, 1]
    across it, border ``mode`` in ndimage's naming (zero for 'constant'); computed by slicing
    one padded copy, which is several times faster than four ndimage passes.  The sums are
    exact (hence bit-identical to ndimage) for integer grey levels.
    """
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(x, pad, mode=_PAD_MODES[mode])
    d = p[..., :, 2:] - p[..., :, :-2]
    sx = d[..., 1:-1, :] * 2.0
    sx += d[..., :-2, :]
    sx += d[..., 2:, :]
    d = p[..., 2:, :] - p[..., :-2, :]
    sy = d[..., :, 1:-1] * 2.0
    sy += d[..., :, :-2]
    sy += d[..., :, 2:]
    return sx, sy


def edge_intensity(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None, *,
                   data_range: float | None = None) -> float:
    """EI (VIFB/MEFB): mean Sobel gradient magnitude, replicate padding (``imfilter``)."""
    f, _, _ = prepare(fused, data_range=data_range, need_sources=False)
    sx, sy = _sobel(f, "nearest")
    return float(np.sqrt(sx * sx + sy * sy).mean())


#: pixels per image in one strip of ``_row_strips`` (a few hundred kB per map: cache-resident, no page faults)
_STRIP_PIXELS = 1 << 15


def _row_strips(images: tuple[np.ndarray, ...], edges) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``edges`` (a Sobel-based (magnitude, angle) function of a stack) strip by strip.

    The images are cut into horizontal strips of about ``_STRIP_PIXELS`` pixels; each
    strip is stacked with one neighbour row above and below (where the image has one),
    ``edges`` is applied and the halo rows are cropped, so the per-pixel results are
    exactly those of the whole image (the 3×3 Sobel needs one neighbour; strips have at
    least two rows, so mirror/nearest padding at the true borders is unaffected).  Sums
    over strips equal whole-image sums up to the order of summation; the temporaries
    stay small (cache-resident, no page faults from large short-lived arrays).
    """
    h, w = images[0].shape
    step = max(2, _STRIP_PIXELS // max(w, 1))
    r0 = 0
    while r0 < h:
        r1 = min(h, r0 + step)
        if h - r1 < 2:  # never leave a one-row last strip
            r1 = h
        lo, hi = max(r0 - 1, 0), min(r1 + 1, h)
        g, ang = edges(np.stack([x[lo:hi] for x in images]))
        keep = slice(r0 - lo, r0 - lo + (r1 - r0))
        yield g[..., keep, :], ang[..., keep, :]
        r0 = r1


def _qabf_edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel magnitude and angle as in the Xydeas–Petrović code (zero padding, atan, π/2 where Sx=0).

    The reference uses ``conv2`` (a true convolution), which flips the sign of Sx
    but not of Sy relative to correlation; the sign matters where Sx = 0.
    """
    sx, sy = _sobel(x, "constant")
    sx = -sx
    g = np.sqrt(sx * sx + sy * sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        ang = np.where(sx == 0, np.pi / 2, np.arctan(sy / np.where(sx == 0, 1.0, sx)))
    return g, ang


def _qabf_q(gx: np.ndarray, ax: np.ndarray, gf: np.ndarray, af: np.ndarray, quirk: bool) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        G = np.where(gx > gf, gf / np.where(gx > gf, gx, 1.0), gx / np.where(gx < gf, gf, 1.0))
    eq = gx == gf
    G = np.where(eq, gf if quirk else np.where(gf == 0, 0.0, 1.0), G)
    Aa = 1.0 - np.abs(ax - af) / (np.pi / 2)
    qg = 0.9994 / (1.0 + np.exp(-15.0 * (G - 0.5)))
    qa = 0.9879 / (1.0 + np.exp(-22.0 * (Aa - 0.8)))
    return qg * qa


def qabf(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, equal_gradient_quirk: bool = True,
         data_range: float | None = None) -> float:
    """Qabf (Xydeas & Petrović 2000), constants of the common MATLAB code.

    Sobel with zero padding, angle = atan(Sy/Sx) (π/2 where Sx = 0), sigmoids
    Γg=0.9994, κg=15, σg=0.5, Γa=0.9879, κa=22, σa=0.8, weights g (L=1).
    ``equal_gradient_quirk`` keeps the reference rule G = g_F where g_X = g_F
    (VIFB, MEFB, Tang, CDDFuse all carry it).  Range [0, 1].
    """
    option("qabf", "equal_gradient_quirk", equal_gradient_quirk, FLAG)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    num = den = 0.0
    for (gA, gB, gF), (aA, aB, aF) in _row_strips((A, B, f), _qabf_edges):
        den += (gA + gB).sum()
        num += (_qabf_q(gA, aA, gF, aF, equal_gradient_quirk) * gA
                + _qabf_q(gB, aB, gF, aF, equal_gradient_quirk) * gB).sum()
    if den == 0:
        return undefined("Qabf is undefined: both sources are constant")
    return float(num / den)


def _nabf_edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel/8 with mirror extension (``per_extn_im_fn``); magnitude and atan(gv/gh) (0 where both 0)."""
    gv, gh = _sobel(x, "mirror")
    gv, gh = gv / 8.0, gh / 8.0
    g = np.sqrt(gv * gv + gh * gh)
    with np.errstate(divide="ignore", invalid="ignore"):
        ang = np.arctan(gv / gh)
    ang = np.where((gv == 0) & (gh == 0), 0.0, ang)
    return g, ang


def _nabf_core(f: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> float:
    num = den = 0.0
    for (gF, gA, gB), (aF, aA, aB) in _row_strips((f, s1, s2), _nabf_edges):

        def q(gX, aX):
            with np.errstate(divide="ignore", invalid="ignore"):
                G = np.where((gX == 0) | (gF == 0), 0.0, np.minimum(gX, gF) / np.maximum(gX, gF))
            G = np.nan_to_num(G)
            Aa = np.abs(np.abs(aX - aF) - np.pi / 2) * 2 / np.pi
            qg = 0.9999 / (1.0 + np.exp(-19.0 * (G - 0.5)))
            qa = 0.9995 / (1.0 + np.exp(-22.0 * (Aa - 0.5)))
            w = np.where(gX >= 2.0, gX ** 1.5, 0.001)
            return np.sqrt(qg * qa), w

        qA, wA = q(gA, aA)
        qB, wB = q(gB, aB)
        na = (gF > gA) & (gF > gB)
        num += (na * ((1 - qA) * wA + (1 - qB) * wB)).sum()
        den += (wA + wB).sum()
    return float(num / den)


def nabf(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, tang_argument_bug: bool = False,
         data_range: float | None = None) -> float:
    """Nabf: Shreyamsha Kumar's modified fusion-artifact measure N_abf (lower is better).

    Internal Q uses Sobel/8 with mirror extension, Γg=0.9999, κg=19, σg=0.5,
    Γa=0.9995, κa=22, σa=0.5, Q = √(Q_g·Q_a); weights g^1.5 where g ≥ 2, else 0.001;
    artifacts counted where g_F exceeds both source gradients.  With
    ``tang_argument_bug=True`` the sources are passed as Tang's HEAD code does,
    ``analysis_nabf(ir, vi, F)``: A is treated as the fused image (bug, flagged).
    """
    option("nabf", "tang_argument_bug", tang_argument_bug, FLAG)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if tang_argument_bug:
        return _nabf_core(A, B, f)
    return _nabf_core(f, A, B)


#: weight of the two diagonal directions in Q_SF (Zheng et al. 2007; ``metricZheng.m``'s ``Wd``)
_SF_DIAGONAL_WEIGHT = np.sqrt(2.0) / 2.0


def _neighbour_differences(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every difference between a pixel and its neighbour in four directions inside the image (no wrap-around),
    on the last two axes.

    Row direction: x(i, j) − x(i, j+1), M·(N−1) values; column: x(i, j) − x(i+1, j), (M−1)·N; main
    diagonal: x(i, j) − x(i−1, j−1); secondary diagonal: x(i, j) − x(i−1, j+1), (M−1)·(N−1) each.  These are
    exactly the terms ``metricZheng.m`` sums: its circshift by one column (row) followed by dropping the last
    column (row), i.e. the wrapped pair, and its diagonal loops over i = 2..M, j = 2..N and i = 2..M, j = 1..N−1.
    """
    return (x[..., :, :-1] - x[..., :, 1:], x[..., :-1, :] - x[..., 1:, :],
            x[..., 1:, 1:] - x[..., :-1, :-1], x[..., 1:, :-1] - x[..., :-1, 1:])


def _q_sf_sums(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[list[int], list[int]]:
    """Per direction (row, column, main and secondary diagonal): Σ ΔF² and Σ max(|ΔA|, |ΔB|)².

    The prepared images hold integer grey levels 0–255, so the differences are computed in int16, their
    squares (≤ 255²) in int32 and the sums in int64: exact, the same on every CPU and in any summation order
    (as the reference's double sums, exact below 2⁵³).
    """
    stack = np.stack([f, a, b]).astype(np.int16)
    sums_f, sums_r = [], []
    for d in _neighbour_differences(stack):
        np.abs(d, out=d)
        np.maximum(d[1], d[2], out=d[1])
        sq = d[:2].astype(np.int32)
        sq *= sq
        s_f, s_r = sq.reshape(2, -1).sum(axis=1, dtype=np.int64)
        sums_f.append(int(s_f))
        sums_r.append(int(s_r))
    return sums_f, sums_r


def _sf_squared(sums: list[int], size: int) -> float:
    """SF² = Σ_row/(M·N) + Σ_col/(M·N) + w·Σ_md/(M·N) + w·Σ_sd/(M·N), w = √2/2: the four direction terms of
    Zheng et al.'s extended spatial frequency, each sum divided by M·N (not by its number of differences)."""
    s_row, s_col, s_md, s_sd = (float(s) for s in sums)
    return s_row / size + s_col / size + _SF_DIAGONAL_WEIGHT * s_md / size + _SF_DIAGONAL_WEIGHT * s_sd / size


def q_sf(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, signed: bool = False,
         data_range: float | None = None) -> float:
    """Q_SF (Zheng, Essock, Hansen & Haun 2007), as Z. Liu's imageFusionMetrics ``metricZheng.m`` computes it.

    SF_F: the extended spatial frequency of F, √(RF² + CF² + MDF² + SDF²), where each direction's term is
    the sum of its squared neighbour differences (:func:`_neighbour_differences`: every pair inside the image)
    divided by M·N, the two diagonal terms weighted by √2/2.  SF_R, the reference: the same four terms built
    from, at every neighbour pair, the larger absolute difference of the two sources, max(|ΔA|, |ΔB|).
    rSFe = (SF_F − SF_R) / SF_R: 0 is best, below 0 F lacks detail, above 0 it adds some; −1 for a constant F.
    (Liu's code changes the paper's equations 7–8; this follows the code.)

    ``signed=True`` returns rSFe as ``metricZheng.m`` does (``Q_SF.liu``); the default returns |rSFe|, so that
    lower is better (``Q_SF``).  With both sources constant SF_R = 0 and the value is undefined (the reference
    gives ±Inf or NaN): NaN with an :class:`UndefinedMetricWarning`.
    """
    option("q_sf", "signed", signed, FLAG)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    sums_f, sums_r = _q_sf_sums(f, A, B)
    sf_f = np.sqrt(_sf_squared(sums_f, f.size))
    sf_r = np.sqrt(_sf_squared(sums_r, f.size))
    if sf_r == 0:
        return undefined("Q_SF is undefined: both sources are constant (the reference spatial frequency is 0)")
    r = float((sf_f - sf_r) / sf_r)
    return r if signed else abs(r)
