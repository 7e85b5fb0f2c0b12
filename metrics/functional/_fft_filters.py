"""FFT-based linear filters on the last two axes of a stack (private helpers).

Each function gives the same result as its direct (``scipy.ndimage``)
counterpart up to floating-point round-off; the error is of the order of
``eps · log2(N) · max|x|`` per output sample instead of ``eps · n · max|x|``,
so callers that subtract nearly equal filtered quantities (window variances)
should centre their data first.

* ``sep_valid_fft(x, g)`` equals ``_filters.sep_valid(x, g)`` (MATLAB
  ``filter2(g gᵀ, x, 'valid')``): circular correlation on a grid at least as
  large as the image, of which only the samples that never wrap are kept, so
  no padding beyond a fast FFT length is needed.

``workers`` (threads per transform) defaults to ``_threads.fft_workers()``.

The 2-D transforms are done as two 1-D passes (``rfft`` along the rows, then
``fft`` along the columns), which pocketfft runs markedly faster on stacks
than its ``irfft2``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft as sfft

from ._threads import fft_workers


@lru_cache(maxsize=64)
def _transfer(g_bytes: bytes, n_fft: int, real: bool) -> np.ndarray:
    """Transfer function of the 1-D correlation with the symmetric ``g`` (centre ``len(g)//2``) on a circle of ``n_fft``.

    A symmetric kernel has a real transfer function; it is returned as a real
    array (the FFT's round-off imaginary parts dropped), so that applying it is
    one real multiplication per component: no complex multiply, whose rounding
    depends on whether numpy's SIMD loop fuses it (FMA on AVX2/AVX-512, not on
    older CPUs; ``docs/cpu_independence.md``).
    """
    g = np.frombuffer(g_bytes, dtype=np.float64)
    n = len(g)
    r = n // 2
    kk = np.zeros(n_fft)
    # correlation y[i] = Σ_m g[m]·x[i − r + m] is convolution with kk[(r − m) mod N] = g[m]
    kk[(r - np.arange(n)) % n_fft] = g
    t = np.ascontiguousarray((sfft.rfft(kk) if real else sfft.fft(kk)).real)
    t.setflags(write=False)
    return t


@lru_cache(maxsize=64)
def _transfer2(g_bytes: bytes, n_rows: int, n_cols: int, real: bool) -> np.ndarray:
    """Separable 2-D transfer function (rows × columns, the columns half-spectrum if ``real``), real-valued,
    each value repeated twice along the last axis (it scales the real and the imaginary part of a bin)."""
    t = _transfer(g_bytes, n_rows, False)[:, None] * _transfer(g_bytes, n_cols, real)[None, :]
    t = np.repeat(t, 2, axis=-1)
    t.setflags(write=False)
    return t


def _apply(spec: np.ndarray, t2: np.ndarray) -> None:
    """``spec *= t`` for a C-contiguous complex128 ``spec`` and a real ``t`` given interleaved (``_transfer2``):
    real and imaginary parts scaled by real multiplications."""
    if not spec.flags.c_contiguous:
        raise ValueError("spectrum must be C-contiguous")
    parts = spec.view(np.float64)  # (..., rows, 2·cols): re, im, re, im, ...
    parts *= t2


def _check_symmetric(g: np.ndarray) -> None:
    if len(g) % 2 == 0 or np.any(g != g[::-1]):
        raise ValueError("FFT filters need an odd-length symmetric kernel")


def sep_valid_fft(x: np.ndarray, g: np.ndarray, *, workers: int | None = None) -> np.ndarray:
    """``_filters.sep_valid(x, g)`` (separable correlation, 'valid') computed with real FFTs."""
    return sep_valid_fft_multi(x, [(g, 1)], workers=workers)[0]


def sep_valid_fft_multi(x: np.ndarray, specs: list[tuple[np.ndarray, int]], *,
                        workers: int | None = None) -> list[np.ndarray]:
    """'valid' separable correlations of ``x`` with several kernels, sharing one forward transform.

    ``specs`` holds ``(g, step)`` pairs; each result is ``sep_valid(x, g)[..., ::step, ::step]``
    (``step=2`` is ``_filters.sep_valid_decimate``), up to round-off.  Only the rows kept are
    transformed back.
    """
    workers = workers or fft_workers()
    h, w = x.shape[-2:]
    H = sfft.next_fast_len(h, real=True)
    W = sfft.next_fast_len(w, real=True)
    s = sfft.rfft(x, n=W, axis=-1, workers=workers)
    s = sfft.fft(s, n=H, axis=-2, workers=workers, overwrite_x=True)
    out = []
    for j, (g, step) in enumerate(specs):
        g = np.ascontiguousarray(g, dtype=np.float64)
        _check_symmetric(g)
        n = len(g)
        if h < n or w < n:
            raise ValueError(f"image {h}x{w} smaller than the {n}-tap kernel")
        last = j == len(specs) - 1
        y = s if last else s.copy()
        _apply(y, _transfer2(g.tobytes(), H, W, True))
        y = sfft.ifft(y, axis=-2, workers=workers, overwrite_x=True)
        r = n // 2
        # rows outside the valid band (or skipped by the step) are not needed for the last, real pass
        y = sfft.irfft(y[..., r:h - (n - 1 - r):step, :], n=W, axis=-1, workers=workers)
        out.append(y[..., r:w - (n - 1 - r):step])
    return out
