"""``mopa``'s banded passes, each band's layers as one compiled call (issue 23, session 13).

A band of :mod:`methods.mopa._banded`'s planar passes ran ≈ 45 compiled kernels, each called from Python with
its weights re-derived (``detach``, ``reshape``, ``numpy``) and its maps' numpy views made again; at two threads
the two band workers' Python glue took turns on the GIL (≈ 4.5 ms of a 25 ms forward per worker was not kernel
time, session 13).  Here each band pass is **one** call that releases the GIL: :func:`features_contrast` (the
three feature paths, the band's rows of the stored features, the contrast module's flow and its local std's
maxima), :func:`detail` (``x · scale``, the detail module, its sums and maxima over pixels), and
:func:`attention_gate` / :func:`attention_head` (the attention's gating and spatial conv; its combining conv
and the head), between which torch takes the sigmoids (torch's own, for the same bits).

They call the same compiled kernels (:mod:`methods.mopa._conv_kernels`, :mod:`~methods.mopa._detail_kernels`,
:mod:`~methods.mopa._std_kernels`, :mod:`~methods.mopa._attention_kernels`) in the same order on the same maps,
so every value has the same bits.  The layers' weights come as one flat float32 array and a table of rows
``(Cin, Cout, k, weight offset, bias offset)`` with each layer's LReLU slope (1: none), copied per forward
(:func:`methods.mopa._banded.features_plan`, :func:`~methods.mopa._banded.rest_plan`).  The kernels read their
input maps as views (layout 'A') and write whole maps (layout 'C'), as in :mod:`methods.mopa._split`, whose
specializations they share.  One thread runs the whole image as one band of these passes (with the split
pass's sums and sigmoids).  Compiled on first use, cached on disk; each pass links the kernels it calls into its
own code (≈ 8 s more of a cold compile).  Numba's cache of these functions is keyed on this file: an edit of a
kernel module alone does not invalidate it (as for every compiled function that calls another module's), so
this docstring records the kernels' last change that matters here: since session 33 the convolution and DSCB
kernels size their blocks of columns for the compile target's registers
(:func:`methods._numba_intrinsics.block_vectors`: one 16-lane vector per block on AVX2, where the AVX-512
blocks spilled; the same bits).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._attention_kernels import gate_planar, gate_spatial_planar, pixel_sum_max_planar
from ._conv_kernels import (LANES, conv_1_5_3, conv_2_1_7, conv_2_5_3, conv_5_1_3, conv_5_5_3, conv_15_3_1,
                            conv_15_3_3, conv_15_3_5, conv_15_5_3, conv_15_6_7, conv_15_15_3, conv_15_15_3_res,
                            conv_30_15_3, conv_45_15_3_res)
from ._detail_kernels import dscb, dscb_skip
from ._std_kernels import local_std_max_rows_planar

#: the (Cin, Cout, k) of the layers each pass compiles, in its table's order: a feature path's layers (any of
#: the first set, each path ending in its 5 channels of the 15), the four multiscale convs, the contrast module's
#: two residual convs; the detail module's head (then the DSCBs, 15 channels) and fuse conv; the spatial
#: attention's conv, the combining conv and the head's two convs (:func:`methods.mopa._banded.pass_plan` checks
#: them and keeps the Python passes for any other net)
PATH_SHAPES = ((1, 5, 3), (2, 5, 3), (5, 5, 3))
SCALE_SHAPES = ((15, 3, 1), (15, 3, 3), (15, 3, 5), (15, 6, 7))
CONTRAST_SHAPES = ((15, 15, 3), (15, 15, 3))
DETAIL_SHAPES = ((15, 15, 3), (45, 15, 3))
TAIL_SHAPES = ((2, 1, 7), (30, 15, 3), (15, 5, 3), (5, 1, 3))


@njit(nogil=True, inline="always")
def _layer(table, i, flat):  # pragma: no cover - compiled
    """Layer ``i`` of ``table``: its flattened weight and its bias (views of ``flat``)."""
    cin, cout, k = table[i, 0], table[i, 1], table[i, 2]
    return flat[table[i, 3]:table[i, 3] + cin * cout * k * k], flat[table[i, 4]:table[i, 4] + cout]


@njit(nogil=True, inline="always")
def _path_conv(table, i, flat, slopes, inp, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """A feature path's layer ``i`` (Cin 1, 2 or 5 → 5, 3×3) on planar ``inp`` (layout 'A') → ``out``."""
    wt, b = _layer(table, i, flat)
    if table[i, 0] == 1:
        conv_1_5_3(inp, wt, b, slopes[i], out, rows, width, oy, ox)
    elif table[i, 0] == 2:
        conv_2_5_3(inp, wt, b, slopes[i], out, rows, width, oy, ox)
    else:
        conv_5_5_3(inp, wt, b, slopes[i], out, rows, width, oy, ox)


