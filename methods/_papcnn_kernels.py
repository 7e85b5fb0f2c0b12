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
    cur = np.zeros((rows + 2, cols + 2), np.int32)  # Y of the previous step, with conv2 'same''s zero border
    nxt = np.zeros((rows + 2, cols + 2), np.int32)
    u = np.zeros((rows, cols))
    e = np.ones((rows, cols))
    fired = np.zeros((rows, cols), np.int32)
    for _ in range(iterations):
        for y in range(rows):
            up, mid, down, out = cur[y], cur[y + 1], cur[y + 2], nxt[y + 1]
            u_row, e_row, f_row, n_row = u[y], e[y], f[y], fired[y]
            for x in range(cols):
                # 2K for W = [0.5 1 0.5; 1 0 1; 0.5 1 0.5] on the 0/1 map, an integer: K = 2K·0.5 is exactly
                # MATLAB's conv2(Y, W, 'same'), whose partial sums (multiples of 0.5 below 7) are exact in any order
                k2 = (up[x] + up[x + 2] + down[x] + down[x + 2]) + 2 * (up[x + 1] + down[x + 1] + mid[x] + mid[x + 2])
                uu = decay_f * u_row[x] + f_row[x] * (1.0 + lam * (k2 * 0.5))
                u_row[x] = uu
                fire = np.int32(uu > e_row[x])
                out[x + 1] = fire
                e_row[x] = decay_e * e_row[x] + v_e * np.float64(fire)
                n_row[x] += fire
        cur, nxt = nxt, cur
    counts[:, :] = fired
