"""Agreement between a port's output and a reference image (the numbers of ``docs/fidelity.md``; test helper).

``agreement(outputs, references)`` pools all pixels of all pairs: PSNR in dB
(inf when identical, peak 255), mean absolute difference in grey levels, share
of pixels exactly equal, share within ±1 grey level, and the largest |Δ|.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Agreement:
    """PSNR (dB, inf when identical), mean |Δ|, share exact, share within ±1 grey level, max |Δ|."""

    psnr: float
    mad: float
    exact: float
    within1: float
    max_abs: int

    def __str__(self) -> str:
        return (f"PSNR {self.psnr:.2f} dB, MAD {self.mad:.4f}, exact {100 * self.exact:.2f} %, "
                f"±1 {100 * self.within1:.2f} %, max {self.max_abs}")


def agreement(outputs: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> Agreement:
    """Pooled agreement over all values of all pairs (uint8 images of equal shapes)."""
    if len(outputs) != len(references) or not outputs:
        raise ValueError(f"need equally many outputs and references, got {len(outputs)} and {len(references)}")
    diffs = []
    for out, ref in zip(outputs, references):
        if out.shape != ref.shape:
            raise ValueError(f"shape {out.shape} differs from the reference's {ref.shape}")
        diffs.append((out.astype(np.int64) - ref.astype(np.int64)).ravel())
    d = np.abs(np.concatenate(diffs))
    mse = float(np.mean(d.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
    return Agreement(psnr, float(d.mean()), float(np.mean(d == 0)), float(np.mean(d <= 1)), int(d.max()))
