"""Load training pairs once and prepare their full-image inputs in memory."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from fusionbench.io import check_pair, load_image


def prepare_pairs(pairs: Sequence, prepare: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Stack ``prepare(load_image(a), load_image(b))`` of every pair: N×C×H×W float32.

    A pair read from a training pack (:class:`fusionbench.train.pack.PackedPair`)
    brings its loaded images (``pair.a``, ``pair.b``) and is not read from disk.
    """
    out = []
    for pair in pairs:
        if hasattr(pair, "a") and hasattr(pair, "b"):
            a, b = pair.a, pair.b
        else:
            a, b = load_image(pair.a_path), load_image(pair.b_path)
        check_pair(a, b, pair.a_path, pair.b_path, grey_a=True)
        out.append(np.asarray(prepare(a, b), np.float32))
    shapes = {x.shape for x in out}
    if len(shapes) != 1:
        raise ValueError(f"training pairs must share one size, got {sorted(shapes)}")
    return np.stack(out)
