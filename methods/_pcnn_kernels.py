"""The compiled kernels of :mod:`methods._pcnn` (numba, no fast-math, cached on disk).

They live at module level, imported on first use by :func:`methods._pcnn.kernels`: numba keys its disk
cache of a closure on the pickled closure variables, and a compiled function captured by another one
pickles differently in every process, so kernels built inside a factory were compiled again by every new
process (session 7: 4-12 s of CPU per fresh worker).  The arithmetic and its proof are described in
:mod:`methods._pcnn`.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def fill_ring_row(row, ring, slot, w, coef):  # pragma: no cover
    # the horizontal pass of the exact 7×7 link correlation: for each of the four vertical distances j,
    # the row's taps weighted by coef[j] (the centre and the pairs at horizontal distance 1, 2, 3)
    for x in range(w):
        y0 = np.int32(row[x + 3])
        p1 = np.int32(row[x + 2]) + np.int32(row[x + 4])
        p2 = np.int32(row[x + 1]) + np.int32(row[x + 5])
        p3 = np.int32(row[x]) + np.int32(row[x + 6])
        for j in range(4):
            ring[j, slot, x] = coef[j, 0] * y0 + coef[j, 1] * p1 + coef[j, 2] * p2 + coef[j, 3] * p3


@njit(cache=True, nogil=True, inline="always")
def sum_ring_rows(ring, y, w, out):  # pragma: no cover
    # the vertical pass for output row y: padded rows y .. y + 6 are in the 7-row ring
    s0, s1, s2, s3 = (y + 3) % 7, (y + 2) % 7, (y + 4) % 7, (y + 1) % 7
    s4, s5, s6 = (y + 5) % 7, y % 7, (y + 6) % 7
    for x in range(w):
        out[x] = (ring[0, s0, x] + ring[1, s1, x] + ring[1, s2, x] + ring[2, s3, x]
                  + ring[2, s4, x] + ring[3, s5, x] + ring[3, s6, x])


@njit(cache=True, nogil=True)
def dense_step(f, cur, nxt, lnk, theta, ring, idx, count, dl, dt, beta, v_l, v_theta, lut1, lut2,
               coef):  # pragma: no cover
    # one step of every pixel; cur/nxt: firing maps padded by 3 zero rows/columns
    h, w = f.shape
    pad = 3
    for r in range(h + 2 * pad):
        fill_ring_row(cur[r], ring, r % 7, w, coef)
        if r < 2 * pad:
            continue
        y = r - 2 * pad  # output row: padded rows y .. y + 6 are in the ring
        sum_ring_rows(ring, y, w, idx)
        crow = cur[y + pad]
        nrow = nxt[y + pad]
        for x in range(w):
            k = idx[x]
            kk = lut1[k >> 11] + lut2[k & 2047]
            if v_l != 1.0:
                kk = kk * v_l
            lv = lnk[y, x] * dl + kk
            lnk[y, x] = lv
            t = theta[y, x] * dt + v_theta * crow[x + pad]
            theta[y, x] = t
            u = (lv * beta + 1.0) * f[y, x]
            fired = u > t
            nrow[x + pad] = fired
            count[y, x] += fired


@njit(cache=True, nogil=True, inline="always")
def window_index(m, y, x, coef):  # pragma: no cover
    # Σ coef[|dy|, |dx|]·m over the 7×7 window of pixel (y, x) of the padded map m (exact integers):
    # the weights are symmetric, so the cells at (±dy, ±dx) are counted first and weighted once
    c = m[y + 3]
    n0 = np.int32(c[x + 3])
    n1 = np.int32(c[x + 2]) + np.int32(c[x + 4])
    n2 = np.int32(c[x + 1]) + np.int32(c[x + 5])
    n3 = np.int32(c[x]) + np.int32(c[x + 6])
    s = coef[0, 0] * n0 + coef[0, 1] * n1 + coef[0, 2] * n2 + coef[0, 3] * n3
    for j in range(1, 4):
        u = m[y + 3 - j]
        d = m[y + 3 + j]
        n0 = np.int32(u[x + 3]) + np.int32(d[x + 3])
        n1 = np.int32(u[x + 2]) + np.int32(u[x + 4]) + np.int32(d[x + 2]) + np.int32(d[x + 4])
        n2 = np.int32(u[x + 1]) + np.int32(u[x + 5]) + np.int32(d[x + 1]) + np.int32(d[x + 5])
        n3 = np.int32(u[x]) + np.int32(u[x + 6]) + np.int32(d[x]) + np.int32(d[x + 6])
        s += coef[j, 0] * n0 + coef[j, 1] * n1 + coef[j, 2] * n2 + coef[j, 3] * n3
    return s


@njit(cache=True, nogil=True)
def index_map(m, ring, kidx, coef):  # pragma: no cover
    # the packed link index of every pixel for the padded map m (dense_step's integer correlation)
    h, w = kidx.shape
    pad = 3
    for r in range(h + 2 * pad):
        fill_ring_row(m[r], ring, r % 7, w, coef)
        if r < 2 * pad:
            continue
        y = r - 2 * pad
        sum_ring_rows(ring, y, w, kidx[y])


@njit(cache=True, nogil=True, inline="always")
def certified(k, y, x, f, lnk, theta, dl, dt, beta, v_l, v_theta, t_hi, lut1, lut2):  # pragma: no cover
    # the module docstring's certificate for pixel (y, x), k: its link index from the candidate set
    kl = (lut1[k >> 11] + lut2[k & 2047]) * (1.0 - 1e-12)
    if v_l != 1.0:
        kl = kl * v_l
    lb = min(kl * ((1.0 - 1e-9) / (1.0 - dl)), lnk[y, x] * (1.0 - 1e-9))
    b = max(theta[y, x], t_hi)
    return (lb * dl + kl >= lb and b * dt + v_theta <= b
            and (lb * beta + 1.0) * f[y, x] * (1.0 - 1e-9) > b)


@njit(cache=True, nogil=True, inline="always")
def push_neighbours(y, x, cand, member, queued, stack_y, stack_x, top):  # pragma: no cover
    h, w = cand.shape
    for yy in range(max(0, y - 3), min(h, y + 4)):
        for xx in range(max(0, x - 3), min(w, x + 4)):
            if cand[yy, xx] and member[yy + 3, xx + 3] != 0 and not queued[yy, xx]:
                queued[yy, xx] = True
                stack_y[top] = yy
                stack_x[top] = xx
                top += 1
    return top


@njit(cache=True, nogil=True)
def certify(cand_y, cand_x, cand, member, kidx, use_map, f, lnk, theta, dl, dt, beta, v_l, v_theta, t_hi,
            lut1, lut2, coef):  # pragma: no cover
    # greatest subset of the candidates (cand; member = 1 for them and for the already certified) whose
    # members all pass with the link input of the members; failures are cleared in `member`.
    # kidx (use_map): the link indices of the initial member map, else each is computed from its window.
    # Fewer members only lower K_S, so every initial failure is removed at once; then a worklist
    # rechecks the neighbours of removed pixels.
    h, w = f.shape
    n = cand_y.shape[0]
    fail_y = np.empty(n, np.int64)
    fail_x = np.empty(n, np.int64)
    nf = 0
    if use_map:
        lfix = (1.0 - 1e-9) / (1.0 - dl)
        for y in range(h):
            crow = cand[y]
            krow = kidx[y]
            lrow = lnk[y]
            trow = theta[y]
            frow = f[y]
            for x in range(w):
                if crow[x]:
                    k = krow[x]
                    kl = (lut1[k >> 11] + lut2[k & 2047]) * (1.0 - 1e-12)
                    if v_l != 1.0:
                        kl = kl * v_l
                    lb = min(kl * lfix, lrow[x] * (1.0 - 1e-9))
                    b = max(trow[x], t_hi)
                    if not (lb * dl + kl >= lb and b * dt + v_theta <= b
                            and (lb * beta + 1.0) * frow[x] * (1.0 - 1e-9) > b):
                        fail_y[nf] = y
                        fail_x[nf] = x
                        nf += 1
    else:
        for i in range(n):
            y, x = cand_y[i], cand_x[i]
            k = window_index(member, y, x, coef)
            if not certified(k, y, x, f, lnk, theta, dl, dt, beta, v_l, v_theta, t_hi, lut1, lut2):
                fail_y[nf] = y
                fail_x[nf] = x
                nf += 1
    for i in range(nf):
        member[fail_y[i] + 3, fail_x[i] + 3] = 0
    queued = np.zeros((h, w), np.bool_)
    stack_y = np.empty(n, np.int64)  # only candidates still in the set are queued, each once at a time
    stack_x = np.empty(n, np.int64)
    top = 0
    for i in range(nf):
        top = push_neighbours(fail_y[i], fail_x[i], cand, member, queued, stack_y, stack_x, top)
    while top > 0:
        top -= 1
        y, x = stack_y[top], stack_x[top]
        queued[y, x] = False
        if member[y + 3, x + 3] == 0:
            continue
        k = window_index(member, y, x, coef)
        if not certified(k, y, x, f, lnk, theta, dl, dt, beta, v_l, v_theta, t_hi, lut1, lut2):
            member[y + 3, x + 3] = 0
            top = push_neighbours(y, x, cand, member, queued, stack_y, stack_x, top)


@njit(cache=True, nogil=True)
def sparse_step(act_y, act_x, f, cur, nxt, lnk, theta, count, dl, dt, beta, v_l, v_theta, lut1, lut2,
                coef):  # pragma: no cover
    # one step of the listed pixels only (the others' firing is constant and equal in cur and nxt)
    for i in range(act_y.shape[0]):
        y, x = act_y[i], act_x[i]
        k = window_index(cur, y, x, coef)
        kk = lut1[k >> 11] + lut2[k & 2047]
        if v_l != 1.0:
            kk = kk * v_l
        lv = lnk[y, x] * dl + kk
        lnk[y, x] = lv
        t = theta[y, x] * dt + v_theta * cur[y + 3, x + 3]
        theta[y, x] = t
        u = (lv * beta + 1.0) * f[y, x]
        fired = u > t
        nxt[y + 3, x + 3] = fired
        count[y, x] += fired


@njit(cache=True, nogil=True)
def plane_counts(f, iterations, dl, dt, beta, v_l, v_theta, lut1, lut2, coef, count, freeze, first_check,
                 sparse_check, sparse_fraction, work):  # pragma: no cover
    # coef[j, k]: packed (idx1·2048 + idx2) weight of a neighbour at |dy| = j, |dx| = k
    # work[0] += the pixel-steps computed, work[1] += the certifications kept
    h, w = f.shape
    pad = 3
    cur = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    nxt = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    lnk = np.zeros((h, w))
    theta = np.zeros((h, w))
    ring = np.zeros((4, 7, w), np.int32)  # horizontal sums of the last 7 padded rows
    idx = np.empty(w, np.int32)
    kidx = np.empty((h, w), np.int32)
    cand = np.zeros((h, w), np.bool_)  # the candidates of the certification under way
    t_hi = v_theta / (1.0 - dt) * (1.0 + 1e-9)
    member = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)  # certified (fires for ever)
    done = 0
    check = first_check
    sparse = False
    act_y = np.empty(0, np.int64)
    act_x = np.empty(0, np.int64)
    while done < iterations:
        if not sparse:
            dense_step(f, cur, nxt, lnk, theta, ring, idx, count, dl, dt, beta, v_l, v_theta, lut1, lut2, coef)
            work[0] += h * w
        else:
            work[0] += act_y.shape[0]
            sparse_step(act_y, act_x, f, cur, nxt, lnk, theta, count, dl, dt, beta, v_l, v_theta, lut1,
                        lut2, coef)
        cur, nxt = nxt, cur
        done += 1
        if not freeze or done != check or done >= iterations:
            continue
        # candidates: uncertified pixels that fired at this step
        if not sparse:
            n = 0
            for y in range(h):
                for x in range(w):
                    n += cur[y + pad, x + pad] != 0
            cand_y = np.empty(n, np.int64)
            cand_x = np.empty(n, np.int64)
            n = 0
            for y in range(h):
                for x in range(w):
                    if cur[y + pad, x + pad] != 0:
                        cand_y[n] = y
                        cand_x[n] = x
                        n += 1
        else:
            n = 0
            for i in range(act_y.shape[0]):
                n += cur[act_y[i] + pad, act_x[i] + pad] != 0
            cand_y = np.empty(n, np.int64)
            cand_x = np.empty(n, np.int64)
            n = 0
            for i in range(act_y.shape[0]):
                if cur[act_y[i] + pad, act_x[i] + pad] != 0:
                    cand_y[n] = act_y[i]
                    cand_x[n] = act_x[i]
                    n += 1
        for i in range(n):
            cand[cand_y[i], cand_x[i]] = True
            member[cand_y[i] + pad, cand_x[i] + pad] = 1
        if not sparse:
            index_map(member, ring, kidx, coef)
        certify(cand_y, cand_x, cand, member, kidx, not sparse, f, lnk, theta, dl, dt, beta, v_l, v_theta, t_hi,
                lut1, lut2, coef)
        left = iterations - done
        kept = 0
        for i in range(n):
            y, x = cand_y[i], cand_x[i]
            cand[y, x] = False
            if member[y + pad, x + pad] != 0:
                count[y, x] += left
                nxt[y + pad, x + pad] = 1  # no longer stepped: fires in both maps
                kept += 1
        # still to step: neither certified nor with F = 0 (those never fire)
        if not sparse:
            m = 0
            for y in range(h):
                for x in range(w):
                    m += member[y + pad, x + pad] == 0 and f[y, x] != 0.0
        else:
            m = act_y.shape[0] - kept
        if m == 0:
            work[1] += 1
            break
        if sparse or m <= sparse_fraction * h * w:
            new_y = np.empty(m, np.int64)
            new_x = np.empty(m, np.int64)
            m = 0
            if not sparse:
                for y in range(h):
                    for x in range(w):
                        if member[y + pad, x + pad] == 0 and f[y, x] != 0.0:
                            new_y[m] = y
                            new_x[m] = x
                            m += 1
                nxt[:, :] = cur  # the pixels not stepped keep their firing in both maps
            else:
                for i in range(act_y.shape[0]):
                    if member[act_y[i] + pad, act_x[i] + pad] == 0:
                        new_y[m] = act_y[i]
                        new_x[m] = act_x[i]
                        m += 1
            act_y, act_x = new_y, new_x
            sparse = True
            work[1] += 1
            check = done + sparse_check
        else:
            # too many left: undo the certification (its counts too) and keep stepping densely
            for i in range(n):
                y, x = cand_y[i], cand_x[i]
                if member[y + pad, x + pad] != 0:
                    count[y, x] -= left
                    member[y + pad, x + pad] = 0
            check = 2 * done
    return count
