"""Training patches held in memory as views of the full prepared images.

The prepared inputs of every pair (N×C×H×W float32, a few MB) stay in memory;
a patch is an index ``(image, row, column)`` and a batch is one vectorised
gather from a strided window view, so nothing is copied until a batch is
made and the 35,280 patches of the paper's schedule cost no extra memory.

:meth:`PatchSet.batch` cuts a batch in numpy; :meth:`PatchSet.batch_tensor`
cuts it with torch on the device the images were moved to
(:meth:`PatchSet.to`), so on CUDA the images are uploaded once and every batch
is one gather there.  Both give the same values (plain copies).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch


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

    def to(self, device: str) -> "PatchSet":
        """Keep a torch copy of the images (and the patch index) on ``device`` for :meth:`batch_tensor`."""
        import torch

        self._device = torch.device(device)
        self._timages = torch.from_numpy(self.images).to(self._device)
        self._tindex = torch.from_numpy(self.index.astype(np.int64)).to(self._device)
        self._offsets = torch.arange(self.size, device=self._device)
        self._channels = torch.arange(self.images.shape[1], device=self._device)
        return self

    def batch_tensor(self, rows: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The patches ``rows`` as a B×C×size×size float32 tensor on the device of :meth:`to` (default CPU).

        ``rows``: a numpy array, or an int64 tensor already on that device (the
        loop uploads an epoch's order once, so a step copies nothing from the
        host: a host-to-device copy from pageable memory waits for the device
        to drain, which would serialise host and device every step).
        """
        import torch

        if getattr(self, "_timages", None) is None:
            self.to("cpu")
        if not isinstance(rows, torch.Tensor):
            rows = torch.as_tensor(np.asarray(rows, dtype=np.int64)).to(self._device)
        sel = self._tindex[rows]
        ys = sel[:, 1, None] * self.stride + self._offsets          # B×size
        xs = sel[:, 2, None] * self.stride + self._offsets
        c = self._channels
        return self._timages[sel[:, 0, None, None, None], c[None, :, None, None],
                             ys[:, None, :, None], xs[:, None, None, :]]

    def batch(self, rows: np.ndarray) -> np.ndarray:
        """The patches ``rows`` (indices into this set) as a B×C×size×size float32 array."""
        sel = self.index[np.asarray(rows)]
        return np.ascontiguousarray(self._windows[sel[:, 0], :, sel[:, 1], sel[:, 2]])
