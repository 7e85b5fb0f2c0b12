"""Directional filtering in the Fourier domain, one direction at a time (NSST and NSCT).

Both directional stages are periodic convolutions of a band-pass image with a bank of ``K``
frequency responses (``(K, H, W//2+1)``, rfft2 half-plane).  Done for all directions at once,
``resp * rfft2(x)`` and its inverse build ``K`` complex H×W temporaries (134 MB each for 16
directions at 1024²) and stream them through memory several times; done direction by
direction, every temporary is one map.  The arithmetic is the same: each direction's
``irfft2(resp[k] · X)`` is what the batched ``irfft2`` computes for that plane, and the
synthesis sum adds the directions' products in index order, as ``np.sum(·, axis=0)`` does
(``tests/methods/test_transforms_directional.py`` pins the equality bit for bit).

One subtlety keeps it bit for bit: numpy multiplies complex numbers with fused multiply-adds, so
``a * b`` and ``b * a`` can differ in the last bit, and in the batched synthesis product
``bank * rfft2(bands)`` numpy's temporary elision (for temporaries of ≥ 256 KiB) computed
``rfft2(bands) * bank``.  ``swap=True`` takes that order; NSCT passes it where the batched product
would have been that large, NSST (``conj(bank) * rfft2(bands)``, the left operand elided) never.
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np


ELIDE_BYTES = 256 * 1024
"""numpy's threshold for reusing a temporary operand (``NPY_MIN_ELIDE_BYTES``)."""


def _synthesis_term(bank: np.ndarray, k: int, spec: np.ndarray, conjugate: bool, swap: bool,
                    scratch: np.ndarray) -> np.ndarray:
    """``bank[k] · spec`` (``conj(bank[k])`` when ``conjugate``), the operands in the batched code's order.

    Written into ``spec`` (a fresh spectrum the caller no longer needs), the conjugate into ``scratch``:
    the same products without two new H×W complex arrays a direction (session 9).
    """
    resp = np.conjugate(bank[k], out=scratch) if conjugate else bank[k]
    return np.multiply(spec, resp, out=spec) if swap else np.multiply(resp, spec, out=spec)


