"""Compiled one-plane PCNN of MLEPF (``PCNN_withParameters``): dense steps, and freezing of certified neurons.

The model, per pixel (F ≥ 0 the stimulus, Y the firing map of the previous step, K = W ∗ Y):

    L ← e^{−α_L}·L + V_L·K;   Θ ← e^{−α_θ}·Θ + V_θ·Y;   U = (β·L + 1)·F;   Y ← U > Θ.

**Dense step** (:func:`dense_step`): every pixel, in the rounding order of the numpy reference
``mlepf.pcnn_counts_numpy``; K is read from that reference's two lookup tables, indexed by an
exact integer correlation of Y (horizontal pair sums into a 7-row ring, then seven rows).

**Freezing** (:func:`plane_counts` with ``freeze=True``).  On real MLMG maps almost every neuron
ends up firing at every step (L grows towards K/(1 − e^{−α_L}) while Θ stays below
V_θ/(1 − e^{−α_θ})): on the 12 layers of a 768×576 TNO pair all of them by step 10, on a 256²
Harvard pair 96–99.5 %.  A neuron p that fired at step n is *certified* to fire at every later
step when, with S the certified set and K_S(p) the link input from the neighbours in S alone
(taken 10⁻¹² low, far more than the table's rounding error):

* Lb = min(L_n(p)·(1 − 10⁻⁹), K_S(p)·V_L/(1 − e^{−α_L})·(1 − 10⁻⁹)), checked to satisfy
  fl(fl(Lb·e^{−α_L}) + V_L·K_S) ≥ Lb, so L stays ≥ Lb while all of S keeps firing (rounding is
  monotone, and the real K is ≥ K_S);
* B = max(Θ_n(p), V_θ/(1 − e^{−α_θ})·(1 + 10⁻⁹)), checked to satisfy fl(fl(B·e^{−α_θ}) + V_θ) ≤ B,
  so Θ stays ≤ B while p keeps firing;
* fl(fl(fl(Lb·β) + 1)·F)·(1 − 10⁻⁹) > B, so U > Θ at every later step (the 10⁻⁹ margins dwarf any
  rounding difference, fused multiply-adds included).

S is the greatest set whose members all pass with K_S from S itself (a worklist removes failing
candidates and rechecks their neighbours), so by induction over the steps every member fires for
ever; its count is final (count + steps left) and it no longer needs computing.  A neuron with
F = 0 never fires (U = 0, Θ ≥ 0).  Once at most a quarter of the plane is left, only the remaining
neurons are stepped (:func:`sparse_step`, the same arithmetic, K from their 7×7 window), with a new
certification every few steps.  The counts are exactly those of the dense steps, whatever the
data (tests: ``tests/methods/test_mlepf.py``, ``test_pcnn_freezing_*``); parameters outside the
proof's assumptions (α ≤ 0, β < 0, V_L ≤ 0, V_θ < 0, non-finite) run dense only.
"""
from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

import numpy as np

#: dense steps before the first certification; later ones double the count (8, 16, 32, …)
FIRST_CHECK = 8
#: steps between certifications once only the uncertified neurons are stepped
SPARSE_CHECK = 16
#: the sparse steps start when at most this fraction of a plane is left
SPARSE_FRACTION = 0.25


def freeze_allowed(dl: float, dt: float, beta: float, v_l: float, v_theta: float) -> bool:
    """Whether the certificate's assumptions hold for these (decay, gain) parameters."""
    vals = np.array([dl, dt, beta, v_l, v_theta], dtype=np.float64)
    return bool(np.isfinite(vals).all() and 0 <= dl < 1 and 0 <= dt < 1 and beta >= 0 and v_l > 0
                and v_theta >= 0)


@lru_cache(maxsize=None)
def kernels() -> SimpleNamespace:
    """The kernels (``plane_counts``, ``dense_step``, ``certify``, …) of :mod:`methods._pcnn_kernels`, imported
    on first use (numba, no fast-math, compiled once and cached on disk)."""
    from . import _pcnn_kernels as k

    return SimpleNamespace(plane_counts=k.plane_counts, dense_step=k.dense_step, index_map=k.index_map,
                           certify=k.certify, sparse_step=k.sparse_step, window_index=k.window_index)
