"""Classical multiscale fusion methods: registry entries, presets, the fusion rule, and the
identity property (fusing an image with itself returns it — exercises decomposition, rule and
reconstruction end to end)."""
from __future__ import annotations

import numpy as np
import pytest

from fusionbench.method_registry import create_method, list_methods
from fusionbench.methods._matlab import float_to_uint8_image
from fusionbench.methods._transforms.rockinger import (es2, reconstruct_rockinger, reconstruct_rockinger_ratio,
                                                       rockinger_pyramid, rockinger_ratio_pyramid)
from fusionbench.methods.classical import choose_max, select_li

NAMES = ["dwt", "dwt.vifb", "laplacian_pyramid", "laplacian_pyramid.mertens", "laplacian_pyramid.liu",
         "contrast_pyramid", "contrast_pyramid.liu", "nsst", "nsst.liu", "nsct", "nsct.liu"]
#: ports of Liu's MST-SR toolbox: 8-bit in and out (``uint8_io``), as the toolbox reads and writes files
TOOLBOX_PORTS = ("dwt.vifb", "laplacian_pyramid.liu", "contrast_pyramid.liu", "nsct.liu")


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
    if name in TOOLBOX_PORTS:  # the toolbox fuses the 8-bit image and writes uint8(F)
        np.testing.assert_array_equal(same, float_to_uint8_image(a))
        a, b = float_to_uint8_image(a) / 255.0, float_to_uint8_image(b) / 255.0
        f = np.asarray(m(a, b)) / 255.0
    else:
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


def test_es2_leaves_its_corners_zero():
    """Rockinger's es2.m mirrors each side without repeating the edge and never fills the corners."""
    x = np.arange(1.0, 13.0).reshape(3, 4)
    e = es2(x, 1)
    np.testing.assert_array_equal(e[1:-1, 1:-1], x)
    np.testing.assert_array_equal(e[0, 1:-1], x[1])  # mirrored row 2 above row 1
    np.testing.assert_array_equal(e[1:-1, -1], x[:, -2])
    assert e[0, 0] == e[0, -1] == e[-1, 0] == e[-1, -1] == 0.0


@pytest.mark.parametrize("shape", [(97, 130), (64, 64), (33, 17)])
def test_rockinger_pyramid_reconstructs_any_size(shape):
    """On 0–255 data the error is relative: measured 2.8e-14 here (1.1e-16 of the range; session 28), pinned at
    2e-15 of the range (until then 1e-10)."""
    x = np.random.default_rng(1).random(shape) * 255
    bands, sizes = rockinger_pyramid(x, 4)
    assert sizes[0] == shape and all(b.shape[0] % 2 == 0 and b.shape[1] % 2 == 0 for b in bands[:-1])
    assert np.abs(reconstruct_rockinger(bands, sizes) - x).max() <= 2e-15 * 255


@pytest.mark.parametrize("shape", [(97, 130), (64, 64), (33, 17)])
def test_rockinger_ratio_pyramid_reconstructs_any_size(shape):
    """``contrast_pyramid.liu``'s ratio-of-low-pass pyramid (``rp_fuse.m``) has a test of its own since session 28:
    measured 1.7e-13 on 0–255 data (6.7e-16 of the range), pinned at 2e-15 of the range."""
    x = np.random.default_rng(1).random(shape) * 255
    x[:5, :5] = 0  # a black corner: the ratios divide by eps-offset low-pass values there
    bands, sizes = rockinger_ratio_pyramid(x, 4)
    assert sizes[0] == shape and len(bands) == 5
    assert np.abs(reconstruct_rockinger_ratio(bands, sizes) - x).max() <= 2e-15 * 255


def test_select_li_needs_a_majority_and_ties_go_to_the_second():
    m1 = np.zeros((6, 6))
    m2 = np.full((6, 6), 1.0)
    np.testing.assert_array_equal(select_li(m1, m2), m2)  # M2 larger everywhere
    np.testing.assert_array_equal(select_li(m2, m2.copy()), m2)  # equal: ties go to M2
    lone = m1.copy()
    lone[3, 3] = 5.0  # one large M1 value: its 3×3 maximum wins at the 9 pixels around it, then the vote:
    out = select_li(lone, m2)
    assert out[3, 3] == 5.0  # 9 of 9 votes
    assert out[2, 3] == 0.0  # 6 of 9: M1 is taken, its own value 0 below M2's 1
    assert out[2, 2] == 1.0 and out[0, 0] == 1.0  # 4 of 9, 0 of 9: M2
    stacked = select_li(np.stack([lone, m1]), np.stack([m2, m2]))  # leading axes: per band
    np.testing.assert_array_equal(stacked[0], out)
    np.testing.assert_array_equal(stacked[1], m2)


def _liu_cases():
    from ._octave_cases import committed_cases

    for row in committed_cases("octave_liu_mst"):
        for method in row["methods"].split():
            yield pytest.param(row, method, id=f"{row['name']}-{method}")


# The toolbox's dwt_fuse.m, lp_fuse.m, rp_fuse.m and nsct_fuse.m (VIFB methods/LP_SR) run unchanged under GNU Octave 7.3
# (scripts/reference_runs/run_liu_mst.m; Octave has no dwt2, so dwt_fuse ran on our Haar stand-in, which rounds
# as PyWavelets does).  Measured: uint8(F) identical on every pixel of 60 Harvard pairs (20 per task) and the 25
# TNO pairs (DWT on the 12 whose sides divide by 16), and on the non-square crops committed here.
@pytest.mark.parametrize("row,method", list(_liu_cases()))
def test_liu_toolbox_ports_equal_the_toolbox_under_octave(shared_dir, row, method):
    from ._octave_cases import case_image, committed_result

    functional, mri = (case_image(shared_dir, row[key], row["crop"], grey=True) for key in ("functional", "mri"))
    ours = create_method(method)(mri, functional)
    reference = committed_result("octave_liu_mst", f"{row['name']}_{method}")
    np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("shape", [(5, 7), (1, 4), (2, 9, 4), (3, 40, 33)])
def test_max3x3_is_ordfilt2_with_zero_padding(shape):
    """select_li's 3×3 maximum (shifted np.maximum passes) equals scipy's maximum_filter with zero borders."""
    from scipy import ndimage

    from fusionbench.methods.classical import _max3x3_zero_border

    x = np.abs(np.random.default_rng(2).standard_normal(shape))
    ref = ndimage.maximum_filter(x, size=(1,) * (x.ndim - 2) + (3, 3), mode="constant", cval=0.0)
    np.testing.assert_array_equal(_max3x3_zero_border(x), ref)


def test_choose_max_abs_ties_go_to_the_first_source() -> None:
    from fusionbench.methods.classical import choose_max

    ca, cb = np.array([[1.0, -2.0], [0.0, 3.0]]), np.array([[-1.0, 2.0], [0.0, -4.0]])
    np.testing.assert_array_equal(choose_max(ca, cb, "abs"), [[1.0, -2.0], [0.0, -4.0]])
