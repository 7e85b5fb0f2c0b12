"""Shared parts of the neural-P-system fusion baselines CNP and DTNP.

Both methods come from the same authors (Li, Peng et al.) and share most of
their fusion rules; only the neuron model and the transform differ:

* **CNP** (coupled neural P systems, NSST domain; ``MorvanLi/CNP-MIF``): the
  low band goes through a CNP neuron model (:func:`cnp_firing_counts`), the
  high bands through the WLE·INSML choose-max rule (:func:`wle_insml_rule`).
* **DTNP** (dynamic-threshold neural P systems, NSCT domain;
  ``MorvanLi/DTNP-MIF``): the *opposite* assignment: WLE·INSML for the low band,
  the DTNP neuron model (:func:`dtnp_firing_counts`) on ``INSML(|c|)`` for the
  high bands.

Everything here reproduces the official MATLAB arithmetic as run under GNU
Octave 7.3 (``../shared/official/octave_runs/MANIFEST.md``), down to the order
of floating-point additions where it is cheap to do so:

* Octave's ``conv2(p, W, 'same')`` is a full "outer" convolution (liboctave's
  ``dconv2o``: for each input column, for each kernel column, for each kernel
  row, ``c += w·x``) followed by cropping.  For the output pixel this adds the
  contributions of its neighbours column by column from left to right and, in a
  column, from the bottom row to the top row.  The neuron models below add the
  link inputs in exactly that order (for DTNP through a 512-entry table of all
  3×3 firing patterns; for CNP with 48 ordered array additions).
* ``conv2(x, w, 'valid')`` and ``imfilter`` (which pads and calls
  ``convn(·, 'valid')``) are "inner" convolutions (``dconv2i``): kernel columns
  from right to left of the input window, rows from bottom to top.
* ``sum(window(:))`` of a 3×3 window adds in column-major order.

The readable neuron models are the proxies validated in the Octave runs
(bit-exact against the authors' P-code results on three pairs each):
``CNP_test.m`` (θ0 = 0.3, a 7×7 link kernel of 1/distance, threshold set to
the output p = 1 after a firing) and ``DTNP.m`` (Θ0 = 1, 3×3 link kernel,
p = 1.1 on firing and Θ ← Θ − 1 + p).

All loops here run over iterations or kernel taps, never over pixels; every map
may carry leading batch dimensions (``(..., H, W)``), so all subbands of a
level, or both source images, go through one call.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from ._planes import map_planes

_INV_SQRT2 = 1.0 / np.sqrt(2.0)


# ----------------------------------------------------------------------------
# Link kernels and Octave's conv2 accumulation order
# ----------------------------------------------------------------------------
def link_kernel(size: int) -> np.ndarray:
    """The size×size link kernel of both neuron models: 1/distance to the centre, 0 at the centre.

    Same values as the MATLAB ``W(i,j) = 1./sqrt((i-c).^2+(j-c).^2)``.
    """
    r = np.arange(size) - size // 2
    d2 = (r[:, None] ** 2 + r[None, :] ** 2).astype(np.float64)
    with np.errstate(divide="ignore"):
        w = 1.0 / np.sqrt(d2)
    w[size // 2, size // 2] = 0.0
    return w


def conv_same_order(size: int) -> list[tuple[int, int, float]]:
    """Neighbour offsets ``(dr, dc, w)`` in the order Octave's ``conv2(p, W, 'same')`` adds them.

    Columns left to right (``dc`` ascending), inside a column bottom to top
    (``dr`` descending); the zero centre tap is left out (adding ``0·p`` to a
    non-negative sum changes nothing).  ``W`` is symmetric, so the flip of the
    convolution does not change the weights.
    """
    w = link_kernel(size)
    h = size // 2
    return [
        (dr, dc, float(w[h - dr, h - dc]))
        for dc in range(-h, h + 1)
        for dr in range(h, -h - 1, -1)
        if (dr, dc) != (0, 0)
    ]


def _shifted(padded: np.ndarray, dr: int, dc: int, h: int, shape: tuple[int, int]) -> np.ndarray:
    """View of ``padded`` (padded by ``h`` on the last two axes) at offset ``(dr, dc)``."""
    rows, cols = shape
    return padded[..., h + dr: h + dr + rows, h + dc: h + dc + cols]


def _fma_exact(a: float, b: float, c: float) -> float:
    """Correctly rounded ``a*b + c`` (a fused multiply-add), via exact rationals."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


