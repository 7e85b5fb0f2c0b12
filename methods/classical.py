"""Classical multiscale fusion baselines: DWT, Laplacian and contrast pyramids, NSST, NSCT.

All five use the classic rule on one shared transform implementation
(:mod:`fusionbench.methods._transforms`):

- **low-pass band**: mean of the two sources (for the contrast pyramid: mean of the top
  Gaussian level);
- **detail bands**: choose-max of an activity measure, per coefficient — ``rule='abs'``
  (absolute value) or ``rule='energy'`` (local energy, the sum of squares over a
  ``window``×``window`` neighbourhood, mirror borders);
- optional **consistency check** (``consistency=True``): the binary decision map of each band is
  cleaned by a 3×3 majority filter (Li, Manjunath & Mitra 1995).

The default presets are generic re-implementations of the textbook methods; the others record
the settings the literature uses.  Inputs are float images in [0, 1]; the output is clipped to
[0, 1].

Four presets are **ports** of Liu, Liu & Wang's MST-SR toolbox (Inf. Fusion 24, 2015; the copy
shipped in VIFB ``methods/LP_SR``), the calls of its ``MST_main.m``: ``dwt.vifb`` =
``dwt_fuse(I1, I2, 4)``, ``laplacian_pyramid.liu`` = ``lp_fuse(I1, I2, 4, 3, 3)``,
``contrast_pyramid.liu`` = ``rp_fuse(I1, I2, 4, 3, 3)``, ``nsct.liu`` = ``nsct_fuse(I1, I2, [2,3,3,4])``.  They use Rockinger's coefficient rule ``selc(·, ·, 3)``
(:func:`select_li`), Rockinger's pyramids for LP and RP (:mod:`._transforms.rockinger`), ``I1`` = ``b``
(``first='b'``: the functional / infrared image, VIFB's order) and 8-bit input and output
(``uint8_io``: the images the toolbox reads from files, ``uint8(F)`` as it writes them).  Run
against that code under GNU Octave they give the same uint8 image on every pixel of 85 pairs (20 MRI-PET,
20 MRI-SPECT, 20 MRI-CT, 25 TNO; ``dwt.vifb`` on the 72 whose sides divide by 16), made once here; the test pins
3 committed cases, two of them non-square crops (``docs/fidelity.md``; ``tests/methods/test_classical.py``).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from fusionbench.method_registry import register_method

from ._transforms import (
    contrast_pyramid as _contrast_pyramid,
    dwt_decompose,
    dwt_reconstruct,
    laplacian_pyramid as _laplacian_pyramid,
    nsct_fuse,
    nsst_fuse,
    reconstruct_contrast,
    reconstruct_laplacian,
)
from ._transforms._separable import axis0_then_axis1
from ._matlab import float_to_uint8_image, to_uint8
from ._transforms.rockinger import (
    es2,
    reconstruct_rockinger,
    reconstruct_rockinger_ratio,
    rockinger_pyramid,
    rockinger_ratio_pyramid,
)

Rule = Literal["abs", "energy", "li"]
First = Literal["a", "b"]


def _window_mean(x: np.ndarray, window: int) -> np.ndarray:
    """``ndimage.uniform_filter`` over the last two axes (``window``×``window``, mirror borders).

    For a 2-D array the axis-0 pass runs on the rows of the transpose: the same values bit for bit,
    without scipy's strided column walk that costs 6× more per pixel at 1024² (``_transforms._separable``).
    """
    from scipy import ndimage
    if x.ndim == 2 and window > 1:
        return axis0_then_axis1(x, lambda y, axis: ndimage.uniform_filter1d(y, window, axis=axis, mode="mirror"))
    size = (1,) * (x.ndim - 2) + (window, window)
    return ndimage.uniform_filter(x, size=size, mode="mirror")


def _activity(c: np.ndarray, rule: str, window: int) -> np.ndarray:
    if rule == "abs":
        return np.abs(c)
    if rule == "energy":
        return _window_mean(c * c, window)
    raise ValueError(f"rule must be 'abs' or 'energy', not {rule!r}")


STRIP_ROWS = 32
"""Rows per strip of :func:`_choose_abs_in_strips` (32 × 1024 float64 = 256 KiB an array)."""


def _choose_abs_in_strips(ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """``np.where(|ca| >= |cb|, ca, cb)`` for two 2-D arrays of one dtype, :data:`STRIP_ROWS` rows at a time.

    The same selection, but the two magnitudes and the mask of a strip stay in cache instead of
    being three whole-image temporaries (at 1024² each pass over them went to memory: the rule
    cost 2.3× more per pixel than at 256² inside the NSST/NSCT fusions).
    """
    out = np.empty_like(ca)
    n = min(STRIP_ROWS, ca.shape[0])
    mag_a = np.empty((n, ca.shape[1]), dtype=ca.dtype)
    mag_b = np.empty_like(mag_a)
    take_a = np.empty(mag_a.shape, dtype=bool)
    for r in range(0, ca.shape[0], STRIP_ROWS):
        a, b, o = ca[r:r + STRIP_ROWS], cb[r:r + STRIP_ROWS], out[r:r + STRIP_ROWS]
        k = a.shape[0]
        np.abs(a, out=mag_a[:k])
        np.abs(b, out=mag_b[:k])
        np.greater_equal(mag_a[:k], mag_b[:k], out=take_a[:k])
        np.copyto(o, b)
        np.copyto(o, a, where=take_a[:k])
    return out


def _max3x3_zero_border(x: np.ndarray) -> np.ndarray:
    """``ordfilt2(x, 9, ones(3))`` for ``x >= 0`` on the last two axes: the 3×3 maximum, zeros outside
    (exact; shifted ``np.maximum`` passes, rows then columns, instead of scipy's strided column walk)."""
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)])
    h, w = x.shape[-2:]
    cols = np.maximum(np.maximum(p[..., :, 0:w], p[..., :, 1:w + 1]), p[..., :, 2:w + 2])
    return np.maximum(np.maximum(cols[..., 0:h, :], cols[..., 1:h + 1, :]), cols[..., 2:h + 2, :])


