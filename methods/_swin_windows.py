"""Window geometry of the Swin blocks: partition and merge, the shifted-window masks, the relative-position
index, and the token orders the inference path hands maps over in (cached, shared by every block).

Pure functions of the sizes (no learned state); :mod:`methods._swin_blocks` builds the blocks on them.
"""
from __future__ import annotations

import functools
from typing import Optional

import torch

__all__ = ["window_partition", "window_merge", "shift_mask", "kind_masks", "relative_position_index", "Order"]


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) → (B·nW, ws·ws, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_merge(win: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B·nW, ws·ws, C) → (B, H, W, C)."""
    c = win.shape[-1]
    b = win.shape[0] // ((h // ws) * (w // ws))
    x = win.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shift_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """Additive attention mask (nW, ws², ws²) of the cyclically shifted windows.

    After a roll by ``-shift`` the last ``ws`` rows/columns of the map hold up to
    two regions that were not adjacent; tokens of different regions get −100
    (the official value), tokens of the same region 0.
    """
    rows = torch.arange(h)
    cols = torch.arange(w)
    row_lab = (rows >= h - ws).long() + (rows >= h - shift).long()
    col_lab = (cols >= w - ws).long() + (cols >= w - shift).long()
    region = (3 * row_lab[:, None] + col_lab[None, :]).float()          # H × W labels 0..8
    win = window_partition(region[None, :, :, None], ws).squeeze(-1)   # nW × ws²
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


def kind_masks(ws: int, shift: int) -> torch.Tensor:
    """(4, ws², ws²) shifted-window masks of the four window kinds: interior, last column, last row, corner.

    The mask of a window depends only on whether it lies in the last window row
    and/or column of the map, so these four equal :func:`shift_mask` of any size
    (``shift_mask(2ws, 2ws, ws, shift)`` lists exactly these four windows).
    """
    return shift_mask(2 * ws, 2 * ws, ws, shift)


def _to_window_grid(t: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) → (H/ws, B, W/ws, ws², C), a new contiguous tensor (window rows first)."""
    b, h, w, c = t.shape
    return t.reshape(b, h // ws, ws, w // ws, ws, c).permute(1, 0, 3, 2, 4, 5).reshape(h // ws, b, w // ws, ws * ws, c)


def relative_position_index(ws: int) -> torch.Tensor:
    """(ws², ws²) index into the (2ws−1)² relative-position bias table."""
    yy, xx = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    flat = torch.stack([yy.flatten(), xx.flatten()])                   # 2 × ws²
    rel = flat[:, :, None] - flat[:, None, :] + (ws - 1)               # 2 × ws² × ws², ≥ 0
    return rel[0] * (2 * ws - 1) + rel[1]


@functools.lru_cache(maxsize=4)                 # two sizes (two orders each): 68 MB at 1024²
def window_order(h: int, w: int, ws: int, shift: int, device: str) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """``(perm, inv, counts)`` of :meth:`methods._swin_blocks._ShiftedWindows._order`, one copy per distinct order.

    Only two orders exist per size (shifted or not), so the blocks share them: at 1024² each int64
    permutation is 8.5 MB, and one pair per block (24 blocks) was 0.4 GB.
    """
    with torch.inference_mode(False):          # cached for training too: no inference tensors
        return _build_window_order(h, w, ws, shift, device)


def _build_window_order(h: int, w: int, ws: int, shift: int, device: str) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    idx = torch.arange(h * w).view(1, h, w, 1)
    if shift:
        idx = torch.roll(idx, shifts=(-shift, -shift), dims=(1, 2))
        left, right = _to_window_grid(idx[:, :, : w - ws], ws), _to_window_grid(idx[:, :, w - ws:], ws)
        parts = [left[:-1], left[-1:], right[:-1], right[-1:]]
    else:
        parts = [_to_window_grid(idx, ws)]
    counts = tuple(p.shape[0] * p.shape[2] for p in parts)
    perm = torch.cat([p.reshape(-1) for p in parts])
    return perm.to(device), torch.argsort(perm).to(device), counts


#: a token order: ``None`` = image (row-major) order, ``(ws, shift)`` = the window order of such blocks
Order = Optional[tuple[int, int]]


@functools.lru_cache(maxsize=8)                 # two sizes (four hand-offs each)
def gather_index(h: int, w: int, src: Order, dst: Order, device: str) -> torch.Tensor | None:
    """Index taking a token map from order ``src`` to order ``dst`` (``map_dst = map_src[index]``); None if equal."""
    if src == dst:
        return None
    with torch.inference_mode(False):
        return _build_gather_index(h, w, src, dst, device)


def _build_gather_index(h: int, w: int, src: Order, dst: Order, device: str) -> torch.Tensor:
    want = torch.arange(h * w, device=device) if dst is None else window_order(h, w, *dst, device)[0]
    return want if src is None else window_order(h, w, *src, device)[1][want]
