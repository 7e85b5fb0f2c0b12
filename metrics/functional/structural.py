"""Structural-similarity metrics: SSIM, MS_SSIM, MEF_SSIM, Qc, Qy and Piella's Q_S/Q_W/Q_E.

Window statistics are computed for a whole stack of images at once with
separable filters (``_filters``); no loops over pixels or windows.
Sources: Wang et al. 2004 (SSIM), Wang, Simoncelli & Bovik 2003 (MS-SSIM),
Ma, Zeng & Wang 2015 (MEF-SSIM, the MEFB/Tang ``mef_ms_ssim.m``), Cvejić 2005
(Qc), Yang 2008 (Qy), Piella & Heijmans 2003 as in Liu's toolbox
(``metricsQw.m``).
"""
from __future__ import annotations

import numpy as np

from .._input import prepare, undefined
from ._filters import gaussian_1d, halve
from ._options import number, option
# the compiled (numba) kernels are imported in the functions that run them: importing this module, as loading the
# metric registry does in every CLI command and worker, then imports no numba (tests/test_imports.py)

G11 = (11, 1.5)


def _gmap(x: np.ndarray, y: np.ndarray | None, window: tuple, valid: bool, mode: str, memo: dict | None):
    """One filtered window moment: x (y None) or the product x·y, Gaussian (or ``("box", n)``) window.

    Memoised in ``memo`` (within one metric call) and in the ``evaluate`` cache,
    so that pairs sharing an image (SSIM's (A,F) and (B,F), Q_S's (A,B), MEF-SSIM)
    filter each distinct moment once.
    """
    from ._ssim_fast import sep_filter
    from .._cache import cached

    ids = (id(x),) if y is None else tuple(sorted((id(x), id(y))))
    key = ("gmap", ids, window, valid, mode)
    if memo is not None and key in memo:
        return memo[key]

    def compute():
        g = np.full(window[1], 1.0 / window[1]) if window[0] == "box" else gaussian_1d(*window)
        return sep_filter(x if y is None else np.multiply(x, y), g, mode=mode, valid=valid)

    v = cached(key, compute, x, y)
    if memo is not None:
        memo[key] = v
    return v


def _stats(x: np.ndarray, y: np.ndarray, window: tuple[int, float] = G11, *, valid: bool = True,
           mode: str = "nearest", memo: dict | None = None):
    """Gaussian-window means, variances and covariance of x and y (population form).

    Cached within ``evaluate`` (SSIM, Q_S, Q_W, MS-SSIM and MEF-SSIM share the
    filtered moments); ``memo`` shares them between the calls of one metric.
    """
    from .._cache import cached

    if memo is None:
        memo = {}

    def compute():
        mx, my = _gmap(x, None, window, valid, mode, memo), _gmap(y, None, window, valid, mode, memo)
        sxx, syy = _gmap(x, x, window, valid, mode, memo), _gmap(y, y, window, valid, mode, memo)
        sxy = _gmap(x, y, window, valid, mode, memo)
        return mx, my, sxx - mx * mx, syy - my * my, sxy - mx * my

    return cached(("stats", id(x), id(y), window, valid, mode), compute, x, y)


def ssim_map(x: np.ndarray, y: np.ndarray, *, C1: float, C2: float, window: tuple[int, float] = G11,
             valid: bool = True, mode: str = "nearest", memo: dict | None = None) -> np.ndarray:
    """The SSIM map of Wang et al. 2004 with a Gaussian window.

    ``mode``: the border rule of a 'same' map (``valid=False``): ``'nearest'`` (default),
    ``'constant'`` or ``'reflect'`` (scipy.ndimage's names); any other value raises ``ValueError``.
    """
    from ._ssim_fast import ssim_formula
    option("ssim_map", "mode", mode, ("nearest", "constant", "reflect"))
    mx, my, vx, vy, cxy = _stats(x, y, window, valid=valid, mode=mode, memo=memo)
    return ssim_formula(mx, my, vx, vy, cxy, C1, C2)


