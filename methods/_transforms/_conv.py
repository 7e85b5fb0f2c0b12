"""Convolution kernels shared by the NSST and NSCT ports (vectorised; FFT based).

``atrous_conv``  — the toolboxes' ``symext`` + ``conv2(..., 'valid')`` / ``atrousc`` step of the
non-subsampled pyramid: convolution with the filter upsampled by ``2**lev`` ("à trous") after
symmetric extension (edge sample repeated) with the toolbox's delay compensation.

``periodic_kernel_fft`` — the frequency response, on an R×C periodic grid, of the toolbox's
``efilter2(x, f, 'per')`` (``M = I``) and ``zconv2(x, f, M)`` (filter upsampled by the 2×2
integer matrix ``M``), so that a periodic convolution is one product in the Fourier domain.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from ._cache import bounded_cache


def _sym_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Fold indices into [0, n) by symmetric reflection with the edge repeated (MATLAB 'symmetric')."""
    idx = np.mod(idx, 2 * n)
    return np.where(idx >= n, 2 * n - 1 - idx, idx)


@lru_cache(maxsize=64)
def _upsampled(h_bytes: bytes, shape: tuple[int, int], lev: int) -> np.ndarray:
    h = np.frombuffer(h_bytes, dtype=np.float64).reshape(shape)
    if lev == 0:
        return h
    step = 2 ** lev
    hu = np.zeros((shape[0] * step, shape[1] * step))
    hu[::step, ::step] = h
    return hu


def atrous_conv(x: np.ndarray, h: np.ndarray, lev: int) -> np.ndarray:
    """One non-subsampled pyramid filtering step (``nsfbdec`` / ``atrousdec`` semantics).

    ``lev = 0``: ``conv2(symext(x, h, [1 1]), h, 'valid')``; ``lev ≥ 1``:
    ``atrousc(symext(x, upsample2df(h, lev), s), h, 2**lev·I)`` with ``s = 2 − 2**(lev−1)``.
    Output has the shape of ``x``.  Unlike the toolbox (which indexes out of range), an image
    smaller than the upsampled filter is extended by repeated symmetric reflection.
    """
    return atrous_convs(x, (h,), lev)[0]


