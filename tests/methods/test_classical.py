"""Classical multiscale fusion methods: registry entries, presets, the fusion rule, and the
identity property (fusing an image with itself returns it — exercises decomposition, rule and
reconstruction end to end)."""
from __future__ import annotations

import numpy as np
import pytest

from fusionbench.method_registry import create_method, list_methods
from fusionbench.methods.classical import choose_max

NAMES = ["dwt", "dwt.vifb", "laplacian_pyramid", "laplacian_pyramid.mertens", "contrast_pyramid",
         "nsst", "nsst.liu", "nsct", "nsct.liu"]


def _listed_names() -> set[str]:
    out = set()
    for m in list_methods():
        out.add(m if isinstance(m, str) else getattr(m, "name", str(m)))
    return out


def test_all_registered():
    names = _listed_names()
    assert set(NAMES) <= names


def test_presets():
    assert create_method("nsct").params["levels"] == (1, 2, 3, 3)
    assert create_method("nsct.liu").params["pyr_filter"] == "pyrexc"
    assert create_method("nsct.liu").params["dir_filter"] == "vk"
    assert create_method("nsst").params["dsize"] == (4, 4, 8, 8)
    assert create_method("dwt.vifb").params["mode"] == "periodization"


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:128, 0:128] / 128.0
    a = (0.5 + 0.4 * np.sin(12 * x) * (y > 0.3)).astype(np.float32)
    b = np.clip(0.3 + 0.5 * ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.1) + 0.05 * rng.standard_normal((128, 128)), 0, 1)
    return a, b.astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_identity_and_range(name, pair):
    a, b = pair
    m = create_method(name)
    same = m(a, a)
    assert same.shape == a.shape
    assert np.abs(same.astype(np.float64) - a).max() <= 1e-6
    f = np.asarray(m(a, b))
    assert f.shape == a.shape and np.isfinite(f).all() and f.min() >= 0 and f.max() <= 1
    # fused image lies closer to each source's details than a plain average would be to either
    assert not np.allclose(f, (a + b) / 2, atol=1e-3)


def test_choose_max_rules():
    ca = np.array([[1.0, -3.0], [0.5, 0.0]])
    cb = np.array([[-2.0, 2.0], [0.5, 1.0]])
    np.testing.assert_array_equal(choose_max(ca, cb, "abs"), [[-2.0, -3.0], [0.5, 1.0]])
    # energy over the whole 2×2 neighbourhood (mirror borders): b has more energy everywhere here
    big_a = np.zeros((5, 5))
    big_a[2, 2] = 3.0
    big_b = np.ones((5, 5))
    out = choose_max(big_a, big_b, "energy", 3)
    assert out[2, 2] == 3.0 and out[0, 0] == 1.0
    # consistency: an isolated decision is overturned by its neighbours
    sa = np.zeros((5, 5))
    sa[2, 2] = 5.0
    sb = np.ones((5, 5))
    assert choose_max(sa, sb, "abs", consistency=True)[2, 2] == 1.0
    assert choose_max(sa, sb, "abs", consistency=False)[2, 2] == 5.0
    # stacked directional bands: windows act on the last two axes only
    st = choose_max(np.stack([sa, sb]), np.stack([sb, sa]), "energy", 3)
    assert st.shape == (2, 5, 5)


def test_fuse_real_pair(shared_dir):
    import fusionbench

    mri = shared_dir / "data" / "harvard" / "MRI-PET" / "MRI" / "25030.png"
    pet = shared_dir / "data" / "harvard" / "MRI-PET" / "PET" / "25030.png"
    if not (mri.is_file() and pet.is_file()):
        pytest.skip("pair missing")
    out = fusionbench.fuse("nsct", mri, pet)
    assert out.dtype == np.uint8 and out.shape[:2] == (256, 256)


def test_only_the_pixelwise_rule_runs_in_row_blocks():
    """NSST/NSCT may fuse in blocks of rows only for choose-max of |c| without the (windowed) consistency check."""
    from fusionbench.methods.classical import _pointwise

    assert _pointwise("abs", False)
    assert not _pointwise("abs", True) and not _pointwise("energy", False) and not _pointwise("energy", True)