@lru_cache(maxsize=8)
def link_table(p: float, fma: bool) -> np.ndarray:
    """``conv2(P, W, 'same')`` at one pixel for every firing pattern of its 3×3 window (DTNP).

    Entry ``k`` (9 bits) is the sum of ``w·p`` over the window cells whose bit
    is set, added in Octave's order (:func:`conv_same_order`).  Bit ``3·i + j``
    is window column ``i`` (left to right) and row ``j`` (bottom to top), so the
    bit order is the addition order; the centre bit has weight 0 and changes
    nothing.  ``fma=True`` rounds each step as a fused multiply-add (what a
    BLAS ``daxpy`` built with FMA instructions does), ``False`` as a product then
    a sum; which one the Octave runs used is unknown, and both give the same
    fused images on all 17 reference pairs.
    """
    w = link_kernel(3)
    seq = [float(w[1 - dr, 1 - dc]) for dc in (-1, 0, 1) for dr in (1, 0, -1)]
    table = np.empty(2 ** len(seq), dtype=np.float64)
    for pattern in range(table.size):
        acc = 0.0
        for bit, weight in enumerate(seq):
            if pattern >> bit & 1:
                acc = _fma_exact(weight, p, acc) if fma else acc + weight * p
        table[pattern] = acc
    table.setflags(write=False)
    return table