def select_li(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Rockinger's ``selc(M1, M2, 3)``, "choose max with consistency check (Li et al.)", exactly.

    As in ``selc.m`` (Rockinger's fusion toolbox, shipped in Liu's MST-SR toolbox and VIFB):
    ``A = ordfilt2(abs(es2(M, 1)), 9, ones(3))`` — the 3×3 maximum of ``|M|`` on the ``es2``
    extension (zero corners) with ``ordfilt2``'s zero padding — for both inputs, then
    ``mm = conv2(double(A1 > A2), ones(3), 'valid') > 4`` (a strict majority of the 3×3
    comparisons) and ``M1`` where ``mm``, else ``M2``: ties go to ``M2``.  Liu's ``nsct_fuse``
    applies the same steps inline.  Arrays may carry leading axes; windows act on the last two.
    """
    m1 = np.asarray(m1)
    m2 = np.asarray(m2)
    wins = (_max3x3_zero_border(np.abs(es2(m1, 1))) > _max3x3_zero_border(np.abs(es2(m2, 1)))).astype(np.int8)
    # wins: (…, h + 2, w + 2), the es2 grid
    h, w = m1.shape[-2:]
    rows = wins[..., :, 0:w] + wins[..., :, 1:w + 1] + wins[..., :, 2:w + 2]  # 3×3 counts, separably
    votes = rows[..., 0:h, :] + rows[..., 1:h + 1, :] + rows[..., 2:h + 2, :]
    return np.where(votes > 4, m1, m2)


def choose_max(ca: np.ndarray, cb: np.ndarray, rule: str = "abs", window: int = 3,
               consistency: bool = False) -> np.ndarray:
    """Coefficient-wise choose-max of the activity; ties go to ``ca``.

    Arrays may carry leading axes (e.g. ``(ndir, H, W)``); windows act on the last two.
    With ``consistency``, the decision map is replaced by its 3×3 majority vote.
    ``rule='li'`` is :func:`select_li` (``ca`` as ``M1``; ties go to ``cb``; ``window`` and
    ``consistency`` do not apply: its 3×3 maximum and majority are part of the rule).
    """
    if rule == "li":
        return select_li(ca, cb)
    if rule == "abs" and not consistency and ca.ndim == 2 and ca.shape == cb.shape and ca.dtype == cb.dtype:
        return _choose_abs_in_strips(ca, cb)
    take_a = _activity(ca, rule, window) >= _activity(cb, rule, window)
    if consistency:
        take_a = _window_mean(take_a.astype(np.float64), 3) > 0.5
    return np.where(take_a, ca, cb)


def _pointwise(rule: str, consistency: bool) -> bool:
    """Whether :func:`choose_max` decides each coefficient from the two coefficients there alone (``|c|``, no
    majority filter), so that the NSST/NSCT fusions may apply it to blocks of rows (same values)."""
    return rule == "abs" and not consistency


def _mean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x + y) / 2


def _finish(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def _toolbox_inputs(a: np.ndarray, b: np.ndarray, uint8_io: bool, first: str) -> tuple[np.ndarray, np.ndarray]:
    """The two images in the order the rule takes them (``first='b'``: ``b`` first) and, with
    ``uint8_io``, as a MATLAB toolbox reads them, ``double(imread(...))`` of 8-bit files: snapped to
    the 8-bit grid, on the 0-255 scale (ties between equal magnitudes, frequent in integer images,
    then fall as the toolbox's do).  Otherwise on their own [0, 1] scale."""
    if first == "b":
        a, b = b, a
    if not uint8_io:
        return a, b
    return (float_to_uint8_image(a).astype(np.float64), float_to_uint8_image(b).astype(np.float64))


def _fuse_pyramids(pa: list[np.ndarray], pb: list[np.ndarray], rule: str, window: int,
                   consistency: bool) -> list[np.ndarray]:
    """Two pyramids (details fine to coarse, the low-pass last) → choose-max details, mean low-pass."""
    fused = [choose_max(x, y, rule, window, consistency) for x, y in zip(pa[:-1], pb[:-1])]
    fused.append((pa[-1] + pb[-1]) / 2)
    return fused


def _toolbox_output(fused: np.ndarray, uint8_io: bool) -> np.ndarray:
    """``uint8_io``: ``uint8(F)`` (round half away from zero, saturate), as the toolbox's
    ``MST_main.m`` writes its result; otherwise clipped to [0, 1], float32."""
    return to_uint8(fused) if uint8_io else _finish(fused)


# --------------------------------------------------------------------------- DWT

_DWT_CITE = ("H. Li, B. S. Manjunath, S. K. Mitra, 'Multisensor image fusion using the wavelet transform', "
             "Graphical Models and Image Processing 57(3):235-245, 1995.")


@register_method("dwt", display_name="DWT", family="multiscale", citation=_DWT_CITE, version="2",
                 params={"wavelet": "db2", "level": 3, "mode": "symmetric", "rule": "abs",
                         "window": 3, "consistency": False})
@register_method("dwt.vifb", display_name="DWT (VIFB)", family="multiscale", version="3",
                 citation=_DWT_CITE + " Port of dwt_fuse.m of Liu's MST-SR toolbox (as shipped in VIFB): Haar "
                 "('db1'), periodic extension, 4 levels, Rockinger's selc(.,.,3).",
                 params={"wavelet": "db1", "level": 4, "mode": "periodization", "rule": "li", "first": "b",
                         "uint8_io": True})
def dwt(a: np.ndarray, b: np.ndarray, *, wavelet: str = "db2", level: int = 3, mode: str = "symmetric",
        rule: Rule = "abs", window: int = 3, consistency: bool = False, first: First = "a",
        uint8_io: bool = False) -> np.ndarray:
    """DWT fusion (PyWavelets): mean of the approximation, choose-max of every detail sub-band.

    ``first``: the source given to the rule as its first argument (``choose_max``'s ``ca``,
    Rockinger's ``M1``).  ``dwt.vifb`` ports ``dwt_fuse(I1, I2, 4)`` of Liu's MST-SR toolbox
    (VIFB ``methods/*_SR/dwt_fuse.m``): ``dwt2(·, 'db1', 'mode', 'per')`` four times, the mean of
    the approximations, :func:`select_li` on every detail band, ``idwt2``; ``I1`` = ``b`` (the
    functional / infrared image: VIFB calls its MST-SR methods with the infrared image first).
    Checked against that code under GNU Octave (``docs/fidelity.md``; Octave has no ``dwt2``,
    so the run used our Haar ``dwt2``/``idwt2`` stand-in, see ``scripts/reference_runs``).
    """
    a, b = _toolbox_inputs(a, b, uint8_io, first)
    ca = dwt_decompose(a, wavelet, level, mode)
    cb = dwt_decompose(b, wavelet, level, mode)
    fused = [(ca[0] + cb[0]) / 2]
    for da, db in zip(ca[1:], cb[1:]):
        fused.append(tuple(choose_max(x, y, rule, window, consistency) for x, y in zip(da, db)))
    return _toolbox_output(dwt_reconstruct(fused, wavelet, mode, shape=a.shape), uint8_io)


# --------------------------------------------------------------------------- pyramids

_LP_CITE = "P. J. Burt, E. H. Adelson, 'The Laplacian pyramid as a compact image code', IEEE Trans. Commun. 31(4), 1983."


@register_method("laplacian_pyramid", display_name="LP", family="multiscale", citation=_LP_CITE, version="2",
                 params={"levels": 4, "variant": "burt", "rule": "energy", "window": 3, "consistency": False})
@register_method("laplacian_pyramid.mertens", display_name="LP (Mertens)", family="multiscale", version="2",
                 citation=_LP_CITE + " Mertens' pyramid code (symmetric borders), as used by Liu et al.'s CNN fusion.",
                 params={"levels": 4, "variant": "mertens", "rule": "energy", "window": 3, "consistency": False})
@register_method("laplacian_pyramid.liu", display_name="LP (Liu)", family="multiscale", version="1",
                 citation=_LP_CITE + " Port of lp_fuse(A, B, 4, 3, 3) of Liu's MST-SR toolbox (Rockinger's pyramid "
                 "and selc), as shipped in VIFB.",
                 params={"levels": 4, "variant": "rockinger", "rule": "li", "first": "b", "uint8_io": True})
def laplacian_pyramid(a: np.ndarray, b: np.ndarray, *, levels: int = 4, variant: str = "burt",
                      rule: Rule = "energy", window: int = 3, consistency: bool = False,
                      first: First = "a", uint8_io: bool = False) -> np.ndarray:
    """Laplacian-pyramid fusion: mean of the top (low-pass) level, choose-max of the details.

    Default: Burt–Adelson [1 4 6 4 1]/16 kernel, 4 detail levels, 3×3 window energy, mirror
    borders.  ``laplacian_pyramid.mertens`` uses Mertens' border scheme.
    ``laplacian_pyramid.liu`` ports ``lp_fuse(I1, I2, 4, 3, 3)`` of Liu's MST-SR toolbox (VIFB
    ``methods/*_SR/lp_fuse.m``): Rockinger's pyramid (``variant='rockinger'``,
    :mod:`._transforms.rockinger`), :func:`select_li` on every band, the mean of the top level;
    ``I1`` = ``b`` (``first``, as for ``dwt.vifb``).  Checked against that code run unchanged
    under GNU Octave (``docs/fidelity.md``).
    """
    a, b = _toolbox_inputs(a, b, uint8_io, first)
    if variant == "rockinger":
        pa, sizes = rockinger_pyramid(a, levels)
        pb, _ = rockinger_pyramid(b, levels)
        fused = _fuse_pyramids(pa, pb, rule, window, consistency)
        return _toolbox_output(reconstruct_rockinger(fused, sizes), uint8_io)
    pa = _laplacian_pyramid(a, levels, variant)
    pb = _laplacian_pyramid(b, levels, variant)
    fused = _fuse_pyramids(pa, pb, rule, window, consistency)
    return _toolbox_output(reconstruct_laplacian(fused, variant), uint8_io)


@register_method("contrast_pyramid", display_name="CP", family="multiscale", version="1",
                 citation="A. Toet, 'Image fusion by a ratio of low-pass pyramid', Pattern Recognition Letters 9(4), 1989.",
                 params={"levels": 4, "variant": "burt", "rule": "abs", "window": 3, "consistency": False,
                         "eps": 1e-6})
@register_method("contrast_pyramid.liu", display_name="RP (Liu)", family="multiscale", version="1",
                 citation="A. Toet, 'Image fusion by a ratio of low-pass pyramid', Pattern Recognition Letters 9(4), "
                 "1989. Port of rp_fuse(A, B, 4, 3, 3) of Liu's MST-SR toolbox (Rockinger's code), as shipped in VIFB.",
                 params={"levels": 4, "variant": "rockinger", "rule": "li", "eps": 1e-6, "first": "b",
                         "uint8_io": True})
def contrast_pyramid(a: np.ndarray, b: np.ndarray, *, levels: int = 4, variant: str = "burt",
                     rule: Rule = "abs", window: int = 3, consistency: bool = False,
                     eps: float = 1e-6, first: First = "a", uint8_io: bool = False) -> np.ndarray:
    """Contrast (ratio-of-low-pass) pyramid fusion (Toet): choose-max |C_k|, mean of the top level.

    ``C_k = G_k / (EXPAND(G_{k+1}) + eps) − 1``; reconstruction ``G_k = (C_k + 1)(EXPAND(G_{k+1}) + eps)``.
    ``contrast_pyramid.liu`` ports ``rp_fuse(I1, I2, 4, 3, 3)`` of Liu's MST-SR toolbox (VIFB
    ``methods/*_SR/rp_fuse.m``, Rockinger's code): ``variant='rockinger'`` bands are the ratios
    ``M ./ (MT + eps)`` themselves (``eps`` = 1e-6 on the 0-255 scale), fused by :func:`select_li`
    (which compares the ratios' magnitudes, not their distance from 1), the mean of the top
    level; ``I1`` = ``b``, 8-bit in and out, as ``laplacian_pyramid.liu``.  Checked against that
    code under GNU Octave (``docs/fidelity.md``).
    """
    a, b = _toolbox_inputs(a, b, uint8_io, first)
    if variant == "rockinger":
        pa, sizes = rockinger_ratio_pyramid(a, levels, eps)
        pb, _ = rockinger_ratio_pyramid(b, levels, eps)
        fused = _fuse_pyramids(pa, pb, rule, window, consistency)
        return _toolbox_output(reconstruct_rockinger_ratio(fused, sizes, eps), uint8_io)
    pa = _contrast_pyramid(a, levels, variant, eps)
    pb = _contrast_pyramid(b, levels, variant, eps)
    fused = _fuse_pyramids(pa, pb, rule, window, consistency)
    return _toolbox_output(reconstruct_contrast(fused, variant, eps), uint8_io)


# --------------------------------------------------------------------------- NSST / NSCT

_NSST_CITE = ("G. Easley, D. Labate, W.-Q. Lim, 'Sparse directional image representations using the discrete "
              "shearlet transform', Appl. Comput. Harmon. Anal. 25(1), 2008.")
_NSCT_CITE = ("A. L. da Cunha, J. Zhou, M. N. Do, 'The nonsubsampled contourlet transform: theory, design, and "
              "applications', IEEE Trans. Image Process. 15(10), 2006.")


@register_method("nsst", display_name="NSST", family="multiscale", citation=_NSST_CITE, version="1",
                 params={"dcomp": (2, 2, 3, 3), "dsize": (4, 4, 8, 8), "pyr_filter": "maxflat",
                         "rule": "abs", "window": 3, "consistency": False})
@register_method("nsst.liu", display_name="NSST (Liu)", family="multiscale", version="1",
                 citation=_NSST_CITE + " Setting of Yin, Liu et al.'s NSST-PAPCNN (IEEE TIM 2019).",
                 params={"dcomp": (3, 3, 4, 4), "dsize": (8, 8, 16, 16), "pyr_filter": "maxflat",
                         "rule": "abs", "window": 3, "consistency": False})
def nsst(a: np.ndarray, b: np.ndarray, *, dcomp: tuple[int, ...] = (2, 2, 3, 3),
         dsize: tuple[int, ...] = (4, 4, 8, 8), pyr_filter: str = "maxflat", rule: Rule = "abs",
         window: int = 3, consistency: bool = False) -> np.ndarray:
    """NSST fusion: mean low-pass, choose-max of every directional coefficient (one direction at a time).

    Default: CNP's NSST setting ('maxflat', dcomp [2,2,3,3], dsize [4,4,8,8]); ``nsst.liu``:
    dcomp [3,3,4,4], dsize [8,8,16,16], the transform setting of NSST-PAPCNN with this textbook rule
    (the method itself, with its PA-PCNN and WSEML·WLE rules, is ``nsst_papcnn``).  Transform agreement with the official toolbox: see
    ``docs/transforms.md``.
    """
    fused = nsst_fuse(a, b, _mean, lambda x, y: choose_max(x, y, rule, window, consistency), dcomp, dsize,
                      pyr_filter, context_rows=0 if _pointwise(rule, consistency) else None)
    return _finish(fused)


@register_method("nsct", display_name="NSCT", family="multiscale", citation=_NSCT_CITE, version="1",
                 params={"levels": (1, 2, 3, 3), "pyr_filter": "9-7", "dir_filter": "pkva",
                         "rule": "abs", "window": 3, "consistency": False})
@register_method("nsct.liu", display_name="NSCT (Liu)", family="multiscale", version="2",
                 citation=_NSCT_CITE + " Port of nsct_fuse(I1, I2, [2,3,3,4]) of Liu, Liu & Wang's MST-SR toolbox "
                 "(Inf. Fusion 24, 2015), as shipped in VIFB: 'pyrexc' / 'vk', Rockinger's selc(.,.,3) rule.",
                 params={"levels": (2, 3, 3, 4), "pyr_filter": "pyrexc", "dir_filter": "vk", "rule": "li",
                         "first": "b", "uint8_io": True})
def nsct(a: np.ndarray, b: np.ndarray, *, levels: tuple[int, ...] = (1, 2, 3, 3), pyr_filter: str = "9-7",
         dir_filter: str = "pkva", rule: Rule = "abs", window: int = 3, consistency: bool = False,
         first: First = "a", uint8_io: bool = False) -> np.ndarray:
    """NSCT fusion: mean low-pass, choose-max of every directional coefficient (one direction at a time).

    Default: DTNP's NSCT setting ('9-7', 'pkva', [1,2,3,3]).  ``nsct.liu`` ports
    ``nsct_fuse(I1, I2, [2,3,3,4])`` of Liu's MST-SR toolbox (VIFB ``methods/*_SR/nsct_fuse.m``):
    'pyrexc' / 'vk', the mean of the low-pass bands, and on every directional band the steps of
    :func:`select_li` written inline; ``I1`` = ``b`` (``first``, as for ``dwt.vifb``).  Checked
    against that code and its toolbox under GNU Octave (``docs/fidelity.md``).  Transform
    agreement: see ``docs/transforms.md``.
    """
    a, b = _toolbox_inputs(a, b, uint8_io, first)
    fused = nsct_fuse(a, b, _mean, lambda x, y: choose_max(x, y, rule, window, consistency), levels,
                      pyr_filter, dir_filter, context_rows=0 if _pointwise(rule, consistency) else None)
    return _toolbox_output(fused, uint8_io)
