"""CNP: coupled neural P systems in the NSST domain.

Li B., Peng H., Luo X., Wang J., Song X., Pérez-Jiménez M. J., Riscos-Núñez A.,
"Medical image fusion method based on coupled neural P systems in nonsubsampled
shearlet transform domain", International Journal of Neural Systems 31(1),
2050050 (2021).  Official MATLAB code: ``MorvanLi/CNP-MIF`` (commit 05605c3,
``tools/fuse_NSST_CNP.m`` and the files it calls); this is a clean
re-implementation of that code's arithmetic.

Pipeline (official order: image 1 = CT or the functional luma, image 2 = MRI;
both as ``double(uint8)/255``):

1. NSST of both images (``'maxflat'`` pyramid, 4 levels, dcomp [2,2,3,3],
   dsize [4,4,8,8]; :mod:`fusionbench.methods._transforms.nsst`).
2. Low band: each ``|low|`` drives a coupled neural P system for 110 iterations
   (:func:`._neural_p.cnp_firing_counts`); decision ``count1 ≥ count2``,
   cleaned by a 9×9 majority filter, then choose-max.
3. Each of the 24 directional bands: choose-max of WLE·INSML, with CNP's INSML
   smoothing kernel (1/16)[1 2 1; 2 4 2; 1 2 1] (DTNP's differs).
4. Inverse NSST, ``uint8(F·255)`` (round half away from zero, saturate).

Neuron model.  The official ``CNP_test.p`` is obfuscated P-code.  This port
uses the dynamics of the readable ``CNP_test.m`` (θ0 = 0.3, a 7×7 link kernel
of 1/distance, threshold reset to the output p = 1 after a firing), which
reproduced the authors' published results bit for bit under Octave
(``../shared/official/octave_runs/MANIFEST.md``, CNP).  The research notes'
``CNPS.m`` dynamics (θ0 = 1, w = 20, 3×3) do not.

Colour.  The official code is grey-only (a colour input is turned grey by
``rgb2gray`` and the output is grey); this method is registered with
``colour='luma'``: it fuses the MRI with the BT.601 luma of a colour PET/SPECT
and the runner puts the functional image's chroma back.  The luma is snapped
to the 8-bit grid first, as the official code reads uint8 images; it can
differ from MATLAB's ``rgb2gray`` (coefficients 0.298936/0.587043/0.114021)
by one grey level at rounding boundaries.

Fidelity (``tests/methods/test_cnp.py``, ``docs/fidelity.md``): **bit-exact** (PSNR inf,
MAD 0, 100 % of pixels exact) against the authors' MATLAB P-code results
``results/{1..9,11,12}.tif`` of the official repository (11 pairs, inputs
``DTNP-MIF/images/c<kk>_{1,2}.tif``) and against the 6 Octave runs of the
official code on Harvard pairs (``octave_runs/cnp_cnptest/``; PET/SPECT with
MATLAB's ``rgb2gray`` luma as input).  With the runner's BT.601 luma instead of
``rgb2gray`` (the luma inputs differ by one grey level at a few hundred pixels), the
fused luma against those Octave runs: MRI-PET 25030 65.95 dB, 98.37 % exact;
41052 69.23 dB, 99.22 % exact.

Speed: the CNP neuron model is a compiled per-map pass (numba, exact; see
:func:`._neural_p.cnp_firing_counts`) and the high-band rule runs one direction at a
time; paper Table 5: 2.35 s per pair.  The neuron model stops once the whole map fires
in two consecutive iterations (a fixed point; the remaining iterations are added to the
counts), after 3-5 of the 110 iterations on TNO and 22-47 on Harvard pairs.
Measurements: ``docs/fidelity.md`` (CNP; "Classical methods: whole-run speed").
"""
from __future__ import annotations

import numpy as np

from fusionbench.method_registry import register_method

from ._matlab import float_to_uint8_image, to_uint8
from ._neural_p import _RULE_HALO, cnp_firing_counts, majority_filter, wle_insml_rule

CITATION = (
    "Li B., Peng H., Luo X., Wang J., Song X., Pérez-Jiménez M. J., Riscos-Núñez A., "
    "Medical image fusion method based on coupled neural P systems in nonsubsampled shearlet "
    "transform domain, International Journal of Neural Systems 31(1), 2050050, 2021."
)

DCOMP = (2, 2, 3, 3)
DSIZE = (4, 4, 8, 8)


def fuse_nsst_cnp(img1: np.ndarray, img2: np.ndarray, *, iterations: int = 110,
                  majority_size: int = 9) -> np.ndarray:
    """``fuse_NSST_CNP(A, B)`` on float64 images (official order: A = CT/functional, B = MRI).

    Returns the reconstructed double image (before ``uint8(F·255)``).
    """
    from ._transforms.nsst import nsst_fuse

    def low_rule(low1: np.ndarray, low2: np.ndarray) -> np.ndarray:
        counts = cnp_firing_counts(np.abs(np.stack([low1, low2])), iterations)
        return np.where(majority_filter(counts[0] >= counts[1], majority_size), low1, low2)

    # the directional bands are made, fused and folded into the inverse one direction at a time
    # (same values as decompose → fuse → reconstruct; H×W temporaries only); the rule reaches 3 rows
    # (_RULE_HALO), so it runs on blocks of rows between the FFTs' passes (issue 23, session 10)
    return nsst_fuse(img1, img2, low_rule, lambda b1, b2: wle_insml_rule(b1, b2, "cnp"), DCOMP, DSIZE, "maxflat",
                     context_rows=_RULE_HALO)


@register_method(
    "cnp",
    display_name="CNP",
    family="neural-p-system",
    citation=CITATION,
    colour="luma",
    deterministic=True,
    version="1",
    params={"iterations": 110},
)
def cnp(a: np.ndarray, b: np.ndarray, *, iterations: int = 110) -> np.ndarray:
    """CNP (NSST + coupled neural P systems), official CNP-MIF arithmetic; returns uint8.

    ``a`` is the MRI, ``b`` the CT or functional luma (float in [0, 1]); both are
    read as ``double(uint8)/255`` and passed in the official order (``b`` first).
    """
    img1 = float_to_uint8_image(b) / 255.0
    img2 = float_to_uint8_image(a) / 255.0
    fused = fuse_nsst_cnp(img1, img2, iterations=iterations)
    return to_uint8(fused * 255.0)
