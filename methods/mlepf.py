"""MLEPF: multi-level edge-preserving filtering with MLMG-PCNN fusion rules.

Tan W., Thitøn W., Xiang P., Zhou H., "Multi-modal brain image fusion based on
multi-level edge-preserving filtering", Biomedical Signal Processing and Control
64, 102280 (2021).  Official MATLAB code: ``WeiTan1992/MLCF-MLMG-PCNN`` (MIT,
commit a3723a9: ``script.m``, ``WMC_GF_decomposition.m``, ``wmcFilter.m``,
``fusion_EA.m``, ``fusion_MLMG_PCNN.m``, ``multilevel_morph.m``,
``PCNN_withParameters.m``).  This is a clean, vectorised re-implementation.

Algorithm, on the HSV value V of each source (``colour='own'``):

1. three-level decomposition: Ic₁..₃ by Gong's weighted-mean-curvature filter
   (2 iterations each, in single precision, then ``uint8(u)/255`` exactly as the
   official ``wmcFilter`` — which makes Ic ∈ {0, 1/255} for V in [0, 1], an
   official quirk kept on purpose), Ig₁..₃ by a 5×5 Gaussian (σ = 20, zero
   padding); fine layers {I − Ic₁, Ig₁ − Ic₂, Ig₂ − Ic₃}, coarse layers
   {Ic₁ − Ig₁, Ic₂ − Ig₂, Ic₃ − Ig₃}, base Ig₃;
2. each of the six layer pairs: choose-max by PCNN firing counts (200 iterations,
   7×7 link kernel 1/distance, α_L = 0.02, α_θ = 3, β = 3, V_L = 1, V_θ = 20) of the
   multi-level morphological gradient MLMG(|d|) = Σ_{i=1..40} (dilate − erode)(|d|, SE(2i+1)) / (2i+1);
3. base: the EA rule (w = exp(4·|B − (mean + median)/2|), normalised);
4. V_fused = the six fused layers + the fused base; the functional image's H and S
   are kept and HSV → RGB gives the output, ``im2uint8`` (values outside [0, 1]
   are clipped only there).  Grey pairs (CT) have H = S = 0: output = V_fused.

Structuring element: MATLAB ``strel('disk', R)`` with its default N = 4 — the
Minkowski sum of four periodic lines plus compensating axis lines, an octagon
that is larger than the Euclidean disk (R = 81: 161×161, 21 961 pixels against
20 593) — which is what the official code gets in MATLAB and what the Octave
reference run emulates.  Because the four line lengths grow monotonically with R,
the 40 dilations/erosions are computed incrementally (each scale = the previous
one dilated by a few 3-point line steps), which is exact (max/min only select values).  ``strel_shape="euclidean"`` gives the true disk
instead (not the official behaviour; for comparison): each disk is the union of its rows, so its
dilation/erosion is the max/min over dy of 1-D running extremes of half-width ⌊√(r² − dy²)⌋ shifted by
dy, the running extremes of every half-width 0..81 shared by the 40 scales (``_mlmg.py``,
``euclidean_mlmg_plane``); same bits as the full-footprint ``ndimage`` reference in :func:`mlmg_numpy`,
1.0–1.5 s per 256² pair instead of ≈ 25 min (loaded 2-core machine).

HSV: Octave's ``rgb2hsv``/``hsv2rgb`` formulas (the reference runs used Octave's).

Speed now: 0.41–0.46 s of single-thread CPU per 256² MRI-PET pair, 0.83–1.06 s for a TNO pair resized to
512² (``fusionbench/_method_costs.py``, two measurements of 2026-12-07).  How it got there: MLMG and the PCNN are compiled
per-plane passes (numba, no fast-math, so every
operation rounds as in the numpy references ``mlmg_numpy`` / ``pcnn_counts_numpy`` kept
for the tests), planes spread over 2 threads: first 1.3 s CPU per 256² pair against 4.8 s for the
whole-array numpy version (same run, loaded 2-core machine); with the compiled WMC step too,
single-thread CPU 0.95 s at 256², 16.9 s at 1024² (17.7× for 16× the pixels), peak resident memory
1.07 GB (``docs/transforms.md``, cost growth).
MLMG groups each scale's line steps into one 5×5-square or 9-point-diamond pass (session 6:
single-thread CPU per 256² pair 1.06 → 0.95 s, 768×576 6.7 → 5.9 s; ``docs/fidelity.md``, MLEPF).
Session 7 (``docs/fidelity.md``, MLEPF): MLMG runs in place, one row of dilation, erosion and sum
at a time, on row slices that LLVM vectorises (``_mlmg.py``); the PCNN stops stepping neurons that
are certified to fire at every later step (``_pcnn.py``).  Same values; single-thread CPU per pair
256² 0.84 → 0.41 s, 768×576 5.6 → 1.4 s (loaded machine).

Fidelity (``tests/methods/test_mlepf.py``, ``docs/fidelity.md``): **bit-exact**
against the official code run under Octave on 6 Harvard pairs (2 CT, 2 PET,
2 SPECT; PSNR inf, MAD 0, 100 % of values exact) and on a non-square 120×150 crop of
MRI-PET 25030 (the official ``script.m`` run here under Octave).  No official fused images
exist (``script.m`` only displays its result).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from fusionbench.method_registry import register_method

from ._matlab import disk_footprint, float_to_uint8_image, strel_disk_params, to_uint8
from . import _mlmg, _pcnn
from ._planes import map_planes

# ---------------------------------------------------------------- colour (Octave formulas)


def rgb2hsv_octave(rgb: np.ndarray) -> np.ndarray:
    """Octave ``rgb2hsv`` of a uint8 H×W×3 image (im2double first); H, S, V in [0, 1]."""
    x = rgb.astype(np.float64) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    lo = x.min(axis=-1)
    v = x.max(axis=-1)
    h = np.zeros_like(v)
    notgray = lo != v
    with np.errstate(invalid="ignore", divide="ignore"):
        span = v - lo
        for plane, value in ((b, 2 / 3 + 1 / 6 * (r - g) / span),
                             (g, 1 / 3 + 1 / 6 * (b - r) / span),
                             (r, 1 / 6 * (g - b) / span)):  # later assignments win, as in Octave
            idx = (v == plane) & notgray
            h[idx] = value[idx]
        h[h < 0] += 1
        s = np.where(notgray, 1 - lo / v, 0.0)
    return np.stack([h, s, v], axis=-1)


def hsv2rgb_octave(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Octave ``hsv2rgb`` (no clipping of V): v(1 − s) + s·v·f(hue) per channel."""
    base = v * (1 - s)
    f = s * v
    out = []
    for hue in (np.mod(h - 2 / 3, 1), h, np.mod(h - 1 / 3, 1)):
        shape = (6 * (hue < 1 / 6) * hue + ((hue >= 1 / 6) & (hue < 1 / 2))
                 + ((hue >= 1 / 2) & (hue < 2 / 3)) * (4 - 6 * hue))
        out.append(base + f * shape)
    return np.stack(out, axis=-1)