def atrous_convs(x: np.ndarray, filters: Sequence[np.ndarray], lev: int) -> list[np.ndarray]:
    """``[atrous_conv(x, h, lev) for h in filters]``, the same values; filters of one shape share the
    symmetric extension and its spectrum, which depend only on ``x`` and the filter's shape (the pyramid's
    two analysis filters of 'pyrexc', both 5×5: one forward transform a level instead of two)."""
    x = np.asarray(x, dtype=np.float64)
    m, n = x.shape
    out: list[np.ndarray] = []
    spec = None
    for i, h in enumerate(filters):
        h = np.ascontiguousarray(h, dtype=np.float64)
        p, q = h.shape[0] * 2 ** lev, h.shape[1] * 2 ** lev
        if spec is None or h.shape != np.shape(filters[i - 1]):
            s = 1 if lev == 0 else 2 - 2 ** (lev - 1)
            rows = _sym_index(np.arange(m + p - 1) - (q // 2 - s + 1), m)
            cols = _sym_index(np.arange(n + q - 1) - (p // 2 - s + 1), n)
            fshape = _fft_shape((rows.size, cols.size), (p, q))
            spec = _padded_spectrum(x, rows, cols, fshape)
        last = i + 1 == len(filters) or np.shape(filters[i + 1]) != h.shape
        out.append(_valid_part(spec, fshape, h.tobytes(), h.shape, lev, (m + p - 1, n + q - 1), in_place=last))
    return out


ROW_BLOCK = 32
"""Rows per block of the à-trous row passes (32 rows of a 1080-point row: ~270 KiB)."""


def _fft_shape(ext_shape: tuple[int, int], hu_shape: tuple[int, int]) -> tuple[int, int]:
    """``fftconvolve``'s transform size for ``ext`` and the upsampled filter: ``next_fast_len`` of the full size."""
    from scipy import fft as sfft
    return (sfft.next_fast_len(ext_shape[0] + hu_shape[0] - 1, True),
            sfft.next_fast_len(ext_shape[1] + hu_shape[1] - 1, True))


def _padded_spectrum(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, fshape: tuple[int, int]) -> np.ndarray:
    """``rfftn(ext, fshape, axes=(0, 1))`` of ``ext = x[np.ix_(rows, cols)]`` zero-padded, as pocketfft computes it.

    pocketfft's ``rfftn``: the real FFT of every row, then the complex FFT of every column.  The rows of ``ext``
    are gathered, padded and transformed :data:`ROW_BLOCK` at a time, the padding rows get pocketfft's
    transform of a zero row (its signed zeros included), and the column pass runs in place.
    """
    from scipy import fft as sfft
    ext_rows = rows.size
    spec = np.empty((fshape[0], fshape[1] // 2 + 1), dtype=np.complex128)
    block = np.zeros((min(ROW_BLOCK, ext_rows), fshape[1]))  # the columns past ext stay zero
    for r in range(0, ext_rows, ROW_BLOCK):
        r1 = min(ext_rows, r + ROW_BLOCK)
        block[:r1 - r, :cols.size] = x[np.ix_(rows[r:r1], cols)]
        spec[r:r1] = sfft.rfft(block[:r1 - r], axis=1)
    spec[ext_rows:] = sfft.rfft(np.zeros((1, fshape[1])), axis=1)
    return sfft.fft(spec, axis=0, overwrite_x=True)


def _valid_part(spec: np.ndarray, fshape: tuple[int, int], h_bytes: bytes, h_shape: tuple[int, int], lev: int,
                ext_shape: tuple[int, int], in_place: bool) -> np.ndarray:
    """The centred 'valid' part of ``irfftn(spec · H, fshape)``, ``H`` the upsampled filter's spectrum.

    pocketfft's ``irfftn``: the inverse FFT of every column, then the real inverse FFT of every row scaled by
    ``1/(F0·F1)``.  The column pass runs in place (in ``spec`` itself when ``in_place``), the row passes only
    on the 'valid' rows, unscaled (``norm="forward"``) then multiplied by the factor pocketfft uses (``1/N``
    rounded from long double), straight into the result.
    """
    from scipy import fft as sfft
    prod = spec if in_place else np.empty_like(spec)
    np.multiply(spec, _filter_spectrum(h_bytes, h_shape, lev, fshape), out=prod)
    prod = sfft.ifft(prod, axis=0, norm="forward", overwrite_x=True)
    p, q = h_shape[0] * 2 ** lev, h_shape[1] * 2 ** lev
    full = (ext_shape[0] + p - 1, ext_shape[1] + q - 1)
    valid = (ext_shape[0] - p + 1, ext_shape[1] - q + 1)
    r0, c0 = (full[0] - valid[0]) // 2, (full[1] - valid[1]) // 2
    scale = np.float64(1 / np.longdouble(fshape[0] * fshape[1]))
    out = np.empty(valid)
    for r in range(0, valid[0], ROW_BLOCK):
        r1 = min(valid[0], r + ROW_BLOCK)
        line = sfft.irfft(prod[r0 + r:r0 + r1], n=fshape[1], axis=1, norm="forward")
        line *= scale
        out[r:r1] = line[:, c0:c0 + valid[1]]
    return out


def _fftconvolve_valid(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, h_bytes: bytes,
                       h_shape: tuple[int, int], lev: int) -> np.ndarray:
    """``scipy.signal.fftconvolve(ext, hu, mode='valid')`` with ``ext = x[np.ix_(rows, cols)]`` and the filter
    ``hu`` upsampled by ``2**lev``: the same arithmetic, bit for bit, in fewer passes over memory.

    scipy 1.17's ``fftconvolve`` zero-pads ``ext`` to ``next_fast_len`` sizes, takes ``rfftn``, multiplies by
    the filter's spectrum, takes ``irfftn`` and copies the centred 'valid' part.  Here the same pocketfft
    routines run on the same lines (:func:`_padded_spectrum`, :func:`_valid_part`), but neither ``ext``, its
    padded copy nor the full inverse plane is ever made: at 1024² each was a fresh ~9 MB array a call,
    page-faulted in again (issue 23, session 11: one step 40 → 26 ms at 1024², ~1.2 ms at 256² either way).
    The filter's spectrum is computed once per (filter, level, size) and cached (:func:`_filter_spectrum`).
    ``tests/methods/test_transforms_directional.py`` compares with ``fftconvolve`` bit for bit.
    """
    ext_shape = (rows.size, cols.size)
    fshape = _fft_shape(ext_shape, (h_shape[0] * 2 ** lev, h_shape[1] * 2 ** lev))
    return _valid_part(_padded_spectrum(x, rows, cols, fshape), fshape, h_bytes, h_shape, lev, ext_shape, in_place=True)


@bounded_cache
def _filter_spectrum(h_bytes: bytes, h_shape: tuple[int, int], lev: int, fshape: tuple[int, int]) -> np.ndarray:
    """``rfftn`` of the filter upsampled by ``2**lev`` at the FFT size ``fshape`` (read-only, in the byte-bounded cache)."""
    from scipy import fft as sfft
    return sfft.rfftn(_upsampled(h_bytes, h_shape, lev), fshape, axes=(0, 1))


def periodic_kernel_fft(f: np.ndarray, shape: tuple[int, int], mat: np.ndarray | None = None,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Real-FFT (``rfft2``) frequency response of a periodic filtering step on an R×C grid.

    ``mat is None``: ``efilter2(x, f, 'per')`` (origin at ``ceil((size(f) − 1)/2)``).
    Otherwise ``zconv2(x, f, mat)``: tap ``f[r, c]`` lands at offset
    (row, col) = (M21·c + M22·r, M11·c + M12·r) − (⌊L_r/2⌋, ⌊L_c/2⌋), where L are the
    toolbox's "new filter lengths" of the sheared support.

    The value is ``rfft2`` of the R×C kernel (taps added in place with ``np.add.at``), computed as
    pocketfft computes it: the real FFT of every row, then the complex FFT of every column.  The
    kernel has only a few non-zero rows (at most the number of taps), so only those rows are
    transformed; every other row is the transform of a zero row, taken from pocketfft itself (its
    signed zeros included), and the column pass runs in place, in ``out`` when given (shape
    ``(R, C//2+1)``, complex128).  Same bits as ``rfft2`` of the whole kernel
    (``tests/methods/test_transforms_directional.py``); at 1024² 4.5 → 2.4 ms (session 10).
    """
    from scipy import fft as sfft
    R, C = shape
    fr, fc = f.shape
    rr, cc = np.meshgrid(np.arange(fr), np.arange(fc), indexing="ij")
    if mat is None:
        off_r = rr - int(np.ceil((fr - 1) / 2))
        off_c = cc - int(np.ceil((fc - 1) / 2))
    else:
        m0, m1, m2, m3 = int(mat[0, 0]), int(mat[1, 0]), int(mat[0, 1]), int(mat[1, 1])
        new_cols = (m0 - 1) * (fc - 1) + m2 * (fr - 1) + fc - 1
        new_rows = (m3 - 1) * (fr - 1) + m1 * (fc - 1) + fr - 1
        # C integer division truncates toward zero (matters only for negative lengths)
        off_r = m1 * cc + m3 * rr - int(new_rows / 2)
        off_c = m0 * cc + m2 * rr - int(new_cols / 2)
    rows, at = np.unique(np.mod(off_r, R), return_inverse=True)
    taps = np.zeros((rows.size, C))
    np.add.at(taps, (at.reshape(off_r.shape), np.mod(off_c, C)), f)
    if out is None:
        out = np.empty((R, C // 2 + 1), dtype=np.complex128)
    out[...] = sfft.rfft(np.zeros((1, C)), axis=1)
    out[rows] = sfft.rfft(taps, axis=1)
    done = sfft.fft(out, axis=0, overwrite_x=True)  # in place: pocketfft writes into ``out``
    if not np.may_share_memory(done, out):  # (scipy copied the input after all)
        out[...] = done
    return out  # the owner itself, not the view scipy returns (an owner is a temporary numpy may reuse)