@njit(nogil=True, inline="always")
def _scale_conv(table, i, flat, slopes, inp, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """A multiscale conv (15 → 3 at k = 1, 3, 5; 15 → 6 at k = 7)."""
    wt, b = _layer(table, i, flat)
    k = table[i, 2]
    if k == 1:
        conv_15_3_1(inp, wt, b, slopes[i], out, rows, width, oy, ox)
    elif k == 3:
        conv_15_3_3(inp, wt, b, slopes[i], out, rows, width, oy, ox)
    elif k == 5:
        conv_15_3_5(inp, wt, b, slopes[i], out, rows, width, oy, ox)
    else:
        conv_15_6_7(inp, wt, b, slopes[i], out, rows, width, oy, ox)


@njit(cache=True, nogil=True)
def features_contrast(sample, xlo, hb, inputs0, inputs1, inputs2, channels, spare0, spare1, planar, pad,
                      stored, copy, r0, r1, lo, hi, h, w, m, mid, r, best, table, flat, slopes,
                      lengths):  # pragma: no cover - compiled
    """The merged features + contrast pass of one band (:func:`methods.mopa._banded.banded_forward`, pass 1).

    ``sample`` (4, H, W): the image; the band's feature rows are image rows ``[xlo, xlo + hb)``; ``inputs*`` the
    three paths' zero-bordered input maps (``channels[i, :n]``: the sample channels of path ``i``, −1 unused),
    ``spare*`` two maps of the paths' width, ``planar`` the concatenated features padded by ``pad``.  With ``copy``
    their rows ``[r0, r1)`` go to the stored map (else ``planar`` is the stored map: the whole image); ``m``,
    ``mid``: the contrast flow's maps (image rows ``[lo, hi)``), ``best`` its local std's maxima.  Layers of
    ``table``: the paths' (``lengths``), then the four multiscale convs, then the residual convs."""
    ins = (inputs0, inputs1, inputs2)
    i = 0
    start = 0
    for p in range(3):
        inp = ins[p]
        for k in range(channels.shape[1]):
            ch = channels[p, k]
            if ch < 0:
                continue
            for y in range(hb):
                src = sample[ch, xlo + y]
                dst = inp[k, 1 + y]
                for x in range(w):
                    dst[1 + x] = src[x]
        cout = table[i, 1]
        n = lengths[p]
        for j in range(n):
            if j == n - 1:
                dst3 = planar[start:start + cout]
                at = pad
            elif j % 2 == 0:
                dst3 = spare0
                at = 1
            else:
                dst3 = spare1
                at = 1
            if j == 0:
                src3 = inp[:, 0:]
            elif j % 2 == 1:
                src3 = spare0[:, 0:]
            else:
                src3 = spare1[:, 0:]
            _path_conv(table, i, flat, slopes, src3, dst3, hb, w, at, at)
            i += 1
        start += cout
    # the band's own rows (column padding included) into the stored map
    at = lo - xlo
    own = at + r0 - lo
    for c in range(planar.shape[0] if copy else 0):
        for y in range(r1 - r0):
            src = planar[c, pad + own + y]
            dst = stored[c, pad + r0 + y]
            for x in range(src.shape[0]):
                dst[x] = src[x]
    # the contrast flow lrelu(m + res(m)) on rows [lo, hi), then its local std's maxima over rows [r0, r1)
    n = hi - lo
    fb = planar[:, at:]
    start = 0
    for s in range(4):
        k = table[i, 2]
        off = pad - k // 2
        cout = table[i, 1]
        _scale_conv(table, i, flat, slopes, fb[:, off:, off:], m[start:start + cout], n, w, 1, 1)
        start += cout
        i += 1
    wt, b = _layer(table, i, flat)
    conv_15_15_3(m[:, 0:], wt, b, slopes[i], mid, n, w, 1, 1)
    wt, b = _layer(table, i + 1, flat)  # in place: m = lrelu(conv(mid) + m)
    conv_15_15_3_res(mid[:, 0:], wt, b, slopes[i + 1], m, m, n, w, 1, 1)
    local_std_max_rows_planar(m, 1, 1, w, r, lo, h, r0, r1, best)


@njit(cache=True, nogil=True)
def detail(stored, pad, lo, hi, r0, r1, h, w, scale, scaled, out, xw, hbuf, cat, spare0, spare1, table, flat,
           slopes, lengths, sums, peak, cuts, stats):  # pragma: no cover - compiled
    """The detail pass of one band: the padding of rows ``[r0, r1)`` of ``out`` zeroed, ``stored``'s rows
    ``[lo, hi)`` times ``scale`` (``scaled``; else copied) into ``xw``, the detail module (``table``: head, each
    DSCB's depthwise and pointwise convs path by path (``lengths``), fuse), its rows ``[r0, r1)`` into ``out``
    (padded by 1), and with ``stats`` the sums and maxima over the pixels of each block of rows
    ``[cuts[k], cuts[k + 1])`` into ``sums[k]``, ``peak[k]``."""
    # _split._zero_border(out, 1, h, w, r0, r1)
    cols = out.shape[2]
    ch = out.shape[0]
    for c in range(ch):
        if r0 == 0:
            out[c, 0, :] = 0.0
        if r1 == h:
            out[c, 1 + h:, :] = 0.0
        for y in range(1 + r0, 1 + r1):
            row = out[c, y]
            row[0] = 0.0
            for x in range(1 + w, cols):
                row[x] = 0.0
    n = hi - lo
    for c in range(ch):
        g = scale[c]
        for y in range(n):
            src = stored[c, pad + lo + y]
            dst = xw[c, 1 + y]
            if scaled:
                for x in range(w):
                    dst[1 + x] = src[pad + x] * g
            else:
                for x in range(w):
                    dst[1 + x] = src[pad + x]
    wt, b = _layer(table, 0, flat)
    conv_15_15_3(xw[:, 0:], wt, b, slopes[0], hbuf, n, w, 1, 1)
    i = 1
    for p in range(lengths.shape[0]):
        src = hbuf[:, 0:]
        for j in range(lengths[p]):
            dw, pw = i, i + 1
            dww = flat[table[dw, 3]:table[dw, 3] + ch * 9]
            dwb = flat[table[dw, 4]:table[dw, 4] + ch]
            pww = flat[table[pw, 3]:table[pw, 3] + ch * ch]
            pwb = flat[table[pw, 4]:table[pw, 4] + ch]
            if j == lengths[p] - 1:
                dst = cat[p * ch:(p + 1) * ch]
                dscb_skip(src, dww, dwb, pww, pwb, slopes[pw], dst, hbuf, n, w, 1, 1)
            else:
                dst = spare0 if j % 2 == 0 else spare1
                dscb(src, dww, dwb, pww, pwb, slopes[pw], dst, n, w, 1, 1)
            src = dst[:, 0:]
            i += 2
    at = r0 - lo
    wt, b = _layer(table, i, flat)  # the band's own rows into ``out``, with the module-wide residual
    conv_45_15_3_res(cat[:, at:], wt, b, slopes[i], out[:, 1 + r0:], xw[:, 1 + at:], r1 - r0, w, 0, 1)
    for k in range(sums.shape[0] if stats else 0):
        pixel_sum_max_planar(out, 1 + cuts[k], 1, cuts[k + 1] - cuts[k], w, sums[k], peak[k])


@njit(cache=True, nogil=True)
def attention_gate(d, lo, n, w, wc, cascade, both, spatial, p, out, table, flat, slopes):  # pragma: no cover
    """The attention's gating of the stored detail map ``d``'s rows ``[lo, lo + n)`` into ``both`` and ``spatial``
    (:func:`methods.mopa._attention_kernels.gate_planar`), then its spatial conv (``table`` row 0) into ``out``
    (before the sigmoid)."""
    at = np.empty(2, np.int64)
    at[0] = lo + 1
    at[1] = 1
    one = np.ones(2, np.int64)
    sp = np.empty(2, np.int64)
    sp[0] = p
    sp[1] = p
    gate_planar(d, at, wc, cascade, both, one, spatial, sp, n, w)
    wt, b = _layer(table, 0, flat)
    conv_2_1_7(spatial[:, 0:], wt, b, slopes[0], out, n, w, 0, 0)


@njit(cache=True, nogil=True)
def attention_head(d, lo, n, w, weights, cascade, gated, both, comb, mid, out, table, flat,
                   slopes):  # pragma: no cover - compiled
    """With ``gated``: the attention's spatial gating by ``weights`` (:func:`gate_spatial_planar`) and its
    combining conv (``table`` row 1) into ``comb``; then the head's two convs (rows 2, 3) on ``comb`` (without
    ``gated``: on ``d``'s rows from ``lo``) into ``out`` (before the sigmoid)."""
    if gated:
        at = np.empty(2, np.int64)
        at[0] = lo + 1
        at[1] = 1
        one = np.ones(2, np.int64)
        gate_spatial_planar(d, at, weights, both, one, cascade, n, w)
        wt, b = _layer(table, 1, flat)
        conv_30_15_3(both[:, 0:], wt, b, slopes[1], comb, n, w, 1, 1)
        wt, b = _layer(table, 2, flat)
        conv_15_5_3(comb[:, 0:], wt, b, slopes[2], mid, n, w, 1, 1)
    else:
        wt, b = _layer(table, 2, flat)
        conv_15_5_3(d[:, lo:], wt, b, slopes[2], mid, n, w, 1, 1)
    wt, b = _layer(table, 3, flat)
    conv_5_1_3(mid[:, 0:], wt, b, slopes[3], out, n, w, 0, 0)


__all__ = ["CONTRAST_SHAPES", "DETAIL_SHAPES", "LANES", "PATH_SHAPES", "SCALE_SHAPES", "TAIL_SHAPES",
           "attention_gate", "attention_head", "detail", "features_contrast"]
