"""Classical multiscale fusion: DWT and Laplacian pyramid (first versions).

The classic rule: mean of the low-pass band, absolute-max (or window-energy
max) of the detail bands.
"""
from __future__ import annotations

import numpy as np
import pywt
from scipy import ndimage

from fusionbench.method import register_method


@register_method("dwt", display_name="DWT", family="multiscale",
                 citation="Li, Manjunath, Mitra, Graphical Models and Image Processing 57(3), 1995.",
                 params={"wavelet": "db2", "level": 3, "mode": "symmetric"})
def dwt(a: np.ndarray, b: np.ndarray, *, wavelet: str = "db2", level: int = 3, mode: str = "symmetric") -> np.ndarray:
    """DWT fusion (PyWavelets): mean of the approximation, absolute-max of every detail coefficient."""
    ca = pywt.wavedec2(a, wavelet, mode=mode, level=level)
    cb = pywt.wavedec2(b, wavelet, mode=mode, level=level)
    fused = [(ca[0] + cb[0]) / 2]
    for da, db in zip(ca[1:], cb[1:]):
        fused.append(tuple(np.where(np.abs(x) >= np.abs(y), x, y) for x, y in zip(da, db)))
    out = pywt.waverec2(fused, wavelet, mode=mode)
    return np.clip(out[: a.shape[0], : a.shape[1]], 0, 1)


_BURT = np.array([1, 4, 6, 4, 1], dtype=np.float64) / 16


def _reduce(img: np.ndarray) -> np.ndarray:
    return ndimage.correlate1d(ndimage.correlate1d(img, _BURT, 0, mode="reflect"), _BURT, 1, mode="reflect")[::2, ::2]


def _expand(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    up = np.zeros(shape)
    up[::2, ::2] = img
    k = 2 * _BURT
    return ndimage.correlate1d(ndimage.correlate1d(up, k, 0, mode="reflect"), k, 1, mode="reflect")


@register_method("laplacian_pyramid", display_name="LP", family="multiscale",
                 citation="Burt, Adelson, IEEE Trans. Communications 31(4), 1983.",
                 params={"levels": 4, "window": 3})
def laplacian_pyramid(a: np.ndarray, b: np.ndarray, *, levels: int = 4, window: int = 3) -> np.ndarray:
    """Burt–Adelson pyramid: absolute-max by window energy for the details, mean at the top."""
    def build(img: np.ndarray) -> list[np.ndarray]:
        pyr, cur = [], img.astype(np.float64)
        for _ in range(levels):
            low = _reduce(cur)
            pyr.append(cur - _expand(low, cur.shape))
            cur = low
        return pyr + [cur]

    pa, pb = build(a), build(b)
    fused = []
    for la, lb in zip(pa[:-1], pb[:-1]):
        ea = ndimage.uniform_filter(la * la, window, mode="reflect")
        eb = ndimage.uniform_filter(lb * lb, window, mode="reflect")
        fused.append(np.where(ea >= eb, la, lb))
    out = (pa[-1] + pb[-1]) / 2
    for lap in reversed(fused):
        out = lap + _expand(out, lap.shape)
    return np.clip(out, 0, 1)