def ssim(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, variant: str = "standard",
         data_range: float | None = None) -> float:
    """SSIM of the fused image against both sources.

    ``standard`` (default): Wang 2004, Gaussian 11×11 σ=1.5, K=(0.01, 0.03), L=255,
    'valid' windows, mean of the map, then (SSIM(A,F) + SSIM(B,F)) / 2.
    ``vifb``: the same but summed (range 0–2).
    ``tang``: MATLAB IPT ``ssim(F, X)`` on double 0–255 data without DynamicRange,
    so L=1 (C1=1e-4, C2=9e-4), replicate padding, 'same' map, averaged.
    ``cddfuse``: ``skimage.metrics.structural_similarity(F, X)`` with the 0.19
    semantics for float input (data_range=2, 7×7 uniform window, sample
    covariance, 3-px border cropped), summed.
    Any other ``variant`` (e.g. ``'VIFB'``) raises ``ValueError``.
    """
    option("ssim", "variant", variant, ("standard", "vifb", "tang", "cddfuse"))
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if variant == "cddfuse":
        return _ssim_skimage019(f, A, B)
    if variant == "tang":
        C1, C2 = 0.01 ** 2, 0.03 ** 2
        memo: dict = {}
        sa = ssim_map(f, A, C1=C1, C2=C2, valid=False, mode="nearest", memo=memo).mean()
        sb = ssim_map(f, B, C1=C1, C2=C2, valid=False, mode="nearest", memo=memo).mean()
        return float((sa + sb) / 2)
    if min(f.shape) < 11:
        return undefined("SSIM needs images of at least 11x11 pixels")
    C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    memo: dict = {}
    sa = ssim_map(A, f, C1=C1, C2=C2, memo=memo).mean()
    sb = ssim_map(B, f, C1=C1, C2=C2, memo=memo).mean()
    return float(sa + sb) if variant == "vifb" else float((sa + sb) / 2)


def _ssim_skimage019(f: np.ndarray, A: np.ndarray, B: np.ndarray, data_range: float = 2.0) -> float:
    """SSIM(F,A) + SSIM(F,B) as ``skimage.metrics.structural_similarity`` with its defaults (CDDFuse, skimage 0.19).

    7×7 uniform window ('reflect' borders), sample covariance (×49/48),
    K=(0.01, 0.03), the given data range, mean over the map cropped by 3 px.
    Computed in float64 (CDDFuse's float32 run differs by ~1e-7); the window
    means by a compiled bit-exact ``uniform_filter1d`` and both maps' means in
    one compiled pass (``_ssim_fast``).
    """
    from ._ssim_fast import skimage_ssim_means, uniform_reflect
    if min(f.shape) < 7:
        return undefined("SSIM (skimage semantics) needs at least 7x7 pixels")
    s = np.empty((8,) + f.shape)
    s[0], s[1], s[2] = f, A, B
    for k, (u, v) in enumerate(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2)), start=3):
        np.multiply(s[u], s[v], out=s[k])
    s = uniform_reflect(s, 7)  # = scipy uniform_filter1d on both axes, bit for bit (compiled)
    cov_norm = 49.0 / 48.0
    C1, C2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    sa, sb = skimage_ssim_means(s, C1, C2, cov_norm, 3)  # one compiled pass over both maps
    return float(sa) + float(sb)


MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _ms_ssim_pairs(A: np.ndarray, B: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    """MS-SSIM(A,F) and MS-SSIM(B,F); the three images are halved once per scale and F's moments shared."""
    C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals: list[list[float]] = [[], []]
    for level in range(len(MS_WEIGHTS)):
        memo: dict = {}
        for k, x in enumerate((A, B)):
            mx, my, vx, vy, cxy = _stats(x, f, memo=memo)
            cs = (2 * cxy + C2) / (vx + vy + C2)
            if level == len(MS_WEIGHTS) - 1:
                lum = (2 * mx * my + C1) / (mx * mx + my * my + C1)
                vals[k].append(max(float((lum * cs).mean()), 0.0))
            else:
                vals[k].append(max(float(cs.mean()), 0.0))
        if level < len(MS_WEIGHTS) - 1:
            A, B, f = halve(A), halve(B), halve(f)
    return tuple(float(np.prod(np.power(v, MS_WEIGHTS))) for v in vals)


def ms_ssim(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, data_range: float | None = None) -> float:
    """MS-SSIM (Wang, Simoncelli & Bovik 2003): 5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333).

    Gaussian 11×11 σ=1.5, 'valid' windows, L=255; negative per-scale values
    are clipped to 0 (as pytorch_msssim); mean of MS-SSIM(A,F) and
    MS-SSIM(B,F).  NaN (with a warning) when the smaller side is ≤ 160 px, where
    the coarsest scale has no full window.

    Downsampling (:func:`._filters.halve`) is that of Wang's MATLAB ``msssim.m``:
    ``imfilter(x, ones(2)/4, 'symmetric', 'same')`` then ``x(1:2:end, 1:2:end)``,
    i.e. the mean of each 2×2 block starting at the first pixel, an odd side's last
    row/column paired with its own mirror image (ceil(n/2) samples).  pytorch_msssim
    (which cslib uses) pools with ``avg_pool2d(kernel 2, padding = n % 2)``: on an odd
    side it zero-pads *both* ends and counts the zeros, so its blocks are shifted by
    one pixel.  Where every halving step has even sides (256², 768×576) the two are
    the same and we equal cslib to its float32 precision (4.4e-7 on the Harvard 256²
    triples); otherwise they differ: 1.6e-3 relative on the 201×237 Harvard crop,
    1.3e-2 on 225×170, 7.9e-3 on TNO 620×450 and 6.5e-4 on 749×551 (a numpy
    emulation of pytorch_msssim checked against ``torch.nn.functional.avg_pool2d``).
    Wang's MATLAB code itself (which does not clip) was not run.
    """
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if min(f.shape) <= 160:
        return undefined("MS-SSIM needs images larger than 160 px on the smaller side")
    qa, qb = _ms_ssim_pairs(A, B, f)
    return (qa + qb) / 2.0


def _mef_ssim_scale(srcs: list[np.ndarray], f: np.ndarray, K: float = 0.03) -> float:
    """One scale of Ma et al.'s MEF-SSIM, vectorised (``mef_ssim.m``).

    The Gaussian-window moments come from ``_gmap`` (at full scale they are the
    ones SSIM, Q_S and MS-SSIM use, shared within ``evaluate``).
    """
    from ._ssim_fast import box_valid
    seq = np.stack(srcs)
    k, n = seq.shape[0], 11
    eps = np.finfo(float).eps
    # uniform-window statistics (11×11 'valid'): means, covariances between sources
    mu = box_valid(seq, n)
    prods = {(i, j): box_valid(seq[i] * seq[j], n) - mu[i] * mu[j] for i in range(k) for j in range(i, k)}
    var = np.stack([np.maximum(prods[(i, i)], 0.0) for i in range(k)])
    norms = np.sqrt(n * n * var)  # ‖patch − mean‖
    ed = norms + 0.001
    tot = sum(prods[(min(i, j), max(i, j))] for i in range(k) for j in range(k))
    num = np.sqrt(np.maximum(n * n * tot, 0.0))
    R = (num + eps) / (norms.sum(axis=0) + eps)
    R = np.where(R > 1, 1 - eps, R)
    R = np.where(R < 0, eps, R)
    p = np.minimum(np.tan(np.pi / 2 * R), 10.0)
    w = (ed / n) ** p + eps
    w = w / w.sum(axis=0)
    c = w / ed  # coefficients of (patch_k − mu_k) in the structure block
    rnorm2 = sum(c[i] * c[j] * prods[(min(i, j), max(i, j))] for i in range(k) for j in range(k)) * n * n
    rnorm = np.sqrt(np.maximum(rnorm2, 0.0))
    scale = np.where(rnorm > 0, ed.max(axis=0) / np.where(rnorm > 0, rnorm, 1.0), 1.0)
    c = c * scale
    # Gaussian-window statistics of r = Σ c_k (P_k − mu_k) and of the fused patch
    memo: dict = {}

    def gm(x, y=None):
        return _gmap(x, y, G11, True, "nearest", memo)

    Gf, Gff = gm(f), gm(f, f)
    Gp = [gm(srcs[i]) for i in range(k)]
    Gpf = [gm(srcs[i], f) for i in range(k)]
    Gpp = {(i, j): gm(srcs[i], srcs[j]) for i in range(k) for j in range(i, k)}
    mu1 = sum(c[i] * (Gp[i] - mu[i]) for i in range(k))
    er2 = 0.0
    for i in range(k):
        for j in range(k):
            a, b_ = min(i, j), max(i, j)
            er2 = er2 + c[i] * c[j] * (Gpp[(a, b_)] - mu[j] * Gp[i] - mu[i] * Gp[j] + mu[i] * mu[j])
    s1 = er2 - mu1 * mu1
    s2 = Gff - Gf * Gf
    s12 = sum(c[i] * (Gpf[i] - mu[i] * Gf) for i in range(k)) - mu1 * Gf
    C = (K * 255) ** 2
    return float(((2 * s12 + C) / (s1 + s2 + C)).mean())


MEF_WEIGHTS = np.array([0.0448, 0.2856, 0.3001]) / np.sum([0.0448, 0.2856, 0.3001])


def mef_ssim(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, data_range: float | None = None) -> float:
    """MEF-SSIM (Ma, Zeng & Wang 2015): 3 scales, K=0.03, weights (0.0448, 0.2856, 0.3001) normalised.

    The source stack (A, B) forms a desired structure per 11×11 window; it is
    compared with the fused patch by an SSIM-like term with a Gaussian window.
    Equal to MEFB ``MEF_SSIM`` and Tang ``MS_SSIM``.  NaN below 44 px.
    """
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if min(f.shape) / 4 < 11:
        return undefined("MEF-SSIM needs at least 44 px on the smaller side")
    srcs = [A, B]
    qs = []
    for level in range(3):
        qs.append(_mef_ssim_scale(srcs, f))
        if level < 2:
            srcs, f = [halve(x) for x in srcs], halve(f)
    qs = np.array(qs)
    if np.any(qs < 0):
        return float(np.prod(np.power(qs.astype(complex), MEF_WEIGHTS)).real)
    return float(np.prod(qs ** MEF_WEIGHTS))


def _ssim_yang(x: np.ndarray, y: np.ndarray, memo: dict | None = None):
    """Liu toolbox ``ssim_yang``: Gaussian 7×7 σ=1.5, C1 = C2 = 2e-16, 'valid'."""
    from ._ssim_fast import ssim_formula
    mx, my, vx, vy, cxy = _stats(x, y, (7, 1.5), memo=memo)
    C = 2e-16
    m = ssim_formula(mx, my, vx, vy, cxy, C, C)  # NaN/inf where the denominator is 0, as numpy
    return m, vx, vy, cxy


def qc(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, data_range: float | None = None) -> float:
    """Qc (Cvejić et al. 2005), Liu toolbox/MEFB: covariance-weighted SSIM maps.

    λ = σ_AF/(σ_AF+σ_BF); Q = mean(λ·SSIM_AF + (1−λ)·SSIM_BF) with Q=0 where λ<0,
    Q=1 where λ>1, NaN entries dropped; 7×7 Gaussian windows, C1=C2=2e-16.
    Range [−1, 1] (each local score is a convex combination of two SSIM values
    in [−1, 1], or 0 or 1): an F whose structure is inverted against the sources
    scores below 0 (255 − A with B = A: −0.78 on ``synthetic.triple(64, 2)``'s A).
    Not symmetric in the sources: A is MEFB's ``metricsQc(img1, img2, fused)``
    ``img1``; in fusionbench A is the MRI or visible image (docs/conventions.md);
    swapping them moves the value by 10–13 % on Harvard MRI/PET 25066.
    NaN (undefined) when F, or both sources, are constant.  Where a source or F
    is flat in a window at a non-zero level λ is decided by round-off
    (``flat_window_share``): exact arithmetic gives λ = 1 where only a source is
    flat.  MEFB's round-off comes from Octave's ``filter2`` (the 2-D 7×7 window,
    49 ``daxpy`` steps per column, fused multiply-adds) and ours from two separable
    passes, so the two differ there, and one-sidedly: on the synthetic triples the
    reference's window mean of B's flat patch (level 200) is one ulp above 200, σ_BF
    mostly negative, λ > 1 and the local score 1 (152 of 225 windows on
    syn_s0_128_avg; 52 here, 118 with λ = 1 exactly).  An emulation of Octave's
    order reproduces every MEFB Qc record to ≤ 3.4e-14
    (tests/metrics/test_qc_octave_order.py, docs/metrics.md).
    """
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if min(f.shape) < 11:
        return undefined("Qc needs images of at least 11x11 pixels")
    if f.min() == f.max() or (A.min() == A.max() and B.min() == B.max()):
        # σ_AF = σ_BF = 0 in every window: λ = 0/0 everywhere (MEFB gives NaN for a constant F).
        # Computed, the covariances would be round-off and λ an arbitrary ratio of it.
        return undefined("Qc is undefined when F, or both sources, are constant (λ = 0/0 in every window)")
    memo: dict = {}
    sa, _, _, caf = _ssim_yang(A, f, memo)
    sb, _, _, cbf = _ssim_yang(B, f, memo)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = caf / (caf + cbf)
        s = lam * sa + (1 - lam) * sb
    s = np.where(lam < 0, 0.0, s)
    s = np.where(lam > 1, 1.0, s)
    s = s[~np.isnan(s)]
    return float(s.mean()) if s.size else undefined("Qc is undefined on this input")


def flat_window_share(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, size: int = 7,
                      data_range: float | None = None) -> float:
    """The share of the ``size``×``size`` 'valid' windows in which A, B or F is flat at a non-zero grey level.

    In such a window the exact variance or covariance is 0 but the computed one is
    the round-off of the window sums (≈ 1e-11; exactly 0 only where the level is 0),
    and Qc's C1 = C2 = 2e-16 do not stabilise the weight built on it:
    λ = σ_AF/(σ_AF+σ_BF) lands just above 1 (local score set to 1) or just below
    (score ≈ SSIM_AF).  Which one depends on the summation order, so two
    implementations of the same formula can differ there; each such window moves
    the mean by at most 2/windows.  The calibration allows Qc
    ``calibration.QC_SHARE_FACTOR`` (1) × this share as an absolute bound, about 3×
    the worst measured deviation from MEFB (0.344 × the share).
    """
    from scipy.ndimage import maximum_filter, minimum_filter

    f, A, B = prepare(fused, a, b, data_range=data_range)
    h = size // 2
    if min(f.shape) < size:
        return 0.0
    flat = np.zeros((f.shape[0] - 2 * h, f.shape[1] - 2 * h), dtype=bool)
    for x in (A, B, f):
        hi = maximum_filter(x, size)[h:-h or None, h:-h or None]
        lo = minimum_filter(x, size)[h:-h or None, h:-h or None]
        flat |= (hi == lo) & (hi != 0)
    return float(flat.mean())


def qy(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, data_range: float | None = None) -> float:
    """Qy (Yang et al. 2008), Liu toolbox/MEFB.

    Where SSIM(A,B) ≥ 0.75: λ·SSIM_AF + (1−λ)·SSIM_BF with λ = σ_A²/(σ_A²+σ_B²);
    elsewhere max(SSIM_AF, SSIM_BF).  7×7 Gaussian, C1=C2=2e-16, NaN entries dropped.
    NaN (undefined, with a warning) when F is constant, as :func:`qc`: then σ_F² and σ_XF
    are the round-off of the window sums (exactly 0 only at grey level 0), and with
    C1 = C2 = 2e-16 every SSIM_XF is a ratio of round-offs (before version 2: 0.055 at
    level 128, 7.6e-23 at level 0 on the same sources; MEFB gives 1.0e-17 on the
    constant-F crop, the formula in exact arithmetic 0.0189).
    """
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if min(f.shape) < 11:
        return undefined("Qy needs images of at least 11x11 pixels")
    if f.min() == f.max():
        return undefined("Qy is undefined when F is constant (its SSIM terms with C1 = C2 = 2e-16 are ratios "
                         "of round-offs)")
    memo: dict = {}
    sab, va, vb, _ = _ssim_yang(A, B, memo)
    saf = _ssim_yang(A, f, memo)[0]
    sbf = _ssim_yang(B, f, memo)[0]
    binm = sab >= 0.75
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = va / (va + vb)
        q = (lam * saf + (1 - lam) * sbf) * binm + np.maximum(saf, sbf) * (~binm)
    q = q[~np.isnan(q)]
    return float(q.mean()) if q.size else undefined("Qy is undefined on this input")


def _piella_terms(x: np.ndarray, y: np.ndarray, f: np.ndarray):
    """λ, saliency weights and the two SSIM maps of Liu's ``metricsQw`` (Gaussian 11, L=255, 'valid')."""
    C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    memo: dict = {}
    _, _, vx, vy, _ = _stats(x, y, memo=memo)
    fix = np.where(vx + vy == 0, 0.5, 0.0)
    vx, vy = vx + fix, vy + fix
    lam = vx / (vx + vy)
    # SSIM is symmetric in its arguments; (x, f) shares the window statistics with SSIM's
    s1 = ssim_map(x, f, C1=C1, C2=C2, memo=memo)
    s2 = ssim_map(y, f, C1=C1, C2=C2, memo=memo)
    return lam, np.maximum(vx, vy), s1, s2


def _prewitt_mag(x: np.ndarray) -> np.ndarray:
    """Edge magnitude with Liu's Prewitt-like kernels (``filter2`` 'same', zero padding), per image of a stack.

    The inputs are integer grey levels, so the ±1 sums are exact in any order;
    one compiled pass (``_ssim_fast.prewitt_mag``), equal to the 3×3 correlations.
    """
    from ._ssim_fast import prewitt_mag
    return prewitt_mag(x)


def piella(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, kind: str = "E", alpha: float = 1.0,
           data_range: float | None = None) -> float:
    """Piella & Heijmans' quality indices as implemented in Liu's toolbox (``metricsQw.m``).

    Local SSIM maps (Gaussian 11, L=255, 'valid') replace Piella's UIQI.
    ``kind='S'``: mean of λ·SSIM_AF + (1−λ)·SSIM_BF, λ = σ_A²/(σ_A²+σ_B²).
    ``kind='W'``: the same weighted by the normalised saliency max(σ_A², σ_B²).
    ``kind='E'``: Q_W of the edge-magnitude images (Prewitt-like), raised to ``alpha``
    (=1: exactly MEFB's "Qw", which is therefore Q_E).  Any other ``kind`` (e.g. ``'Q'``, ``'w'``)
    raises ``ValueError`` (until the session 37 audit it silently meant ``'W'``); so does an ``alpha`` that is
    not finite and > 0 (0 made every fusion score 1, a negative one reversed the ranking).
    """
    option("piella", "kind", kind, ("S", "W", "E"))
    alpha = number("piella", "alpha", alpha, low=0, low_open=True)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if min(f.shape) < 11:
        return undefined("Piella metrics need images of at least 11x11 pixels")
    if kind == "E":
        A, B, f = _prewitt_mag(np.stack([A, B, f]))
    lam, sal, s1, s2 = _piella_terms(A, B, f)
    q = lam * s1 + (1 - lam) * s2
    if kind == "S":
        return float(q.mean())
    v = float((sal / sal.sum() * q).sum())
    return v ** alpha if kind == "E" else v
