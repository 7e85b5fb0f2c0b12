"""Every deep method on images of any size and aspect (issue 16): odd, tiny, wide; grey and colour on either side.

Each method pads what its network needs and crops back (see its docstring and docs/fidelity.md,
"Image sizes and IR-VIS weights of the deep methods"): the result has the pair's size and is not flat.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import fusionbench

pytest.importorskip("torch")

DEEP = ["ifcnn", "matr", "cnn", "sdnet", "u2fusion", "u2fusion.ivf", "swinfusion", "swinfusion.ct"]
SIZES = [(67, 93), (9, 13), pytest.param((130, 101), marks=pytest.mark.slow),
         pytest.param((300, 500), marks=pytest.mark.slow)]


def _pair(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth grey image and a smooth colour image sharing some structure (uint8)."""
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((h, w)), 2)
    base = (base - base.min()) / max(np.ptp(base), 1e-9)
    tint = ndimage.gaussian_filter(rng.random((h, w, 3)), (3, 3, 0))
    grey = np.round(30 + 180 * base).astype(np.uint8)
    col = np.clip(np.round(20 + 120 * base[..., None] + 100 * tint), 0, 255).astype(np.uint8)
    return grey, col


@pytest.fixture(scope="module")
def methods(weights_home):
    return {name: fusionbench.create_method(name) for name in DEEP}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", DEEP)
def test_any_size_grey_and_colour_on_either_side(methods, name, size):
    h, w = size
    grey, col = _pair(h, w)
    m = methods[name]
    medical = fusionbench.fuse(m, grey, col)                       # MRI + colour PET
    irvis = fusionbench.fuse(m, col, grey)                         # colour visible + IR
    both_grey = fusionbench.fuse(m, grey, col[..., 1])             # MRI + CT
    assert medical.shape == irvis.shape == (h, w, 3) and both_grey.shape == (h, w)
    for out in (medical, irvis, both_grey):
        assert out.dtype == np.uint8 and np.ptp(out) > 0