# ---------------------------------------------------------------- decomposition

_K1 = np.array([[1, 1, 0], [2, -6, 0], [1, 1, 0]]) / 6
_K2 = np.array([[2, 4, 1], [4, -12, 0], [1, 0, 0]]) / 12
_WMC_KERNELS = [_K1, np.fliplr(_K1), _K1.T, np.flipud(_K1.T),
                _K2, np.fliplr(_K2), np.flipud(_K2), np.rot90(_K2, 2)]


def _conv2_same_single(u: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``conv2(u, k, 'same')`` for a float32 image and 3×3 kernel, accumulated in float32."""
    h, w = u.shape
    padded = np.pad(u, 1)
    k32 = kernel.astype(np.float32)
    acc = np.zeros_like(u)
    for bj in range(3):
        for bi in range(3):
            if k32[bi, bj] != 0:
                # full convolution c(y + bi, x + bj) += u(y, x)·k(bi, bj), cropped to 'same'
                acc += padded[2 - bi : 2 - bi + h, 2 - bj : 2 - bj + w] * k32[bi, bj]
    return acc


def wmc_filter_numpy(img: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Reference (whole-array numpy) version of :func:`wmc_filter`; same values, kept for the tests."""
    u = img.astype(np.float32)
    for _ in range(iterations):
        dist = np.stack([_conv2_same_single(u, k) for k in _WMC_KERNELS])
        idx = np.argmin(np.abs(dist), axis=0)  # first minimum on ties, as MATLAB's min
        u = u + np.take_along_axis(dist, idx[None], axis=0)[0]
    return to_uint8(u).astype(np.float64) / 255


def wmc_filter(img: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Official ``wmcFilter``: weighted mean curvature steps in single precision, then ``uint8(u)/255``.

    Each step: the 8 float32 ``conv2(u, K_i, 'same')`` (zero borders), the one of smallest
    magnitude (the first on ties, as MATLAB's ``min``) added to ``u``.  One compiled pass per step
    (numba, no fast-math): every tap's product and sum rounds in float32 in the order of
    :func:`wmc_filter_numpy`, so the values are identical, without its eight full-size float32
    distance maps and int64 index map (one 1024² call: 0.24 s → 0.06 s CPU, same run).
    """
    u = np.ascontiguousarray(img, dtype=np.float32)
    # the non-zero taps of each kernel in _conv2_same_single's order (columns, then rows), as
    # offsets into u padded by one zero row/column: tap (bi, bj) reads padded[y + 2 − bi, x + 2 − bj]
    taps = [[(2 - bi, 2 - bj, k32[bi, bj]) for bj in range(3) for bi in range(3) if k32[bi, bj] != 0]
            for k32 in (k.astype(np.float32) for k in _WMC_KERNELS)]
    start = np.cumsum([0] + [len(t) for t in taps]).astype(np.int64)
    dy = np.array([t[0] for ts in taps for t in ts], dtype=np.int64)
    dx = np.array([t[1] for ts in taps for t in ts], dtype=np.int64)
    wt = np.array([t[2] for ts in taps for t in ts], dtype=np.float32)
    step = _wmc_step_kernel()
    for _ in range(iterations):
        padded = np.pad(u, 1)
        step(padded, start, dy, dx, wt, u)
    return to_uint8(u).astype(np.float64) / 255


_WMC_STEP = None


def _wmc_step_kernel():
    """The compiled WMC step (numba; compiled on first use, cached on disk)."""
    global _WMC_STEP
    if _WMC_STEP is None:
        from numba import njit

        @njit(cache=True, nogil=True)
        def step(padded, start, dy, dx, wt, u):  # pragma: no cover
            # u ← u + the distance of smallest magnitude (the first on ties); padded is u with a zero
            # border.  A row at a time: each pixel's taps still add in the reference order.
            h, w = u.shape
            nk = start.shape[0] - 1
            acc = np.empty(w, np.float32)
            best = np.empty(w, np.float32)
            best_abs = np.empty(w, np.float32)
            for y in range(h):
                for k in range(nk):
                    acc[:] = 0.0
                    for t in range(start[k], start[k + 1]):
                        c0 = dx[t]
                        src = padded[y + dy[t], c0:c0 + w]   # a slice indexed from 0: LLVM vectorises
                        wv = wt[t]
                        for x in range(w):
                            acc[x] += src[x] * wv
                    for x in range(w):
                        a = abs(acc[x])
                        if k == 0 or a < best_abs[x]:   # strict: the first minimum wins ties
                            best_abs[x] = a
                            best[x] = acc[x]
                centre = padded[y + 1, 1:w + 1]
                row = u[y]
                for x in range(w):
                    row[x] = centre[x] + best[x]
            return u

        _WMC_STEP = step
    return _WMC_STEP


def _gaussian_kernel(size: int = 5, sigma: float = 20.0) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', 5, 20)`` of the official ``WMC_GF_decomposition.m``: 5×5 taps, normalised.

    ``exp`` is numpy's, which picks its loop from the CPU (``docs/cpu_independence.md``): 4 of the 25 taps
    differ by one ulp between the AVX-512 and AVX2 paths (measured), where the metrics' ``gaussian_1d``
    (``metrics/functional/_filters.py``) uses the C library's ``exp`` because Qcb amplifies such a last bit.
    Here it never reaches the output: the taps are positive and sum to 1, so a smoothed value moves by about an
    ulp, far below the fused image's uint8 step, and MLEPF's fused images are identical on every value with
    numpy (and numba, OpenBLAS) held to AVX2 or SSE4 (``docs/cpu_independence.md``, the fused images).
    """
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def decompose(img: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """``WMC_GF_decomposition``: (fine layers, coarse layers, base)."""
    from scipy import ndimage
    g = _gaussian_kernel()
    gauss = lambda x: ndimage.convolve(x, g, mode="constant", cval=0.0)  # noqa: E731  imfilter 'conv', zero pad
    ic1 = wmc_filter(img)
    ig1 = gauss(img)
    ic2 = wmc_filter(ic1)
    ig2 = gauss(ig1)
    ic3 = wmc_filter(ic2)
    ig3 = gauss(ig2)
    return [img - ic1, ig1 - ic2, ig2 - ic3], [ic1 - ig1, ic2 - ig2, ic3 - ig3], ig3


def fusion_ea(b1: np.ndarray, b2: np.ndarray, a: float = 4.0) -> np.ndarray:
    """Official ``fusion_EA``: exp(a·|B − (mean + median)/2|) weights, normalised."""
    g1 = (b1.mean() + np.median(b1)) / 2
    g2 = (b2.mean() + np.median(b2)) / 2
    w1 = np.exp(a * np.abs(b1 - g1))
    w2 = np.exp(a * np.abs(b2 - g2))
    return (w1 / (w1 + w2)) * b1 + (w2 / (w1 + w2)) * b2


# ---------------------------------------------------------------- MLMG


def _line_steps(shape: str, scales: int) -> list[tuple[int, int]]:
    """(axis, diagonal) half-lengths of the SE of every scale 2i + 1, i = 1..scales."""
    if shape == "matlab":
        return [strel_disk_params(2 * i + 1) for i in range(1, scales + 1)]
    raise ValueError(shape)


def _dilate_lines(canvas: np.ndarray, steps: tuple[int, int, int, int]) -> None:
    """In-place dilation of (..., H, W) planes by PL(n_v, v) for v = (1,0), (0,1), (1,1), (−1,1)."""
    hh, ww = canvas.shape[-2:]
    for (dy, dx), n in zip(((1, 0), (0, 1), (1, 1), (-1, 1)), steps):
        ay, ax = abs(dy), abs(dx)
        for _ in range(n):
            # interior points x with x ± v inside: max(c(x − v), c(x + v)) first, then with c(x)
            ys = slice(ay, hh - ay)
            xs = slice(ax, ww - ax)
            minus = canvas[..., ay - dy : hh - ay - dy, ax - dx : ww - ax - dx]
            plus = canvas[..., ay + dy : hh - ay + dy, ax + dx : ww - ax + dx]
            both = np.maximum(minus, plus)
            np.maximum(canvas[..., ys, xs], both, out=canvas[..., ys, xs])


def mlmg_numpy(maps: np.ndarray, scales: int = 40, shape: str = "matlab") -> np.ndarray:
    """Reference (numpy) version of :func:`mlmg`: same values.

    Reference implementation kept for the tests (``tests/methods/test_mlepf.py``,
    ``tests/methods/test_mlepf_euclidean.py``).

    Σ_{i=1..scales} (imdilate − imerode)(x, SE(2i + 1)) / (2i + 1), with MATLAB's
    ±Inf borders.  Exact: dilation and erosion only select values, so they are
    done on integer ranks (order-preserving), incrementally from scale to scale.
    ``shape="euclidean"``: ``ndimage.grey_dilation`` / ``grey_erosion`` with the full disk
    footprint, ``mode="nearest"`` (the same as ±Inf padding for a disk: a clipped offset stays
    in the disk) — about 2 min a 256² plane; :func:`mlmg` decomposes the disk into rows
    (``_mlmg.euclidean_mlmg_plane``, same bits).
    """
    from scipy import ndimage
    n, h, w = maps.shape
    if shape == "euclidean":
        out = np.zeros_like(maps)
        for i in range(1, scales + 1):
            fp = disk_footprint(2 * i + 1)
            for p in range(n):
                g = (ndimage.grey_dilation(maps[p], footprint=fp, mode="nearest")
                     - ndimage.grey_erosion(maps[p], footprint=fp, mode="nearest"))
                out[p] = out[p] + 1 / (2 * i + 1) * g
        return out
    steps = _line_steps(shape, scales)
    axis_max, diag_max = steps[-1]
    pad = axis_max + 2 * diag_max + 1  # +1: the canvas edge is never reached
    # ranks 1..m per plane (0 = outside); erosion = dilation of the reversed ranks
    values, ranks = [], []
    for p in range(n):
        uniq, inv = np.unique(maps[p], return_inverse=True)
        values.append(uniq)
        ranks.append(inv.reshape(h, w) + 1)
    top = max(len(v) for v in values)
    dtype = np.uint16 if top + 1 <= np.iinfo(np.uint16).max else np.uint32
    canvas = np.zeros((2, n, h + 2 * pad, w + 2 * pad), dtype=dtype)
    for p in range(n):
        canvas[0, p, pad:pad + h, pad:pad + w] = ranks[p]
        canvas[1, p, pad:pad + h, pad:pad + w] = len(values[p]) + 1 - ranks[p]
    # one lookup for all planes: plane p's rank r (1..m_p) sits at offset[p] + r
    sizes = np.array([len(v) for v in values])
    offset = np.concatenate([[0], np.cumsum(sizes + 1)[:-1]])
    lookup = np.concatenate([np.concatenate([[0.0], v]) for v in values])
    off = offset[:, None, None]
    top_rank = (sizes + 1)[:, None, None]
    out = np.zeros_like(maps)
    prev = (0, 0)
    inner = (slice(None), slice(pad, pad + h), slice(pad, pad + w))
    for i, (a, d) in enumerate(steps, start=1):
        _dilate_lines(canvas, (a - prev[0], a - prev[0], d - prev[1], d - prev[1]))
        prev = (a, d)
        dil = lookup[off + canvas[0][inner]]
        ero = lookup[off + top_rank - canvas[1][inner]]
        out = out + 1 / (2 * i + 1) * (dil - ero)
    return out


def mlmg(maps: np.ndarray, scales: int = 40, shape: str = "matlab", workers: int | None = None) -> np.ndarray:
    """Official ``multilevel_morph`` of each plane of ``maps`` (N×H×W, float64).

    Σ_{i=1..scales} (imdilate − imerode)(x, SE(2i + 1)) / (2i + 1), with MATLAB's
    ±Inf borders.  Dilation and erosion only select values, so they are exact in
    any order and grouping; each scale's SE is the previous one dilated by a few
    3-point line steps (the line lengths grow monotonically with R), applied to the
    float64 values in compiled passes (numba), only over the rows and columns that
    finite values can have reached; the sum adds the scales in the reference's order
    (:func:`mlmg_numpy`).  The steps of one scale are grouped (issue 23, session 6):
    two vertical and two horizontal steps are one 5×5-square pass (max of 5 rows,
    then of 5 columns), one diagonal and one anti-diagonal step one 9-point diamond
    pass — the only increments of ``strel('disk')`` up to at least 80 scales; any
    other increment runs step by step.  Session 7: these passes run in place, a row of
    dilation, erosion and sum at a time (``_mlmg.py``, same values); other increments use
    the scale-by-scale kernel.  Planes are spread over ``workers`` threads.
    """
    if shape == "euclidean":  # the true disk: row-decomposed, all scales sharing the running extremes (_mlmg.py)
        x = np.ascontiguousarray(maps, dtype=np.float64)
        out = np.zeros_like(x)
        map_planes(lambda i: _mlmg.euclidean_mlmg_plane(x[i], scales, out[i]), x.shape[0], workers)
        return out
    if shape != "matlab":
        return mlmg_numpy(maps, scales, shape)
    x = np.ascontiguousarray(maps, dtype=np.float64)
    steps = np.array(_line_steps(shape, scales), dtype=np.int64)
    coefs = np.array([1 / (2 * i + 1) for i in range(1, scales + 1)])
    out = np.zeros_like(x)
    wavefront = _mlmg.wavefront_kernel()

    def one(i: int) -> None:
        if not wavefront(x[i], steps, coefs, _mlmg.BLOCK, out[i]):  # increments other than square/diamond
            _mlmg_plane_kernel()(x[i], steps, coefs, True, out[i])

    map_planes(one, x.shape[0], workers)
    return out


@lru_cache(maxsize=None)
def _mlmg_plane_kernel():
    """The compiled one-plane, scale-by-scale MLMG (numba; imported on first use, cached on disk).

    ``plane(img, steps, coefs, grouped, out)`` of :mod:`methods._mlmg_kernels` (``scale_plane``);
    ``grouped=False`` does every 3-point line step as its own pass (the session-5 kernel, kept for
    the tests).  At module level there (session 9): built here as a closure over its helper kernels,
    it missed numba's disk cache in every new process.
    """
    from ._mlmg_kernels import scale_plane

    return scale_plane


# ---------------------------------------------------------------- PCNN


def _pair_sum(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    """a(x − k) + a(x + k) along ``axis`` with zero borders."""
    out = np.zeros_like(a)
    lo = [slice(None)] * a.ndim
    hi = [slice(None)] * a.ndim
    lo[axis], hi[axis] = slice(k, None), slice(None, -k)
    out[tuple(lo)] += a[tuple(hi)]
    out[tuple(hi)] += a[tuple(lo)]
    return out


class _LinkConvolution:
    """``conv2(Y, W, 'same')`` of binary planes Y for the 7×7 1/distance kernel.

    W takes 9 values (squared distances 1, 2, 4, 5, 8, 9, 10, 13, 18); the number
    of firing neighbours at each distance is an exact small integer, obtained from
    horizontal and vertical pair sums in uint8, and K = Σ w_d·n_d is read from two
    lookup tables over packed counts.  Equal to the direct convolution up to the
    summation order (≤ 1e-14).
    """

    _FIRST = (1, 4, 9, 2, 5)
    _SECOND = (8, 10, 13, 18)

    def __init__(self) -> None:
        def table(dists: tuple[int, ...]) -> np.ndarray:
            maxes = [self._neighbours(d) + 1 for d in dists]
            grids = np.meshgrid(*[np.arange(m) for m in maxes], indexing="ij")
            total = np.zeros(grids[0].shape)
            for d, g in zip(dists, grids):
                total = total + (1 / np.sqrt(d)) * g
            return total.ravel()  # C order: last distance varies fastest

        self._lut1 = table(self._FIRST)
        self._lut2 = table(self._SECOND)

    @staticmethod
    def _neighbours(d2: int) -> int:
        return 4 if d2 in (1, 2, 4, 8, 9, 18) else 8

    def _index(self, counts: dict[int, np.ndarray], dists: tuple[int, ...]) -> np.ndarray:
        idx = np.zeros(next(iter(counts.values())).shape, dtype=np.int32)
        for d in dists:
            idx *= self._neighbours(d) + 1
            idx += counts[d]
        return idx

    def __call__(self, y: np.ndarray) -> np.ndarray:
        y8 = y.astype(np.uint8)
        h = [y8] + [_pair_sum(y8, k, -1) for k in (1, 2, 3)]
        v = {(i, j): _pair_sum(h[j], i, -2) for i in (1, 2, 3) for j in range(4)}
        counts = {1: v[1, 0] + h[1], 4: v[2, 0] + h[2], 9: v[3, 0] + h[3], 2: v[1, 1],
                  5: v[1, 2] + v[2, 1], 8: v[2, 2], 10: v[1, 3] + v[3, 1], 13: v[2, 3] + v[3, 2], 18: v[3, 3]}
        return self._lut1[self._index(counts, self._FIRST)] + self._lut2[self._index(counts, self._SECOND)]


def pcnn_counts_numpy(stim: np.ndarray, iterations: int = 200, alpha_l: float = 0.02, alpha_theta: float = 3.0,
                      beta: float = 3.0, v_l: float = 1.0, v_theta: float = 20.0, link: int = 7) -> np.ndarray:
    """Reference (whole-array numpy) version of :func:`pcnn_counts`; same values, kept for the tests."""
    if link != 7:
        raise ValueError("only the official 7×7 link kernel is implemented")
    conv = _LinkConvolution()
    f = np.abs(stim)
    lnk = np.zeros_like(f)
    theta = np.zeros_like(f)
    u = np.empty_like(f)
    fired = np.zeros(f.shape, dtype=bool)
    count = np.zeros(f.shape, dtype=np.int32)
    dl, dt = np.exp(-alpha_l), np.exp(-alpha_theta)
    for _ in range(iterations):
        k = conv(fired)
        lnk *= dl
        if v_l != 1:
            k *= v_l
        lnk += k
        theta *= dt
        np.add(theta, v_theta, out=theta, where=fired)  # + V_θ·Y with Y ∈ {0, 1}: same values
        np.multiply(lnk, beta, out=u)
        u += 1
        u *= f
        np.greater(u, theta, out=fired)
        count += fired
    return count.astype(np.float64)



def _link_index_coefficients() -> np.ndarray:
    """Packed-index weight of a firing neighbour at (|dy|, |dx|), 0 ≤ |dy|, |dx| ≤ 3.

    The lookup indices of :class:`_LinkConvolution` are linear in the neighbour
    counts, so ``i1·2048 + i2`` (``i2`` < 2025, ``i1`` < 5625) is a correlation of the
    firing map with one symmetric integer kernel, computed separably.
    """
    conv = _LinkConvolution
    coef = np.zeros((4, 4), dtype=np.int32)
    for which, dists in ((0, conv._FIRST), (1, conv._SECOND)):
        m = 1
        for d in reversed(dists):
            for dy in range(4):
                for dx in range(4):
                    if dy * dy + dx * dx == d:
                        coef[dy, dx] = m * (2048 if which == 0 else 1)
            m *= conv._neighbours(d) + 1
    return coef


def pcnn_counts(stim: np.ndarray, iterations: int = 200, alpha_l: float = 0.02, alpha_theta: float = 3.0,
                beta: float = 3.0, v_l: float = 1.0, v_theta: float = 20.0, link: int = 7,
                workers: int | None = None, freeze: bool = True, work: np.ndarray | None = None) -> np.ndarray:
    """Official ``PCNN_withParameters`` firing counts of every plane of ``stim`` (N×H×W).

    L = e^{−α_L}·L + V_L·(W ∗ Y); Θ = e^{−α_θ}·Θ + V_θ·Y; U = F·(1 + β·L); Y = U > Θ.
    One compiled pass per iteration and plane (numba, no fast-math, so every
    floating-point operation rounds as in the numpy reference
    :func:`pcnn_counts_numpy` and the counts are identical): the link input K is read
    from the same lookup tables, indexed by an exact integer correlation of the
    firing map (horizontal pair sums, then seven rows); Θ + V_θ·Y with Y ∈ {0, 1}
    equals the reference's masked add.  Planes are spread over
    ``workers`` threads (default: the runner's per-worker cap, else 2).

    ``freeze`` (default): neurons certified to fire at every later step get their final count
    and are no longer computed (``methods/_pcnn.py`` states the certificate); the counts are
    the same.  ``work`` (N×2 int64, optional) receives per plane the pixel-steps computed and
    the certifications kept.
    """
    if link != 7:
        raise ValueError("only the official 7×7 link kernel is implemented")
    f = np.ascontiguousarray(np.abs(stim), dtype=np.float64)
    conv = _LinkConvolution()
    coef = _link_index_coefficients()
    plane = _pcnn.kernels().plane_counts
    counts = np.zeros(f.shape, dtype=np.int32)
    dl, dt = float(np.exp(-alpha_l)), float(np.exp(-alpha_theta))
    freeze = freeze and _pcnn.freeze_allowed(dl, dt, beta, v_l, v_theta)
    args = (int(iterations), dl, dt, float(beta), float(v_l), float(v_theta), conv._lut1, conv._lut2, coef)
    rest = (bool(freeze), _pcnn.FIRST_CHECK, _pcnn.SPARSE_CHECK, _pcnn.SPARSE_FRACTION)
    if work is None:
        work = np.zeros((f.shape[0], 2), dtype=np.int64)
    map_planes(lambda i: plane(f[i], *args, counts[i], *rest, work[i]), f.shape[0], workers)
    return counts.astype(np.float64)


# ---------------------------------------------------------------- fusion


def fuse_value(v1: np.ndarray, v2: np.ndarray, *, t: int = 4, strel_shape: str = "matlab") -> np.ndarray:
    """Fused V of two V planes (float64 in [0, 1]): ``script.m`` from the decomposition on."""
    fine1, coarse1, base1 = decompose(v1)
    fine2, coarse2, base2 = decompose(v2)
    fused_base = fusion_ea(base1, base2, 4)
    layers1 = [fine1[0], coarse1[0], fine1[1], coarse1[1], fine1[2], coarse1[2]]
    layers2 = [fine2[0], coarse2[0], fine2[1], coarse2[1], fine2[2], coarse2[2]]
    stack = np.stack(layers1 + layers2)
    grad = mlmg(np.abs(stack, out=stack), scales=10 * t, shape=strel_shape)  # the stack is a copy: |·| in place
    del stack
    counts = pcnn_counts(grad)
    del grad
    n = len(layers1)
    total = None
    for j in range(n):
        choose = counts[j] >= counts[n + j]
        layer = np.where(choose, layers1[j], layers2[j])
        total = layer if total is None else total + layer
    return total + fused_base


def mlepf_uint8(mri: np.ndarray, func: np.ndarray, *, t: int = 4, strel_shape: str = "matlab") -> np.ndarray:
    """``script.m`` on uint8 images: MRI / visible and functional / IR, each grey or RGB; returns uint8.

    H and S come from the functional image (official); when only the first image is colour
    (a colour visible image with a grey infrared one) they come from it, so the visible colour is kept.
    """
    rgb1 = mri if mri.ndim == 3 else np.repeat(mri[..., None], 3, axis=2)
    rgb2 = func if func.ndim == 3 else np.repeat(func[..., None], 3, axis=2)
    hsv1 = rgb2hsv_octave(rgb1)
    hsv2 = rgb2hsv_octave(rgb2)
    fused_v = fuse_value(hsv1[..., 2], hsv2[..., 2], t=t, strel_shape=strel_shape)
    # official: the functional image's H and S; a colour visible image (colour ``mri`` side, grey IR) keeps its own
    hs = hsv1 if (mri.ndim == 3 and func.ndim != 3) else hsv2
    rgb = to_uint8(hsv2rgb_octave(hs[..., 0], hs[..., 1], fused_v) * 255)
    return rgb if (func.ndim == 3 or mri.ndim == 3) else rgb[..., 0]


_CITATION = ("Tan W., Thitøn W., Xiang P., Zhou H., Multi-modal brain image fusion based on multi-level "
             "edge-preserving filtering, Biomedical Signal Processing and Control 64:102280, 2021. "
             "Code: github.com/WeiTan1992/MLCF-MLMG-PCNN")


@register_method("mlepf", display_name="MLEPF", family="edge-preserving", citation=_CITATION, colour="own",
                 version="2", params={"t": 4, "strel_shape": "matlab"})
def mlepf(a: np.ndarray, b: np.ndarray, *, t: int = 4, strel_shape: str = "matlab") -> np.ndarray:
    """MLEPF (official arithmetic); ``a`` MRI grey, ``b`` functional grey or RGB, floats in [0, 1]; returns uint8."""
    return mlepf_uint8(float_to_uint8_image(a), float_to_uint8_image(b), t=t, strel_shape=strel_shape)
