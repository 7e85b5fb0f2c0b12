"""DTNP: dynamic-threshold neural P systems in the NSCT domain.

Li B., Peng H., Wang J., "A novel fusion method based on dynamic threshold neural
P systems and nonsubsampled contourlet transform for multi-modality medical
images", Signal Processing 178, 107793 (2021).  Official MATLAB code:
``MorvanLi/DTNP-MIF`` (commit 682a13a, ``DTNP_toolbox/Fuse_NSCT_DTNP.m`` and the
files it calls); this is a clean re-implementation of that code's arithmetic.

Pipeline (official order: image 1 = CT or the functional luma, image 2 = MRI;
both as ``double(uint8)/255``):

1. NSCT of both images ('9-7' pyramid, 'pkva' directional filters, levels
   [1,2,3,3] → 2, 4, 8, 8 directions; :mod:`fusionbench.methods._transforms.nsct`).
2. Low band: choose-max of WLE·INSML with DTNP's INSML smoothing kernel
   (1/15)[1 2 1; 2 3 2; 1 2 1] (CNP's differs).
3. Each of the 22 directional bands: ``INSML(|c|)`` of each source drives a
   DTNP neuron model for 110 iterations (:func:`._neural_p.dtnp_firing_counts`);
   choose-max of the firing scores, no consistency check.
4. Inverse NSCT, ``F·255`` clipped to [0, 255] and rounded (half away from zero).

Neuron model.  The official ``DTNP.p`` is obfuscated P-code.  This port uses
the dynamics of the readable ``DTNP.m`` of ``XHU-GMC/DTNP-IVIF`` (Θ0 = 1, a 3×3
link kernel of 1/distance, p = 1.1 on firing, Θ ← Θ − 1 + p after a firing),
which reproduced the authors' published results bit for bit under Octave
(``../shared/official/octave_runs/MANIFEST.md``, DTNP).

Colour.  The official code is grey-only (a colour input is turned grey by
``rgb2gray`` and the output is grey); this method is registered with
``colour='luma'``: it fuses the MRI with the BT.601 luma of a colour PET/SPECT
and the runner puts the functional image's chroma back.  The luma is snapped
to the 8-bit grid first, as the official code reads uint8 images; it can
differ from MATLAB's ``rgb2gray`` by one grey level at rounding boundaries.

Fidelity (``tests/methods/test_dtnp.py``, ``docs/fidelity.md``): **bit-exact** (PSNR inf,
MAD 0, 100 % of pixels exact) against the authors' MATLAB P-code results
``results/{1..9,11,12}.tif`` of the official repository (11 pairs, inputs
``DTNP-MIF/images/c<kk>_{1,2}.tif``) and against the 6 Octave runs of the
official code on Harvard pairs (``octave_runs/dtnp/``; PET/SPECT with
MATLAB's ``rgb2gray`` luma as input), and against the official ``Fuse_NSCT_DTNP.m``
run here under Octave on a non-square 120×150 crop of MRI-CT 2006.  With the runner's
BT.601 luma instead of ``rgb2gray``, the fused luma against the Octave runs: MRI-PET
25030 61.05 dB, 95.68 % exact; 41052 62.28 dB, 96.73 % exact.

Speed: the DTNP neuron model is compiled per map (numba, exact; see
:func:`._neural_p.dtnp_firing_counts`): vectorised row passes and 8 iterations swept
together (temporal blocking); single-thread CPU per 256² pair 0.42 s (768×576: 2.96 s)
against 0.89 s (6.64 s) for the row-at-a-time kernel and 5.20 s for the whole-array version
(loaded 2-core machine; ``docs/fidelity.md``, DTNP); paper Table 5: 2.24 s.
"""
from __future__ import annotations

import numpy as np

from fusionbench.method_registry import register_method

from ._matlab import float_to_uint8_image, to_uint8
from ._neural_p import dtnp_firing_counts, insml, wle_insml_rule

CITATION = (
    "Li B., Peng H., Wang J., A novel fusion method based on dynamic threshold neural P systems "
    "and nonsubsampled contourlet transform for multi-modality medical images, "
    "Signal Processing 178, 107793, 2021."
)

LEVELS = (1, 2, 3, 3)


def fuse_nsct_dtnp(img1: np.ndarray, img2: np.ndarray, *, iterations: int = 110) -> np.ndarray:
    """``Fuse_NSCT_DTNP(A, B)`` on float64 images (official order: A = CT/functional, B = MRI).

    Returns the reconstructed double image scaled to [0, 255] and clipped, before rounding.
    """
    from ._transforms.nsct import nsct_fuse

    def band_rule(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
        counts = dtnp_firing_counts(insml(np.abs(np.stack([b1, b2])), "dtnp"), iterations)
        return np.where(counts[0] >= counts[1], b1, b2)

    # one direction at a time: INSML and the neuron model act per map, and the bands are made, fused
    # and folded into the inverse in turn (same values as decompose → fuse → reconstruct)
    fused = nsct_fuse(img1, img2, lambda l1, l2: wle_insml_rule(l1, l2, "dtnp"), band_rule, LEVELS, "9-7", "pkva")
    return np.clip(fused * 255.0, 0.0, 255.0)


@register_method(
    "dtnp",
    display_name="DTNP",
    family="neural-p-system",
    citation=CITATION,
    colour="luma",
    deterministic=True,
    version="1",
    params={"iterations": 110},
)
def dtnp(a: np.ndarray, b: np.ndarray, *, iterations: int = 110) -> np.ndarray:
    """DTNP (NSCT + dynamic-threshold neural P systems), official DTNP-MIF arithmetic; returns uint8.

    ``a`` is the MRI, ``b`` the CT or functional luma (float in [0, 1]); both are
    read as ``double(uint8)/255`` and passed in the official order (``b`` first).
    """
    img1 = float_to_uint8_image(b) / 255.0
    img2 = float_to_uint8_image(a) / 255.0
    return to_uint8(fuse_nsct_dtnp(img1, img2, iterations=iterations))
