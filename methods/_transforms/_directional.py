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

from typing import Callable

import numpy as np
from scipy import fft as sfft


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
    return sfft.irfft2(spec, s=shape, overwrite_x=True)


def synthesise_directions(bands: np.ndarray, bank: np.ndarray, conjugate: bool = False,
                          swap: bool = False) -> np.ndarray:
    """``irfft2(Σ_k bank[k] · rfft2(bands[k]))`` (``conj(bank[k])`` when ``conjugate``), summed in k order."""
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


ROW_BLOCK = 32
"""Rows per block of :func:`_fused_spectrum_by_rows` for a pointwise rule (32 × 1024 float64 = 256 KiB a map)."""

CONTEXT_BLOCK = 128
"""Rows per block for a rule that needs rows of context (CNP's 3): the context rows are fused twice, 5 % extra
at 128 rows; CNP's directional step (NSST, 24 directions) with blocks of 32 / 64 / 128 rows against whole maps,
one thread, loaded: 1024² 1783 / 1837 / 1791 against 2012 ms, 256² 126.6 / 121.2 / 118.1 against 121.7 ms."""


def _fused_spectrum_by_rows(resp: np.ndarray, s1: np.ndarray, s2: np.ndarray, shape: tuple[int, ...],
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
    (``tests/methods/test_transforms_directional.py``).  Returns the spectrum (in ``out``'s memory).
    """
    rows, cols = shape
    scale = np.float64(1 / np.longdouble(rows * cols))
    c1 = sfft.ifft(np.multiply(resp, s1, out=p1), axis=0, norm="forward", overwrite_x=True)
    c2 = sfft.ifft(np.multiply(resp, s2, out=p2), axis=0, norm="forward", overwrite_x=True)
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
    shape = x1.shape
    s1 = sfft.rfft2(x1)
    s2 = sfft.rfft2(x2)
    acc = None
    product = np.empty_like(s1)  # scratch for each direction's spectra (one allocation, not 2 a direction)
    second = spare = None
    if context_rows is not None:
        second = np.empty_like(s1)
    for k in range(bank.shape[0]):
        resp = bank[k]  # once: a streamed bank (``nsct.StreamedBank``) makes the channel at each request
        if context_rows is not None:
            # the first direction's spectrum becomes the synthesis sum, later ones use one spare plane
            spec = _fused_spectrum_by_rows(resp, s1, s2, shape, band_rule, product, second,
                                           np.empty_like(s1) if spare is None else spare, context_rows)
            if spare is None:
                spare = np.empty_like(s1)
        else:
            b1 = _inverse(np.multiply(resp, s1, out=product), shape)
            b2 = _inverse(np.multiply(resp, s2, out=product), shape)
            fused = np.asarray(band_rule(b1, b2), dtype=np.float64)
            spec = sfft.rfft2(fused)
        term = _synthesis_term(synthesis, k, spec, conjugate, swap, product)  # product is free again here
        if acc is None:
            acc = term
        else:
            acc += term
    return _inverse(acc, shape)
