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
* ``gauss_same_fft(x, kernels)`` is the zero-padded 'same' correlation with
  several separable kernels (MATLAB ``filter2(k, x, 'same')``), real or complex
  input, one forward transform shared by all kernels.

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
    """Transfer function of the 1-D correlation with ``g`` (centre at ``len(g)//2``) on a circle of ``n_fft``."""
    g = np.frombuffer(g_bytes, dtype=np.float64)
    n = len(g)
    r = n // 2
    kk = np.zeros(n_fft)
    # correlation y[i] = Σ_m g[m]·x[i − r + m] is convolution with kk[(r − m) mod N] = g[m]
    kk[(r - np.arange(n)) % n_fft] = g
    t = sfft.rfft(kk) if real else sfft.fft(kk)
    t.setflags(write=False)
    return t


@lru_cache(maxsize=64)
def _transfer2(g_bytes: bytes, n_rows: int, n_cols: int, real: bool) -> np.ndarray:
    """Separable 2-D transfer function (rows × columns, the columns half-spectrum if ``real``)."""
    t = _transfer(g_bytes, n_rows, False)[:, None] * _transfer(g_bytes, n_cols, real)[None, :]
    t.setflags(write=False)
    return t


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
        n = len(g)
        if h < n or w < n:
            raise ValueError(f"image {h}x{w} smaller than the {n}-tap kernel")
        last = j == len(specs) - 1
        y = s if last else s.copy()
        y *= _transfer2(g.tobytes(), H, W, True)
        y = sfft.ifft(y, axis=-2, workers=workers, overwrite_x=True)
        r = n // 2
        # rows outside the valid band (or skipped by the step) are not needed for the last, real pass
        y = sfft.irfft(y[..., r:h - (n - 1 - r):step, :], n=W, axis=-1, workers=workers)
        out.append(y[..., r:w - (n - 1 - r):step])
    return out


def gauss_same_fft(x: np.ndarray, kernels: list[np.ndarray], *, workers: int | None = None) -> list[np.ndarray]:
    """Zero-padded 'same' separable correlations of ``x`` (real or complex) with each 1-D kernel in ``kernels``.

    Equal to ``ndimage.correlate1d(ndimage.correlate1d(x, g, axis=-1, mode='constant'), g, axis=-2,
    mode='constant')`` for each ``g`` (odd lengths, centre ``len(g)//2``), up to round-off.
    Complex output (the input is promoted to complex).
    """
    workers = workers or fft_workers()
    h, w = x.shape[-2:]
    # no wrap-around into the output if the circle has at least len(g)//2 zeros after the image
    pad = max(len(g) for g in kernels) // 2
    H = sfft.next_fast_len(h + pad)
    W = sfft.next_fast_len(w + pad)
    s = sfft.fft(x, n=W, axis=-1, workers=workers)
    s = sfft.fft(s, n=H, axis=-2, workers=workers, overwrite_x=True)
    out = []
    for g in kernels:
        g = np.ascontiguousarray(g, dtype=np.float64)
        y = s * _transfer2(g.tobytes(), H, W, False)
        y = sfft.ifft(y, axis=-2, workers=workers, overwrite_x=True)[..., :h, :]
        y = sfft.ifft(y, axis=-1, workers=workers, overwrite_x=True)[..., :w]
        out.append(y)
    return out
