"""The compiled one-band PA-PCNN of :mod:`methods.nsst_papcnn` (numba, no fast-math, cached on disk).

At module level, imported on first use, so that numba's disk cache finds it again in a new process
(see :mod:`methods._pcnn_kernels`).  The model and the order of its operations are described in
:func:`methods.nsst_papcnn.pa_pcnn_firing_counts`.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def pa_pcnn_plane(f, iterations, decay_f, lam, decay_e, v_e, counts):  # pragma: no cover
    # f: the stimulus |c| (rows × cols, float64); counts: the firing counts T (out, float64)
    rows, cols = f.shape
    cur = np.zeros((rows + 2, cols + 2))  # Y of the previous step, with conv2 'same''s zero border
    nxt = np.zeros((rows + 2, cols + 2))
    u = np.zeros((rows, cols))
    e = np.ones((rows, cols))
    counts[:, :] = 0.0
    for _ in range(iterations):
        for y in range(rows):
            up, mid, down, out = cur[y], cur[y + 1], cur[y + 2], nxt[y + 1]
            for x in range(cols):
                # W = [0.5 1 0.5; 1 0 1; 0.5 1 0.5] on a 0/1 map: every partial sum is a multiple of 0.5
                # below 7, so this value is exactly MATLAB's conv2(Y, W, 'same') in any order of addition
                k = (up[x] + up[x + 2] + down[x] + down[x + 2]) * 0.5 + (up[x + 1] + down[x + 1] + mid[x] + mid[x + 2])
                uu = decay_f * u[y, x] + f[y, x] * (1.0 + lam * k)
                u[y, x] = uu
                fire = 1.0 if uu > e[y, x] else 0.0
                out[x + 1] = fire
                e[y, x] = decay_e * e[y, x] + v_e * fire
                counts[y, x] += fire
        cur, nxt = nxt, cur
