"""Binary Sobel edge map with the default rules of Octave's ``edge(im)`` (image package 2.x).

Used by FMI_edge.  Gradients with the Sobel kernels divided by 8 and replicate
padding on the image scaled to [0, 1]; squared strength thresholded at
4·mean(strength²); a "simple thinning" keeps pixels whose strength exceeds
both horizontal neighbours or both vertical neighbours (zero outside).
MATLAB's ``edge`` thins differently (along the gradient direction), so values
of FMI_edge are "Octave-reference" (see ``metrics_conventions.md`` §7).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def sobel_edge(x: np.ndarray) -> np.ndarray:
    """Boolean edge map of a 0–255 grey image."""
    im = x / 255.0
    k = np.array([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]]) / 8.0
    gy = ndimage.correlate(im, k, mode="nearest")
    gx = ndimage.correlate(im, k.T, mode="nearest")
    s = gy * gy + gx * gx
    t = 4 * s.mean()
    s = np.where(s <= t, 0.0, s)
    p = np.pad(s, 1)
    c = p[1:-1, 1:-1]
    horiz = (c > p[1:-1, :-2]) & (c > p[1:-1, 2:])
    vert = (c > p[:-2, 1:-1]) & (c > p[2:, 1:-1])
    return horiz | vert
