"""A preset's value does not depend on the memory layout of the images it is given (session 38's metrics audit:
CC of Fortran-ordered images differed from the row-major value in the last bit, as numpy summed them in another
order)."""
from __future__ import annotations

import math

import numpy as np

import fusionbench
from fusionbench.metric_registry import reads_colour


def _same(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


def test_every_preset_gives_the_same_bits_for_fortran_ordered_and_strided_images() -> None:
    rng = np.random.default_rng(1)
    a, b = (rng.integers(0, 256, (164, 171)).astype(np.uint8) for _ in range(2))
    f = ((a.astype(int) + b) // 2).astype(np.uint8)
    wide = [np.repeat(x, 2, axis=1) for x in (f, a, b)]  # every other column: a strided view of the same image
    for name in fusionbench.resolve_metrics("all"):  # 164 px: MS-SSIM needs more than 160
        if reads_colour(name):
            continue
        metric = fusionbench.create_metric(name)
        for kind, args in (("uint8", {}), ("float", {"data_range": 1.0})):
            images = (f, a, b) if kind == "uint8" else tuple(x / 255.0 for x in (f, a, b))
            row_major = float(metric(*images, **args))
            fortran = float(metric(*(np.asfortranarray(x) for x in images), **args))
            strided = float(metric(*((w if kind == "uint8" else w / 255.0)[:, ::2] for w in wide), **args))
            assert _same(row_major, fortran) and _same(row_major, strided), (name, kind, row_major, fortran, strided)
