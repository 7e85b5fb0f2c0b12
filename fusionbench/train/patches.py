"""Training patches held in memory as views of the full prepared images.

The prepared inputs of every pair (N×C×H×W float32, a few MB) stay in memory;
a patch is an index ``(image, row, column)`` and a batch is one vectorised
gather from a strided window view, so nothing is copied until a batch is
made and the 35,280 patches of the paper's schedule cost no extra memory.
"""
from __future__ import annotations

import numpy as np


def patch_origins(length: int, size: int, stride: int) -> np.ndarray:
    """Start offsets ``0, stride, ...`` of the patches that fit in ``length`` pixels."""
    if size > length:
        raise ValueError(f"patch size {size} exceeds the image size {length}")
    return np.arange(0, length - size + 1, stride)


class PatchSet:
    """All ``size×size`` patches at ``stride`` of a stack of prepared images.

    ``images``: N×C×H×W (all pairs the same size).  ``max_patches`` keeps a
    seeded random subset (sorted, so the set does not depend on order).
    """

    def __init__(self, images: np.ndarray, size: int, stride: int, max_patches: int | None = None, seed: int = 0):
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(f"expected N×C×H×W images, got shape {images.shape}")
        self.images, self.size, self.stride = images, size, stride
        n, _, h, w = images.shape
        ys, xs = patch_origins(h, size, stride), patch_origins(w, size, stride)
        self.grid = (len(ys), len(xs))
        img, iy, ix = np.meshgrid(np.arange(n), np.arange(len(ys)), np.arange(len(xs)), indexing="ij")
        index = np.stack([img.ravel(), iy.ravel(), ix.ravel()], axis=1)
        if max_patches is not None and max_patches < len(index):
            keep = np.sort(np.random.default_rng(seed).choice(len(index), max_patches, replace=False))
            index = index[keep]
        self.index = index
        windows = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(2, 3))
        self._windows = windows[:, :, ::stride, ::stride]  # N×C×ny×nx×size×size, a view

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: np.ndarray) -> np.ndarray:
        """The patches ``rows`` (indices into this set) as a B×C×size×size float32 array."""
        sel = self.index[np.asarray(rows)]
        return np.ascontiguousarray(self._windows[sel[:, 0], :, sel[:, 1], sel[:, 2]])
