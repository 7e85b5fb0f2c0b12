"""Image-fusion metrics (installed as ``fusionbench.metrics``).

First version: EN and SD, enough to exercise the runner.  ``compute`` and
``evaluate`` are the entry points the runner uses.
"""
from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np

from fusionbench.metric import create_metric, register_metric, resolve_metrics


def entropy(fused: np.ndarray, a=None, b=None) -> float:
    """EN: Shannon entropy (bits) of the 256-bin grey histogram of the fused image."""
    hist = np.bincount(np.asarray(fused, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def standard_deviation(fused: np.ndarray, a=None, b=None) -> float:
    """SD: population standard deviation of the fused grey levels (0-255)."""
    return float(np.asarray(fused, dtype=np.float64).std())


register_metric("EN", entropy, needs_sources=False, score_range=(0.0, 8.0),
                convention="EN: 256-bin histogram of uint8 grey, log2 (bits)", groups=("paper", "standard", "all"))
register_metric("SD", standard_deviation, needs_sources=False, score_range=(0.0, 127.5),
                convention="SD: population std (ddof=0) of uint8 grey levels", groups=("paper", "standard", "all"))


def compute(preset: str, fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None) -> float:
    """Score one fused image with one preset."""
    return float(create_metric(preset)(fused, a, b))


def evaluate(fused: np.ndarray, a: np.ndarray, b: np.ndarray, presets: str | Iterable[str] = "paper") -> dict[str, float]:
    """Score one fused image with several presets (a group name, comma list or list)."""
    out = {}
    for name in resolve_metrics(presets):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[name] = compute(name, fused, a, b)
    return out