def filter_directions(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """``irfft2(bank * rfft2(x))``: the ``(K, H, W)`` directional bands of one H×W image."""
    from scipy import fft as sfft
    shape = x.shape
    spec = sfft.rfft2(x)
    out = np.empty((bank.shape[0],) + shape)
    product = np.empty_like(spec)
    for k in range(bank.shape[0]):
        out[k] = _inverse(np.multiply(bank[k], spec, out=product), shape)
    return out


def _inverse(spec: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``irfft2(spec, s=shape)``, letting pocketfft work in ``spec`` (a scratch product: overwritten).

    Same values (pocketfft runs the same passes; it only skips copying its input first): at 1024²
    10 ms instead of 12.8 ms a call, at 256² 0.52 instead of 0.64 ms (session 9, one thread).
    """
    from scipy import fft as sfft
    return sfft.irfft2(spec, s=shape, overwrite_x=True)


def synthesise_directions(bands: np.ndarray, bank: np.ndarray, conjugate: bool = False,
                          swap: bool = False) -> np.ndarray:
    """``irfft2(Σ_k bank[k] · rfft2(bands[k]))`` (``conj(bank[k])`` when ``conjugate``), summed in k order."""
    from scipy import fft as sfft
    shape = bands.shape[-2:]
    acc = None
    scratch = np.empty(bank.shape[1:], dtype=np.complex128) if conjugate else None
    for k in range(bands.shape[0]):
        spec = sfft.rfft2(bands[k])
        term = _synthesis_term(bank, k, spec, conjugate, swap, scratch)
        if acc is None:
            acc = term
        else:
            acc += term
    return _inverse(acc, shape)


Rows = Callable[[int, int], np.ndarray]
"""Rows ``[r0, r1)`` of one channel's response (a view of a plane, or made for the request: read before the next)."""

PRODUCT_BLOCK_BYTES = 256 * 1024
"""Bytes of one channel's rows per block of the products with a channel (:func:`_channel_products`,
:func:`_add_synthesis_term`): at 1024² 31 rows, at 256² 127 (two or three blocks)."""


class RowsOnRequest(Protocol):
    """A bank that makes its channels' rows on request (``nsct.StreamedBank``): ``rows(k)`` is channel ``k``'s
    :data:`Rows`."""

    def rows(self, k: int) -> Rows: ...


def channel_rows(bank: np.ndarray | RowsOnRequest, k: int) -> Rows:
    """Channel ``k`` of ``bank`` in blocks of rows: a view of ``bank[k]``, or, for a bank that makes its channels
    (``nsct.StreamedBank.rows``), each block made on request, so that the channel is never written whole."""
    make = getattr(bank, "rows", None)
    if make is not None:
        return make(k)
    plane = bank[k]
    return lambda r0, r1: plane[r0:r1]


def _block_rows(plane: np.ndarray) -> int:
    return max(1, PRODUCT_BLOCK_BYTES // max(1, plane.shape[1] * plane.itemsize))


def _channel_products(resp: np.ndarray | Rows, s1: np.ndarray, s2: np.ndarray | None, p1: np.ndarray,
                      p2: np.ndarray | None) -> None:
    """``p1 = resp · s1`` and ``p2 = resp · s2`` (the response the left operand; no ``p2`` when ``s2`` is
    ``None``), a block of rows at a time.

    The same elementwise products as on whole planes, but each block of the response is read (or, streamed,
    made) once for both while it is in cache (issue 23, session 11: at 1024² the response was one 8 MB plane
    read twice, or, streamed, written whole and read back twice).
    """
    rows_of = resp if callable(resp) else (lambda r0, r1: resp[r0:r1])
    step = _block_rows(s1)
    for r in range(0, s1.shape[0], step):
        r1 = min(s1.shape[0], r + step)
        block = rows_of(r, r1)
        np.multiply(block, s1[r:r1], out=p1[r:r1])
        if s2 is not None:
            np.multiply(block, s2[r:r1], out=p2[r:r1])


def _add_synthesis_term(synthesis: Rows, spec: np.ndarray, conjugate: bool, swap: bool,
                        acc: np.ndarray | None, scratch: np.ndarray) -> np.ndarray:
    """``spec = synthesis · spec`` (operands as :func:`_synthesis_term`), then ``acc += spec``, a block of rows at
    a time (each product added while in cache).  Returns ``acc``, or ``spec`` when ``acc`` is ``None`` (the
    first direction's term becomes the sum, as before)."""
    step = _block_rows(spec)
    for r in range(0, spec.shape[0], step):
        r1 = min(spec.shape[0], r + step)
        resp = synthesis(r, r1)
        if conjugate:
            resp = np.conjugate(resp, out=scratch[:r1 - r])
        term = np.multiply(spec[r:r1], resp, out=spec[r:r1]) if swap else np.multiply(resp, spec[r:r1], out=spec[r:r1])
        if acc is not None:
            acc[r:r1] += term
    return spec if acc is None else acc


ROW_BLOCK = 32
"""Rows per block of :func:`_fused_spectrum_by_rows` for a pointwise rule (32 × 1024 float64 = 256 KiB a map)."""

CONTEXT_BLOCK = 128
"""Rows per block for a rule that needs rows of context (CNP's 3): the context rows are fused twice, 5 % extra
at 128 rows; CNP's directional step (NSST, 24 directions) with blocks of 32 / 64 / 128 rows against whole maps,
one thread, loaded: 1024² 1783 / 1837 / 1791 against 2012 ms, 256² 126.6 / 121.2 / 118.1 against 121.7 ms."""


def _fused_spectrum_by_rows(resp: np.ndarray | Rows, s1: np.ndarray, s2: np.ndarray, shape: tuple[int, ...],
                            band_rule: Callable[[np.ndarray, np.ndarray], np.ndarray], p1: np.ndarray,
                            p2: np.ndarray, out: np.ndarray, context: int = 0) -> np.ndarray:
    """``rfft2(band_rule(irfft2(resp·s1), irfft2(resp·s2)))`` for a row-local ``band_rule``, rows in blocks.

    ``band_rule``'s value at a pixel may depend on the rows within ``context`` of it (0: pointwise), the
    image's first and last rows being its border: each block is fused with ``context`` rows either side
    (fewer at the image's edges) and only its own rows are kept, so every value is the whole-map one.

    pocketfft's 2-D inverse is the complex inverse FFT of every column, then the real inverse FFT of every row
    scaled by ``1/(R·C)``; its 2-D forward transform is the real FFT of every row, then the complex FFT of every
    column.  Here the column passes run in place on whole planes (``p1``, ``p2``, ``out``: scratch), and the
    row passes, the scaling and the rule run on :data:`ROW_BLOCK` rows at a time, so the two directional maps and
    the fused map never leave the cache (at 1024² each was an 8 MB plane written and read back).  The same
    pocketfft routines on the same lines, unscaled (``norm="forward"``) then multiplied by the factor pocketfft
    uses (``1/N`` rounded from long double): the same bits as the 2-D calls, odd and prime sizes included
    (``tests/methods/test_transforms_directional.py``).  ``resp`` is a plane or its :data:`Rows`
    (:func:`channel_rows`).  Returns the spectrum (in ``out``'s memory).
    """
    from scipy import fft as sfft
    rows, cols = shape
    scale = np.float64(1 / np.longdouble(rows * cols))
    _channel_products(resp, s1, s2, p1, p2)
    c1 = sfft.ifft(p1, axis=0, norm="forward", overwrite_x=True)
    c2 = sfft.ifft(p2, axis=0, norm="forward", overwrite_x=True)
    block = ROW_BLOCK if context == 0 else CONTEXT_BLOCK
    for r in range(0, rows, block):
        r1 = min(rows, r + block)
        a0, a1 = max(0, r - context), min(rows, r1 + context)
        b1 = sfft.irfft(c1[a0:a1], n=cols, axis=1, norm="forward")
        b1 *= scale
        b2 = sfft.irfft(c2[a0:a1], n=cols, axis=1, norm="forward")
        b2 *= scale
        fused = np.asarray(band_rule(b1, b2), dtype=np.float64)
        out[r:r1] = sfft.rfft(fused[r - a0:r1 - a0], axis=1)
    return sfft.fft(out, axis=0, overwrite_x=True)


def directional_fuse(x1: np.ndarray, x2: np.ndarray, bank: np.ndarray, synthesis: np.ndarray,
                     band_rule: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     conjugate: bool = False, swap: bool = False, context_rows: int | None = None) -> np.ndarray:
    """``synthesise_directions(stack(band_rule(b1[k], b2[k])), synthesis)`` with ``b = filter_directions(x, bank)``.

    Equal to filtering both images, fusing each direction and synthesising, but one direction
    is made, fused and folded into the synthesis sum at a time.  ``context_rows=k`` (an int) declares
    that ``band_rule``'s value at a pixel depends only on the two maps' rows within ``k`` of it (0:
    pointwise, choose-max of ``|c|``; 3: CNP's WLE·INSML), the image's edges being the border: the
    rule then runs on blocks of rows between the FFTs' row and column passes
    (:func:`_fused_spectrum_by_rows`), same values.  ``None``: the rule gets whole maps.
    """
    from scipy import fft as sfft
    shape = x1.shape
    s1 = sfft.rfft2(x1)
    s2 = sfft.rfft2(x2)
    acc = None
    product = np.empty_like(s1)  # scratch for each direction's spectra (one allocation, not 2 a direction)
    second = spare = None
    if context_rows is not None:
        second = np.empty_like(s1)
    conj_rows = np.empty((_block_rows(s1), s1.shape[1]), dtype=np.complex128) if conjugate else None
    for k in range(bank.shape[0]):
        resp = channel_rows(bank, k)  # a streamed bank (``nsct.StreamedBank``) makes the rows on request
        if context_rows is not None:
            # the first direction's spectrum becomes the synthesis sum, later ones use one spare plane
            spec = _fused_spectrum_by_rows(resp, s1, s2, shape, band_rule, product, second,
                                           np.empty_like(s1) if spare is None else spare, context_rows)
            if spare is None:
                spare = np.empty_like(s1)
        else:
            _channel_products(resp, s1, None, product, None)  # one scratch plane for both (the whole-map rules'
            b1 = _inverse(product, shape)                     # own temporaries are large: DTNP's neuron model)
            _channel_products(resp, s2, None, product, None)
            b2 = _inverse(product, shape)
            fused = np.asarray(band_rule(b1, b2), dtype=np.float64)
            spec = sfft.rfft2(fused)
        acc = _add_synthesis_term(channel_rows(synthesis, k), spec, conjugate, swap, acc, conj_rows)
    return _inverse(acc, shape)