# ----------------------------------------------------------------------------
# Neuron models
# ----------------------------------------------------------------------------
def cnp_firing_counts(
    stimulus: np.ndarray,
    iterations: int = 110,
    *,
    theta0: float = 0.3,
    link_size: int = 7,
    workers: int | None = None,
) -> np.ndarray:
    """Firing counts of the coupled neural P system of ``CNP_test`` (the CNP-MIF neuron model).

    ``stimulus`` is ``(..., H, W)`` (the official code feeds ``|low band|``).
    Per iteration, with ``work = conv2(p, W, 'same')`` (zero padding):

    * where the neuron did not fire: ``F ← F + S + work``, ``L ← L + work``;
    * where it fired: ``F ← S + work``, ``L ← work``, threshold ``θ ← p = 1``;
    * ``p = [F·(1 + L) ≥ θ]``, and the count adds ``p``.

    θ starts at ``theta0``; as it is only ever reset to the output p = 1, it is
    ``theta0`` until the first firing and 1 afterwards.  Returns int32 counts.
    One compiled pass per iteration and map (numba, no fast-math): ``work`` adds
    ``w·p`` tap by tap in Octave's order (:func:`conv_same_order`) for a row at a
    time, so every value rounds exactly as in :func:`cnp_firing_counts_numpy`.
    Once every neuron of a map has fired in two consecutive iterations the map is at a
    fixed point (the next step gets the same p, θ = 1 and restarted F, L), so the
    remaining iterations add one firing each without being computed: same counts.
    On the test pairs that happens after 3-5 iterations (TNO) and 22-47 (Harvard) of 110.
    The same holds locally (issue 23, session 9): a segment of ``_CNP_BLOCK`` columns of a row
    whose rows ``± link_size // 2`` and neighbouring segments fired whole in the previous two
    iterations is not recomputed (its counts add one; :func:`._neural_p_kernels.cnp_plane`),
    so an iteration costs in proportion to the part of the map still changing.  A 4× enlarged
    image needs more iterations to settle (the 7×7 link spans a quarter of the structure), so
    that part stays larger for longer: the counts are the model's, not a cost of the code.
    Maps are spread over ``workers`` threads (default: the runner's cap, else 2).
    """
    s = np.ascontiguousarray(stimulus, dtype=np.float64)
    lead, (rows, cols) = s.shape[:-2], s.shape[-2:]
    flat = s.reshape((-1, rows, cols))
    order = conv_same_order(link_size)
    dr = np.array([o[0] for o in order], dtype=np.int64)
    dc = np.array([o[1] for o in order], dtype=np.int64)
    wt = np.array([o[2] for o in order], dtype=np.float64)
    out = np.zeros(flat.shape, dtype=np.int32)
    kernel = _cnp_plane_kernel()
    block = max(_CNP_BLOCK, link_size // 2)
    map_planes(lambda i: kernel(flat[i], int(iterations), float(theta0), link_size // 2, dr, dc, wt, block, out[i]),
               flat.shape[0], workers)
    return out.reshape(lead + (rows, cols))


#: columns per segment of the CNP kernel's local fixed-point test (:func:`methods._neural_p_kernels.cnp_plane`;
#: 32 and 64 within a few per cent at 256² and 1024², 128 skips less at 1024²)
_CNP_BLOCK = 32


@lru_cache(maxsize=None)
def _cnp_plane_kernel():
    """The compiled one-map CNP neuron model (:func:`methods._neural_p_kernels.cnp_plane`; numba, imported on
    first use, cached on disk)."""
    from ._neural_p_kernels import cnp_plane

    return cnp_plane


def cnp_firing_counts_numpy(
    stimulus: np.ndarray,
    iterations: int = 110,
    *,
    theta0: float = 0.3,
    link_size: int = 7,
) -> np.ndarray:
    """Reference (whole-array numpy) version of :func:`cnp_firing_counts`; same counts.

    Firing counts of the coupled neural P system of ``CNP_test`` (the CNP-MIF neuron model).

    ``stimulus`` is ``(..., H, W)`` (the official code feeds ``|low band|``).
    Per iteration, with ``work = conv2(p, W, 'same')`` (zero padding):

    * where the neuron did not fire: ``F ← F + S + work``, ``L ← L + work``;
    * where it fired: ``F ← S + work``, ``L ← work``, threshold ``θ ← p = 1``;
    * ``p = [F·(1 + L) ≥ θ]``, and the count adds ``p``.

    θ starts at ``theta0``; as it is only ever reset to the output p = 1, it is
    ``theta0`` until the first firing and 1 afterwards.  Returns int32 counts.
    """
    s = np.ascontiguousarray(stimulus, dtype=np.float64)
    shape = s.shape[-2:]
    h = link_size // 2
    order = conv_same_order(link_size)
    f = np.zeros_like(s)
    link = np.zeros_like(s)
    work = np.empty_like(s)
    tmp = np.empty_like(s)
    theta = np.full_like(s, theta0)
    fired = np.zeros(s.shape, dtype=bool)
    counts = np.zeros(s.shape, dtype=np.int32)
    padded = np.zeros(s.shape[:-2] + (shape[0] + 2 * h, shape[1] + 2 * h), dtype=np.float64)
    centre = padded[..., h:h + shape[0], h:h + shape[1]]
    for _ in range(iterations):
        # work = conv2(p, W, 'same'), added in Octave's order (p is 0/1, so w·p is exact).
        centre[...] = fired
        work.fill(0.0)
        for dr, dc, w in order:
            np.multiply(_shifted(padded, dr, dc, h, shape), w, out=tmp)
            work += tmp
        keep = ~fired
        f *= keep          # fired neurons restart from 0 (0 + S == S exactly)
        f += s
        f += work
        link *= keep
        link += work
        theta[fired] = 1.0
        np.multiply(f, 1.0 + link, out=tmp)
        np.greater_equal(tmp, theta, out=fired)
        counts += fired
    return counts


@lru_cache(maxsize=8)
def _dtnp_thresholds(theta0: float, p: float, n: int) -> np.ndarray:
    """Θ after k firings, k = 0..n, accumulated exactly as ``Θ ← Θ − 1 + p`` in float64."""
    out = np.empty(n + 1, dtype=np.float64)
    out[0] = theta0
    for k in range(1, n + 1):
        out[k] = (out[k - 1] - 1.0) + p
    out.setflags(write=False)
    return out


def dtnp_firing_counts(
    stimulus: np.ndarray,
    iterations: int = 110,
    *,
    theta0: float = 1.0,
    p_fire: float = 1.1,
    fma: bool = True,
    chunk_pixels: int = 1 << 18,
    workers: int | None = None,
) -> np.ndarray:
    """Firing counts of the dynamic-threshold neural P system of ``DTNP.m`` (3×3 link kernel).

    ``stimulus`` is ``(..., H, W)`` (the official code feeds ``INSML(|c|)``).
    Per iteration, with ``work = conv2(p, W, 'same')``:

    * where the neuron did not fire: ``U ← U + C + work``;
    * where it fired: ``U ← C + work`` and ``Θ ← Θ − 1 + p``;
    * ``p = p_fire`` where ``U ≥ Θ``, else 0.

    The official score is the sum of the outputs p, i.e. ``p_fire`` × the count;
    summing the same positive number is monotone, so comparing counts gives the
    same decisions.  Returns int32 counts.

    ``work`` only depends on which of the 9 window cells fired, so it is looked
    up in :func:`link_table` (exact Octave addition order; ``fma`` selects the
    rounding of ``w·1.1``).  Compiled per map (numba, no fast-math), maps spread over
    ``workers`` threads (default: the runner's per-worker cap, else 2); every value
    rounds exactly as in the numpy reference :func:`dtnp_firing_counts_numpy`:
    ``(U' + C) + work``, and Θ is kept per pixel and updated by the same float64
    recursion ``(Θ − 1) + p`` as :func:`_dtnp_thresholds` (so Θ equals its entry
    for the pixel's count).  For speed (issue 23, session 6) each row is done in
    passes LLVM vectorises (3-bit column codes, 9-bit window codes, the update),
    with only the table lookup scalar, and the iterations are temporally blocked:
    ``block`` iterations sweep the map together as a wavefront (iteration t + 1 of
    row y right after iteration t of row y + 1), so a band of rows stays in cache
    for ``block`` iterations.  Per pixel the operations and their order are
    unchanged, so the counts are the same.  ``chunk_pixels`` is kept for the
    reference only.
    """
    c = np.ascontiguousarray(stimulus, dtype=np.float64)
    lead, (rows, cols) = c.shape[:-2], c.shape[-2:]
    flat = c.reshape((-1, rows, cols))
    out = np.zeros(flat.shape, dtype=np.int32)
    table = np.ascontiguousarray(link_table(p_fire, fma))
    kernel = _dtnp_plane_kernel()
    args = (int(iterations), table, float(theta0), float(p_fire), _DTNP_BLOCK)
    map_planes(lambda i: kernel(flat[i], *args, out[i]), flat.shape[0], workers)
    return out.reshape(lead + (rows, cols))


# iterations swept together by the DTNP kernel (8; session 6: this vectorised, blocked kernel took 256² and
# 768×576 maps ≈ 2.9× faster than the former row-at-a-time kernel, single thread, 4 and 16 within a few per
# cent; against a block of 1 in this kernel the blocking itself gains little: a whole 256² `dtnp` fusion 1.01×,
# the neuron model alone 1.04–1.09×, session 29)
_DTNP_BLOCK = 8


@lru_cache(maxsize=None)
def _dtnp_plane_kernel():
    """The compiled one-map DTNP neuron model (numba; compiled on first use, cached on disk)."""
    from numba import njit

    @njit(cache=True, nogil=True)
    def plane(c, iterations, table, theta0, p_fire, block, counts):  # pragma: no cover
        rows, cols = c.shape
        # zero-padded output maps p (one byte a pixel): iteration t reads fired[t % 2], writes the other
        fired = np.zeros((2, rows + 2, cols + 2), np.uint8)
        u = np.zeros((rows, cols))
        theta = np.full((rows, cols), theta0)
        column = np.empty(cols + 2, np.uint16)
        code = np.empty(cols, np.uint16)
        work = np.empty(cols)
        t0 = 0
        while t0 < iterations:
            nb = min(block, iterations - t0)
            # wavefront over rows: at step s, iteration t0 + j does row s − j (j ascending).  Row y of
            # iteration t needs rows y − 1..y + 1 of iteration t − 1, done at this or an earlier step;
            # it overwrites row y of iteration t − 2's map, which iteration t − 1 no longer reads
            # (it has done row y + 1 already).
            for s in range(rows + nb - 1):
                for j in range(max(0, s - rows + 1), min(nb, s + 1)):
                    y = s - j
                    b = (t0 + j) & 1
                    above, centre, below = fired[b, y], fired[b, y + 1], fired[b, y + 2]
                    out, uy, cy, ty, ky = fired[1 - b, y + 1], u[y], c[y], theta[y], counts[y]
                    # 3-bit code of each window column: bit 0 = row below, 1 = same row, 2 = row above
                    for x in range(cols + 2):
                        column[x] = np.uint16(below[x]) | (np.uint16(centre[x]) << 1) | (np.uint16(above[x]) << 2)
                    # 9-bit window code: left column bits 0-2, middle 3-5, right 6-8 (link_table's order)
                    for x in range(cols):
                        code[x] = column[x] | (column[x + 1] << 3) | (column[x + 2] << 6)
                    for x in range(cols):
                        work[x] = table[code[x]]
                    for x in range(cols):
                        prev = uy[x]
                        prev = 0.0 if centre[x + 1] != 0 else prev   # U·(1 − p): fired neurons restart
                        v = (prev + cy[x]) + work[x]
                        uy[x] = v
                        t = ty[x]
                        now = v >= t
                        ty[x] = ((t - 1.0) + p_fire) if now else t
                        out[x + 1] = now
                        ky[x] += now
            t0 += nb
        return counts

    return plane


def dtnp_firing_counts_numpy(
    stimulus: np.ndarray,
    iterations: int = 110,
    *,
    theta0: float = 1.0,
    p_fire: float = 1.1,
    fma: bool = True,
    chunk_pixels: int = 1 << 18,
) -> np.ndarray:
    """Reference (whole-array numpy/torch) version of :func:`dtnp_firing_counts`; same counts."""
    c = np.ascontiguousarray(stimulus, dtype=np.float64)
    lead, (rows, cols) = c.shape[:-2], c.shape[-2:]
    flat = c.reshape((-1, rows, cols))
    per_chunk = max(1, chunk_pixels // (rows * cols))
    out = np.empty(flat.shape, dtype=np.int32)
    for start in range(0, flat.shape[0], per_chunk):
        stop = start + per_chunk
        out[start:stop] = _dtnp_chunk(flat[start:stop], iterations, float(theta0), float(p_fire), bool(fma))
    return out.reshape(lead + (rows, cols))


def _dtnp_chunk(c: np.ndarray, iterations: int, theta0: float, p_fire: float, fma: bool) -> np.ndarray:
    """:func:`dtnp_firing_counts` on an ``(n, H, W)`` block (no loop over pixels)."""
    import torch  # index_select is a much faster gather than numpy's fancy indexing

    n, rows, cols = c.shape
    table = torch.from_numpy(link_table(p_fire, fma).copy())
    thresholds = torch.from_numpy(_dtnp_thresholds(theta0, p_fire, iterations).copy())
    fired = np.zeros((n, rows + 2, cols + 2), dtype=np.int32)   # zero-padded output map
    centre = fired[:, 1:rows + 1, 1:cols + 1]
    column = np.empty((n, rows, cols + 2), dtype=np.int32)
    column_tmp = np.empty_like(column)
    pattern = np.empty((n, rows, cols), dtype=np.int32)
    pattern_tmp = np.empty_like(pattern)
    u = np.zeros_like(c)
    keep = np.empty_like(c)
    work = np.empty_like(c)
    theta = np.empty_like(c)
    counts = np.zeros((n, rows, cols), dtype=np.int32)
    work_t, theta_t = torch.from_numpy(work).view(-1), torch.from_numpy(theta).view(-1)
    pattern_t, counts_t = torch.from_numpy(pattern).view(-1), torch.from_numpy(counts).view(-1)
    for _ in range(iterations):
        # 3-bit code of each column of the window: bit 0 = row below, 1 = same row, 2 = row above.
        np.left_shift(fired[:, 1:rows + 1], 1, out=column)
        np.bitwise_or(column, fired[:, 2:], out=column)
        np.left_shift(fired[:, :rows], 2, out=column_tmp)
        np.bitwise_or(column, column_tmp, out=column)
        # 9-bit window code: left column bits 0-2, middle 3-5, right 6-8.
        np.left_shift(column[:, :, 1:cols + 1], 3, out=pattern)
        np.bitwise_or(pattern, column[:, :, :cols], out=pattern)
        np.left_shift(column[:, :, 2:], 6, out=pattern_tmp)
        np.bitwise_or(pattern, pattern_tmp, out=pattern)
        torch.index_select(table, 0, pattern_t, out=work_t)
        np.subtract(1.0, centre, out=keep)
        u *= keep          # fired neurons restart from 0 (0 + C == C exactly)
        u += c
        u += work
        torch.index_select(thresholds, 0, counts_t, out=theta_t)
        np.greater_equal(u, theta, out=centre)
        counts += centre
    return counts


# ----------------------------------------------------------------------------
# Activity measures and rules
# ----------------------------------------------------------------------------
def _conv3x3_valid(padded: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``conv2(padded, kernel, 'valid')`` with Octave's ``dconv2i`` order (last two axes).

    Kernel columns j = 1..3 pair with input columns right to left, rows i = 1..3
    with input rows bottom to top.
    """
    rows, cols = padded.shape[-2] - 2, padded.shape[-1] - 2
    out = np.zeros(padded.shape[:-2] + (rows, cols), dtype=np.float64)
    for j in range(3):
        for i in range(3):
            r0, c0 = 2 - i, 2 - j
            out += kernel[i, j] * padded[..., r0:r0 + rows, c0:c0 + cols]
    return out


def _pad(x: np.ndarray, mode: str) -> np.ndarray:
    width = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    return np.pad(x, width, mode=mode)


INSML_SMOOTHING = {
    # CNP-MIF tools/INSML.m
    "cnp": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64) * (1 / 16),
    # DTNP-MIF DTNP_toolbox/INSML.m
    "dtnp": np.array([[1, 2, 1], [2, 3, 2], [1, 2, 1]], dtype=np.float64) * (1 / 15),
}

WLE_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64) * (1 / 16)


def insml(x: np.ndarray, smoothing: str) -> np.ndarray:
    """Improved sum-modified Laplacian (``INSML.m``) of ``(..., H, W)`` maps.

    1. Sum of |differences| to the 4 axial neighbours plus 1/√2 × those to the
       4 diagonal neighbours (symmetric padding, i.e. the edge is repeated),
       added in the order of the MATLAB expression.
    2. ``sqrt`` of the 3×3 window mean (symmetric padding, column-major sum).
    3. Smoothing with ``INSML_SMOOTHING[smoothing]`` (``imfilter(·,'conv',
       'symmetric')``): CNP's kernel is (1/16)[1 2 1; 2 4 2; 1 2 1], DTNP's
       (1/15)[1 2 1; 2 3 2; 1 2 1].

    One compiled pass per stage and map (numba, no fast-math), every sum in the
    order of :func:`insml_numpy`, so the values are identical.
    """
    kernel = np.ascontiguousarray(INSML_SMOOTHING[smoothing])
    return _per_map(x, _insml_plane_kernel(), kernel, _INV_SQRT2)


def _per_map(x: np.ndarray, plane, *args) -> np.ndarray:
    """``plane(map, *args, out_map)`` on every H×W map of ``x`` (float64, any leading dims); same shape out."""
    x = np.asarray(x, dtype=np.float64)
    lead, (rows, cols) = x.shape[:-2], x.shape[-2:]
    flat = np.ascontiguousarray(x).reshape((-1, rows, cols))
    out = np.empty_like(flat)
    for i in range(flat.shape[0]):
        plane(flat[i], *args, out[i])
    return out.reshape(lead + (rows, cols))


@lru_cache(maxsize=None)
def _insml_plane_kernel():
    """The compiled one-map INSML (numba; compiled on first use, cached on disk).

    Each stage reads a one-sample symmetric pad of its input and runs on row slices indexed from 0,
    which LLVM vectorises (session 7: index arithmetic per pixel kept it scalar); per pixel the terms
    and their order are those of :func:`insml_numpy`.
    """
    from ._neural_p_kernels import insml_plane

    return insml_plane


def insml_numpy(x: np.ndarray, smoothing: str) -> np.ndarray:
    """Reference (whole-array numpy) version of :func:`insml`; same values.

    Improved sum-modified Laplacian (``INSML.m``) of ``(..., H, W)`` maps.

    1. Sum of |differences| to the 4 axial neighbours plus 1/√2 × those to the
       4 diagonal neighbours (symmetric padding, i.e. the edge is repeated),
       added in the order of the MATLAB expression.
    2. ``sqrt`` of the 3×3 window mean (symmetric padding, column-major sum).
    3. Smoothing with ``INSML_SMOOTHING[smoothing]`` (``imfilter(·,'conv',
       'symmetric')``): CNP's kernel is (1/16)[1 2 1; 2 4 2; 1 2 1], DTNP's
       (1/15)[1 2 1; 2 3 2; 1 2 1].
    """
    kernel = INSML_SMOOTHING[smoothing]
    x = np.asarray(x, dtype=np.float64)
    rows, cols = x.shape[-2:]
    xp = _pad(x, "symmetric")

    def nb(dr: int, dc: int) -> np.ndarray:
        return xp[..., 1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]

    temp = np.abs(x - nb(-1, 0))
    temp += np.abs(x - nb(1, 0))
    temp += np.abs(x - nb(0, -1))
    temp += np.abs(x - nb(0, 1))
    for dr, dc in ((-1, -1), (1, 1), (1, -1), (-1, 1)):
        temp += _INV_SQRT2 * np.abs(x - nb(dr, dc))
    tp = _pad(temp, "symmetric")
    window = np.zeros_like(temp)
    for dc in range(3):            # column-major: columns outer, rows inner
        for dr in range(3):
            window += tp[..., dr:dr + rows, dc:dc + cols]
    cp = np.sqrt(window / 9.0)
    return _conv3x3_valid(_pad(cp, "symmetric"), kernel)


def wle_numpy(x: np.ndarray) -> np.ndarray:
    """Reference (whole-array numpy) version of :func:`wle`; same values, kept for the tests."""
    x = np.asarray(x, dtype=np.float64)
    return _conv3x3_valid(_pad(x * x, "reflect"), WLE_KERNEL)


def wle(x: np.ndarray) -> np.ndarray:
    """Weighted local energy (``WLE.m``): ``x²`` filtered by (1/16)[1 2 1; 2 4 2; 1 2 1].

    Padding is ``es2``: a mirror *without* repeating the edge (numpy ``'reflect'``).  One
    compiled pass per map (numba, no fast-math): each pixel squares and adds its 9 neighbours in
    :func:`_conv3x3_valid`'s order, so the values equal :func:`wle_numpy` exactly, without its nine
    full-size temporaries (1024²: those made the cost grow 2× faster than the pixels).
    """
    return _per_map(x, _wle_plane_kernel(), np.ascontiguousarray(WLE_KERNEL))


@lru_cache(maxsize=None)
def _wle_plane_kernel():
    """The compiled one-map WLE (numba; compiled on first use, cached on disk): a one-sample 'reflect'
    pad, then row slices indexed from 0 (vectorised), each pixel's 9 terms in :func:`_conv3x3_valid`'s order."""
    from ._neural_p_kernels import wle_plane

    return wle_plane


#: maps above this many pixels go through :func:`wle_insml_rule` in bands of :data:`RULE_BAND_ROWS` rows (one thread,
#: session 9: 256² 1.10 -> 0.82 ms, 1024² 33.5 -> 15.8 ms; 32 and 128 rows within ~10 %)
RULE_BANDED_ABOVE = 1 << 15
RULE_BAND_ROWS = 64
_RULE_HALO = 3  # rows of context a band needs: INSML's three 3×3 stages (WLE needs one)


def wle_insml_rule(x1: np.ndarray, x2: np.ndarray, smoothing: str) -> np.ndarray:
    """Choose-max of ``WLE·INSML`` (CNP ``High_fusion.m``, DTNP ``Lowpass.m``); ties pick ``x1``.

    Large maps (issue 23, session 9) are done in bands of :data:`RULE_BAND_ROWS` rows, each with 3 rows
    of context either side (the image's own padding where a band meets the border): a row's activity
    depends on the rows within 3 of it only, so every value is the whole-map one, but the ten
    temporaries of a band stay in cache (at 1024² whole-map temporaries are fresh 8 MB allocations).
    """
    x1 = np.asarray(x1, dtype=np.float64)
    x2 = np.asarray(x2, dtype=np.float64)
    if x1.ndim != 2 or x1.size <= RULE_BANDED_ABOVE or x1.shape[0] <= RULE_BAND_ROWS:
        return _wle_insml_choice(x1, x2, smoothing)
    rows = x1.shape[0]
    out = np.empty_like(x1)
    for y0 in range(0, rows, RULE_BAND_ROWS):
        y1 = min(rows, y0 + RULE_BAND_ROWS)
        a0, a1 = max(0, y0 - _RULE_HALO), min(rows, y1 + _RULE_HALO)
        band = _wle_insml_choice(x1[a0:a1], x2[a0:a1], smoothing)
        out[y0:y1] = band[y0 - a0:y1 - a0]
    return out


def _wle_insml_choice(x1: np.ndarray, x2: np.ndarray, smoothing: str) -> np.ndarray:
    """:func:`wle_insml_rule` on whole maps."""
    wa = insml(x1, smoothing) * wle(x1)
    wb = insml(x2, smoothing) * wle(x2)
    return np.where(wa >= wb, x1, x2)


def majority_filter(decision: np.ndarray, size: int = 9) -> np.ndarray:
    """``majority_consist_new``: 1 where the size×size window (symmetric padding) holds ≥ size²/2 ones."""
    d = np.asarray(decision, dtype=np.int32)
    h = size // 2
    width = [(0, 0)] * (d.ndim - 2) + [(h, h), (h, h)]
    padded = np.pad(d, width, mode="symmetric")
    # Integer window sums via a summed-area table (exact).
    sat = padded.cumsum(-1).cumsum(-2)
    sat = np.pad(sat, [(0, 0)] * (d.ndim - 2) + [(1, 0), (1, 0)])
    rows, cols = d.shape[-2:]
    total = (sat[..., size:size + rows, size:size + cols] - sat[..., :rows, size:size + cols]
             - sat[..., size:size + rows, :cols] + sat[..., :rows, :cols])
    return total >= size * size / 2
