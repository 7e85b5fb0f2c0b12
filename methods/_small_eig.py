"""Eigenvalues of many small Gram matrices MᵀM at once (16×16, float64), vectorised across matrices.

Used by MDL (``methods/mdl.py``) for the nuclear norm ‖M‖_* = Σ √max(λᵢ(MᵀM), 0) of every 16×16
detail patch, where batched LAPACK ``eigvalsh`` (one call per matrix inside MKL) was 60 % of the time.

Algorithm, per block of ``LANES`` matrices held structure-of-arrays (the innermost loop of every
step runs over the matrices of the block, so the compiler turns it into SIMD instructions):

1. Gram G = MᵀM (lower triangle, sums over the 16 rows in ascending order) of M scaled by a power of
   two (exact, undone at the end), so that no step under- or overflows whatever the matrix's scale;
2. Householder tridiagonalisation G = Q T Qᵀ without accumulating Q (the reflectors of LAPACK
   ``dlarfg``/``dsytd2``: β = −sign(x₀)‖x‖, τ = (β − x₀)/β, no reflection where the rest of the
   column is exactly zero);
3. eigenvalues of T by implicit symmetric QR steps with the Wilkinson shift (Golub & Van Loan,
   *Matrix Computations*, 4th ed., Alg. 8.3.2 and 8.3.3) in the root-free form of Pal, Walker and
   Kahan (LAPACK ``dsterf``'s QR branch): the steps work on the squared couplings e²_j and carry the
   squared cosine/sine, so a step costs two divisions and no square root; each sweep runs from the top
   to the bottom of each matrix's unreduced trailing block.  A coupling with |e_j| ≤ ε(|d_j| + |d_{j+1}|)
   (tested on the squares) is set to zero (deflation, as LAPACK's ``dsteqr`` test); the block's active
   size shrinks once every matrix of the block has deflated its last eigenvalue.  Outside its block a
   matrix's values are left exactly unchanged.  The steps at positions j and j + 1 are done in one pass
   over the lanes, so what the first hands to the second stays in registers (session 7).

Both steps are backward stable: every eigenvalue is within a few ε‖G‖ of the exact eigenvalue of the
rounded Gram matrix, as LAPACK's are, so the two differ by rounding only (the square root of an
eigenvalue near zero amplifies that: ≈ √(ε‖G‖), the same loss the Gram route already has against the
SVD).  No ``fastmath``: every operation is a plain IEEE double operation without FMA contraction, so
the results do not depend on the SIMD width the CPU offers (AVX2 or AVX-512; tested).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

N = 16  #: matrix size (the compiled kernel's own constants are in _small_eig_kernels; a test pins them equal)
LANES = 32  #: matrices processed together (the SIMD loops run over them)
MAX_SWEEPS = 60  #: QR sweeps allowed per eigenvalue before it is accepted as is (never reached in tests)


@lru_cache(maxsize=None)
def _kernel():
    """The compiled block solver (numba; compiled on first use, cached on disk).

    Written so that LLVM vectorises every loop over the lanes ``q``: rows are taken as 1-D views,
    per-lane choices are value selects, ``error_model="numpy"`` (a division by zero gives inf/NaN
    instead of raising, which would need a branch), and the lane count is a run-time argument
    (a constant trip count is unrolled to scalar code before the vectoriser sees it).
    """
    from ._small_eig_kernels import solve

    return solve


def _prepare(rows: np.ndarray, index: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    rows = np.ascontiguousarray(rows, dtype=np.float64).reshape(len(rows), N * N)
    index = np.arange(len(rows)) if index is None else np.ascontiguousarray(index, dtype=np.int64)
    return rows, index


def gram_nuclear_norms(rows: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """Σ √max(λ, 0) over the eigenvalues λ of MᵀM, M = ``rows[p].reshape(16, 16)``, for each p in ``index``.

    ``rows``: (n, 256) or (n, 16, 16) float64 (row-major 16×16 matrices); ``index``: the rows to do
    (all by default).  Returns a float64 vector of ``len(index)`` nuclear norms.
    """
    rows, index = _prepare(rows, index)
    norms = np.empty(len(index))
    _kernel()(rows, index, norms, np.empty((1, N)), False, LANES)
    return norms


def gram_eigvals(rows: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """Eigenvalues of MᵀM for each selected matrix, ascending (the solver of :func:`gram_nuclear_norms`).

    Reference implementation kept for the tests (the solver's eigenvalues against LAPACK's ``eigvalsh``).
    """
    rows, index = _prepare(rows, index)
    eigs = np.empty((len(index), N))
    _kernel()(rows, index, np.empty(len(index)), eigs, True, LANES)
    return np.sort(eigs, axis=1)
