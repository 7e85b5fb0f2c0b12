"""Test-only emulation of the summation order of MEFB's Qc filtering: Octave ``filter2(window, x, 'valid')``.

``filter2`` calls ``conv2(x, rot90(window, 2), 'valid')``, which is liboctave's Fortran ``dconv2i``: for each
output column k, for j = 1..7 (kernel columns), for i = 1..7 (kernel rows),
``daxpy(…, b(i, j), a(mb+1-i, k+nb-j), …, c(1, k), …)``: the 49 taps of the 2-D window accumulated one by one,
in that order, into the output column.  OpenBLAS's ``daxpy`` on an x86-64 CPU with FMA (AVX2, AVX-512) fuses
each multiply-add; the kernel below is compiled with ``fastmath={'contract'}`` (fusion allowed, nothing
reassociated) so that LLVM does the same.  The window is MEFB's ``ssim_yang`` one:
``fspecial('gaussian', n, σ)`` as Octave's image package computes it (exp of −(x² + y²)/(2σ²) on the n×n grid,
divided by its column-major sequential sum), then ``window / sum(sum(window))`` (column sums, then their sum).

Swapped into ``functional.structural._gmap`` (``tests/metrics/test_qc_octave_order.py``), it makes our Qc code
reproduce every MEFB Qc record to ≤ 3.4e-14 relative.  It is not used by fusionbench: it ties the result to
fused multiply-add hardware (docs/metrics.md, "Qc.mefb: round-off windows").
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fusionbench.metrics.functional import _libm


@njit(cache=False, fastmath={"contract"})
def conv2_valid(a, b, out):
    """Octave ``dconv2i``: ``out`` = conv2(a, b, 'valid'), taps accumulated column by column (see the module)."""
    ma, na = a.shape
    mb, nb = b.shape
    mo, no = ma - mb + 1, na - nb + 1
    for k in range(no):
        for r in range(mo):
            out[r, k] = 0.0
        for j in range(nb):
            for i in range(mb):
                bij = b[i, j]
                for r in range(mo):
                    out[r, k] = bij * a[r + mb - 1 - i, k + nb - 1 - j] + out[r, k]
    return out


def fuses_multiply_adds() -> bool:
    """Whether the compiled ``conv2_valid`` fuses its multiply-adds (the CPU, or ``NUMBA_CPU_NAME``, has FMA).

    With the 1×2 kernel [1, x] on [y, c] it computes x·y + c after c: fused, x = y = 1 + 2⁻³⁰ and c = −1 give
    2⁻²⁹ + 2⁻⁶⁰; unfused, the product's rounding drops the 2⁻⁶⁰."""
    x = 1.0 + 2.0 ** -30
    out = conv2_valid(np.array([[x, -1.0]]), np.array([[1.0, x]]), np.empty((1, 1)))
    return float(out[0, 0]) == 2.0 ** -29 + 2.0 ** -60


def fspecial_gaussian(n: int, sigma: float) -> np.ndarray:
    """MEFB ``ssim_yang``'s window: Octave ``fspecial('gaussian', n, sigma)``, then ``w / sum(sum(w))``."""
    half = (n - 1) / 2.0
    x2 = (np.arange(n, dtype=np.float64) - half) ** 2
    f = _libm.exp((-(x2[None, :] + x2[:, None]) / (2.0 * sigma ** 2)).ravel()).reshape(n, n)
    s = 0.0
    for v in f.T.ravel():  # sum(f(:)): column-major, sequential
        s += float(v)
    f = f / s
    total = 0.0
    for j in range(n):  # sum(sum(f)): each column's sum, then the sum of those
        col = 0.0
        for i in range(n):
            col += float(f[i, j])
        total += col
    return f / total


def filter2_valid(window: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Octave ``filter2(window, x, 'valid')`` = ``conv2(x, rot90(window, 2), 'valid')``, in Octave's order."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    b = np.ascontiguousarray(window[::-1, ::-1])
    out = np.empty((x.shape[0] - b.shape[0] + 1, x.shape[1] - b.shape[1] + 1))
    return conv2_valid(x, b, out)


def gmap(window_override=None):
    """A replacement for ``functional.structural._gmap`` (Gaussian windows, 'valid' only) filtering in
    Octave's order with the window the caller asks for (or ``window_override``: a wrong-convention check)."""

    def _gmap(x, y, window, valid, mode, memo):
        if not valid or window[0] == "box":
            raise NotImplementedError("the Octave emulation covers Gaussian 'valid' windows only")
        n, sigma = window_override or window
        return filter2_valid(fspecial_gaussian(n, sigma), x if y is None else np.multiply(x, y))

    return _gmap
