"""The batched 16×16 Gram eigenvalue solver of MDL (``methods/_small_eig.py``) against LAPACK and the SVD."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionbench.methods._small_eig import LANES, gram_eigvals, gram_nuclear_norms

from ._isa import HOST, STAND_INS_WITH_SSE2, assert_same_bits_on_every_cpu, needs_avx512


def _test_matrices() -> np.ndarray:
    """Random 16×16 matrices, including rank-deficient, rank-one, zero, tiny, huge, diagonal and repeated ones."""
    rng = np.random.default_rng(0)
    m = rng.standard_normal((3 * LANES + 5, 16, 16))  # several blocks and a partial one
    m[0] = 0.0
    m[1, :, 7:] = 0.0  # rank 7
    m[2] = np.outer(rng.standard_normal(16), rng.standard_normal(16))  # rank 1
    m[3] = np.diag(np.arange(16.0))  # already diagonal: the tridiagonal splits everywhere
    m[4] = np.eye(16)  # one eigenvalue of multiplicity 16
    m[5] *= 1e-150
    m[6] *= 1e150
    m[7, :, 1:] = m[7, :, :1]  # sixteen equal columns
    m[8] = np.kron(np.eye(8), [[1.0, 2.0], [3.0, 4.0]])  # block diagonal
    return m


def test_eigenvalues_match_lapack() -> None:
    m = _test_matrices()
    want = np.linalg.eigvalsh(np.matmul(m.transpose(0, 2, 1), m))
    got = gram_eigvals(m)
    scale = np.abs(want).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    assert np.all(np.abs(got - want) <= 2e-14 * scale)  # measured ≤ 4.1e-15 ‖G‖
    assert np.all(gram_eigvals(m[:1]) == 0.0)


def test_nuclear_norms_match_svd_and_lapack() -> None:
    from fusionbench.methods.mdl import _norms_of

    m = _test_matrices()
    got = gram_nuclear_norms(m)
    svd = np.linalg.svd(m, compute_uv=False).sum(axis=1)
    assert got[0] == 0.0
    # Gram-based: a singular value σ ≪ σ_max is only known to ≈ √ε σ_max, in both solvers
    np.testing.assert_allclose(got, svd, rtol=1e-6)
    np.testing.assert_allclose(got, _norms_of(m), rtol=1e-6)
    full_rank = np.arange(9, len(m))
    np.testing.assert_allclose(got[full_rank], svd[full_rank], rtol=1e-12)
    # selected rows, in any order, give the same values as the whole batch
    index = np.array([5, 3, 30, 3, 0])
    assert np.array_equal(gram_nuclear_norms(m.reshape(len(m), 256), index), got[index])


def test_real_detail_matrices(shared_dir: Path, weights_home: Path) -> None:
    """MDL's detail patches of a Harvard image: the batched solver's nuclear norms agree with LAPACK's and the SVD's."""
    from fusionbench.io import load_image
    from fusionbench.methods.mdl import MDLatLRR, _norms_of, load_matrices

    from ._octave_cases import octave_case

    a_path, _, _ = octave_case(shared_dir, "mdl", "MRI-CT_2006")
    img = load_image(a_path).astype(np.float64)
    img = (img if img.ndim == 2 else img[..., 0]) / 255.0
    det = MDLatLRR(*load_matrices())._details(img[100:160, 60:200])
    det = det[np.any(det != 0, axis=1)]
    ref = _norms_of(det.reshape(-1, 16, 16))
    got = gram_nuclear_norms(det)
    svd = np.linalg.svd(det.reshape(-1, 16, 16), compute_uv=False).sum(axis=1)
    # measured on these 5,625 patches: 1.1e-11 from LAPACK; both Gram routes ≈ 1e-10 from the SVD
    assert np.max(np.abs(got - ref) / ref) <= 5e-11
    assert np.max(np.abs(got - svd) / svd) <= 2 * max(np.max(np.abs(ref - svd) / svd), 1e-11)


@needs_avx512
@pytest.mark.parametrize("stand_in", STAND_INS_WITH_SSE2)
def test_same_values_with_avx2_and_avx512(stand_in: str, tmp_path: Path) -> None:
    """No FMA contraction or reassociation: the kernel compiled for SSE2 only (no FMA), AVX2 and AVX-512 gives the same bits."""
    script = ("import numpy as np\n"
              "from fusionbench.methods._small_eig import gram_nuclear_norms\n"
              "m = np.random.default_rng(5).standard_normal((200, 16, 16))\n"
              "m[:40, :, 9:] = 0\n"
              "import sys; np.save(sys.argv[1], gram_nuclear_norms(m))\n")
    assert_same_bits_on_every_cpu(script, tmp_path, cpus=(stand_in, HOST))
