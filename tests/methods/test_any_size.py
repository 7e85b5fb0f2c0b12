"""Issue 16: every classical and neural-P method fuses images of any size and aspect (odd sizes included).

Synthetic smooth pairs (no shared assets): a grey MRI-like ``a`` with a colour or grey
``b``, through ``fusionbench.fuse`` (the runner's path; a 1-pixel-wide pair, which ``fuse`` and the runner refuse,
through the method itself).  The output must have the input's
height and width, be uint8, be colour exactly when a source is colour, and not be constant.
How each method handles sizes is documented in ``docs/transforms.md`` ("Image sizes").
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import fusionbench
from fusionbench.api import fuse_arrays
from fusionbench.io import MIN_SIDE, ImageError
from fusionbench.method_registry import create_method

CHEAP = ["average", "maximum", "dwt", "dwt.vifb", "laplacian_pyramid", "laplacian_pyramid.mertens", "laplacian_pyramid.liu",
         "contrast_pyramid", "contrast_pyramid.liu", "nsst", "nsst.liu", "nsct", "nsct.liu", "legff", "legff.ivf"]
HEAVY = ["cnp", "dtnp", "mlepf", "mdl", "nsst_papcnn"]
MDL_PRESETS = ["mdl.fast", "mdl.l1", "mdl.l2", "mdl.l3", "mdl.l4"]
ODD = [(67, 93), (130, 101)]
TINY = [(9, 12), (1, 5), (16, 3)]


def _pair(shape: tuple[int, int], colour: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = ndimage.gaussian_filter(rng.random(shape), 2)
    b = ndimage.gaussian_filter(rng.random(shape + ((3,) if colour else ())), (3, 3, 0) if colour else 3)
    a = (a - a.min()) / max(np.ptp(a), 1e-9)
    b = (b - b.min()) / max(np.ptp(b), 1e-9)
    return a, b


def _check(method: str, shape: tuple[int, int], request: pytest.FixtureRequest) -> None:
    m = create_method(method)
    if m.info.weights:
        request.getfixturevalue("weights_home")
    if m.unavailable_reason():
        pytest.skip(f"{method}: {m.unavailable_reason()}")
    for colour in (True, False):
        a, b = _pair(shape, colour)
        if min(shape) < MIN_SIDE:  # the method itself: fusionbench.fuse (and the runner) refuse such a pair
            with pytest.raises(ImageError, match="too small"):
                fusionbench.fuse(m, a, b)
            out = fuse_arrays(m, a, b)
        else:
            out = fusionbench.fuse(m, a, b)
        assert out.dtype == np.uint8, method
        assert out.shape == (shape + (3,) if colour else shape), (method, shape, colour, out.shape)
        if min(shape) >= 8:
            assert np.ptp(out) > 0, (method, shape, colour)


@pytest.mark.parametrize("shape", ODD + TINY, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("method", CHEAP)
def test_cheap_methods_any_size(method: str, shape: tuple[int, int], request: pytest.FixtureRequest) -> None:
    _check(method, shape, request)


@pytest.mark.parametrize("shape", [(67, 93), (9, 12)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("method", HEAVY)
def test_heavy_methods_odd_and_tiny(method: str, shape: tuple[int, int], request: pytest.FixtureRequest) -> None:
    _check(method, shape, request)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(130, 101), (301, 499), (1, 5), (16, 3)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("method", HEAVY + MDL_PRESETS)
def test_heavy_methods_more_sizes(method: str, shape: tuple[int, int], request: pytest.FixtureRequest) -> None:
    _check(method, shape, request)


@pytest.mark.slow
@pytest.mark.parametrize("method", CHEAP)
def test_cheap_methods_large_odd(method: str, request: pytest.FixtureRequest) -> None:
    _check(method, (301, 499), request)


def test_every_classical_method_is_covered() -> None:
    """A new classical/neural-P registration must be added here (families as registered)."""
    from fusionbench.method_registry import list_methods, method_info

    families = {"pixel", "multiscale", "edge-preserving", "neural-p-system", "low-rank"}
    registered = {n for n in list_methods() if method_info(n).family in families}
    covered = set(CHEAP) | set(HEAVY) | set(MDL_PRESETS)
    assert registered <= covered, sorted(registered - covered)
