"""Pixel-wise reference rules: the simplest baselines every table should have."""
from __future__ import annotations

import numpy as np

from fusionbench.method_registry import register_method


@register_method("average", display_name="Average", family="pixel",
                 citation="Pixel-wise mean of the two sources (reference rule).")
def average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel-wise mean ``(a + b) / 2``."""
    return (a + b) * 0.5


@register_method("maximum", display_name="Maximum", family="pixel",
                 citation="Pixel-wise maximum of the two sources (reference rule).")
def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel-wise maximum ``max(a, b)``."""
    return np.maximum(a, b)
