"""Deterministic synthetic triples for tests and benchmarks (no files needed).

A is "visible-like" (smooth texture, a flat bright rectangle, noise), B is
"thermal-like" (a Gaussian blob on a ramp, an exactly flat patch, noise);
F is their rounded average or their maximum.
"""

from __future__ import annotations

import numpy as np


def structured_pair(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic ``n×n`` uint8 pair from ``seed``: A visible-like, B thermal-like (module docstring)."""
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] / n
    a = 120 + 80 * np.sin(9 * x + 2 * y) * np.cos(7 * y) + r.normal(0, 6, (n, n))
    a[n // 4:n // 2, n // 5:n // 2] = 230
    b = 40 + 150 * np.exp(-((x - 0.6) ** 2 + (y - 0.4) ** 2) / 0.02) + 30 * y + r.normal(0, 3, (n, n))
    b[n // 2:3 * n // 4, n // 2:3 * n // 4] = 90
    return (np.clip(np.round(a), 0, 255).astype(np.uint8), np.clip(np.round(b), 0, 255).astype(np.uint8))


def triple(n: int = 64, seed: int = 0, rule: str = "avg") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F, A, B) uint8; F is the average (rounded, ``rule='avg'``) or the maximum (``'max'``) of A and B.

    Any other ``rule`` raises ``ValueError``."""
    from .functional._options import option

    option("triple", "rule", rule, ("avg", "max"))
    a, b = structured_pair(n, seed)
    if rule == "max":
        f = np.maximum(a, b)
    else:
        f = ((a.astype(np.int64) + b + 1) // 2).astype(np.uint8)
    return f, a, b
