"""MDL: MDLatLRRv2 / D2-LRR, multi-level decomposition with learned latent low-rank projections.

Song X., Shen T., Li H., Wu X.-J., "D2-LRR: a dual-decomposed MDLatLRR approach
for medical image fusion" (arXiv 2206.15179; MVIPIT 2023).  Official MATLAB code:
``songxujay/MDLatLRRv2`` (commit d9f46b1: ``fusion_all_kinds.m``,
``vector_fusion_method.m``, ``vector_deep_latent.m``, ``vector_decomposition.m``,
``vector_fuison_detail_parts.m``, ``fuison_base_parts.m``).  This is a clean,
vectorised re-implementation of that code's arithmetic, using the **official
learned matrices** ``L_16`` (detail) and ``P_16`` (base) from ``models.zip``
(weights ``mdl``: ``fusionbench fetch weights mdl``).

Algorithm (inputs / 255, float64):

1. every 16×16 patch at stride 1, vectorised **column-major** (MATLAB ``(:)``);
   detail vectors D = L·x, base vectors P·x; the base image is the overlap
   average of the base patches, and the next level decomposes that base image
   (``de_level`` levels: the registered ``mdl`` uses 2, ``mdl.l1``..``mdl.l4`` give the
   four levels the official loop writes; why 2: ``docs/fidelity.md``, "MDL: which level");
2. detail fusion per level and patch: nuclear norms n₁, n₂ of the 16×16 detail
   matrices, weights nᵢ / (n₁ + n₂), fused vectors overlap-averaged;
3. base fusion 0.5·B₁ + 0.5·B₂ of the last level; F = base + details.
   :meth:`MDLatLRR.fuse_all_levels` returns the result of every ``de_level`` from one pass.

Two official behaviours are kept on purpose (``octave_runs/MANIFEST.md``):
the fused detail images are summed *cumulatively* (level 1 counts four times,
level 2 three times, ...), and a patch whose detail is zero in both images gives
0/0 = NaN, which blanks every pixel it covers (``uint8(NaN)`` = 0) — in practice
only the black background around the head.

Colour (``colour='own'``, as ``fusion_all_kinds.m``): the functional image goes
to the code's "YUV" (Y = 0.299/0.587/0.114, U, V), its Y is fused with the grey
image, U and V are kept and ``inv`` of the matrix converts back, then
``uint8(255·RGB)`` (round half away from zero, saturate).  For grey pairs the
official ``CT_MR`` order is used: image 1 = CT, image 2 = the MRI (replicated to
RGB, as the Octave run does; the official code would crash there), output grey.

Implementation: per level, bands of 8 patch rows are processed on 2 threads (in a runner worker, its
thread cap: ``MDLatLRR.threads``)
(detail vectors by one GEMM per band and image, in row-major patch order, which
gives MATLAB's ``reshape(L*x, 16, 16)`` matrix directly; nuclear norms as Σ √eig(DᵀD) by the
SIMD block solver of ``methods/_small_eig.py`` (Gram, Householder tridiagonalisation, Wilkinson-shifted
QR, 32 matrices at a time, in float64; ``solver="lapack"`` keeps the former stacked ``matmul`` + batched
LAPACK ``eigvalsh`` as the reference); the weighting
and overlap-add of the fused vectors in one compiled pass per band, adding in the
plane-by-plane order, so the values are those of the numpy version).  The base image is the exact overlap average of
P·x computed as a 31×31 correlation (interior, FFT) plus per-pixel kernels near
the border, which avoids the second 256×256 product.  Only work the output cannot
depend on is skipped: norms where one detail is zero (weights exactly 0 and 1),
and every patch whose footprint lies entirely in pixels already NaN.

Fidelity (``tests/methods/test_mdl.py``, ``docs/fidelity.md``): **bit-exact** against
the official code run under Octave on 6 Harvard pairs (2 CT, 2 PET, 2 SPECT) at every
``de_level`` 1–4 (PSNR inf, MAD 0, 100 % of values exact), and its core (``MDLatLRR.fuse``) bit-exact on a
non-square 120×150 crop of MRI-PET 25030 at de_level 1 and 2 against the official ``vector_fusion_method`` run
here under Octave (pinned).  No official fused images
exist (``fused_p_s.zip`` is missing upstream).  ``mdl.fast`` (``precision="float32"``: the
patches and detail vectors L·x in single precision, their nuclear norms by the same float64 solver)
takes 0.69× ``mdl``'s CPU time on a 256² MRI-PET pair and 0.72× on a 768×576 TNO pair (one thread,
session 29) and moves 6 of the 917,504 output values of those pairs by one grey level at de_level 2
(PSNR 99.98 dB; the same 6 on an AVX-512 and an AVX2 host and under the AVX2 and SSE4 settings of
``docs/cpu_independence.md``; its float32 product goes through MKL, whose order may move with the CPU, so the
tests keep bands: 4 values on the default pair, 12 over the six).  Until session 29 its norms went to LAPACK's float32 ``eigvalsh``, which the float64
solver had overtaken: it took 1.05–1.15× ``mdl``'s time (the same 6 values differed).

Any size: 16×16 patches need H, W ≥ 16; a smaller side is padded (MATLAB 'symmetric')
and the output cropped back.  The official ``fusion_all_kinds.m`` resizes every input
to 256×256 instead; this port does not.

Speed now (session 29, one thread, best of 3 back to back on the 2-core machine): ``mdl`` (de_level 2)
1.42 s CPU for a 256² MRI-PET pair, 11.8 s for a 768×576 TNO pair; ``mdl.fast`` 0.98 s and 8.4 s (the cost
table, measured apart the same day: 1.20 s and 0.80 s at 256²).
History: before session 5 ``mdl`` took 2.5 s CPU over its 2 threads at 256², 9.3 s at 512²,
32.9 s at 1024² (13× for 16× the pixels), peak resident memory 1.0 GB at 1024².  Session 5 (issue 23, single-thread CPU, back to back):
256² MRI-PET 1.89 → 1.61 s, 768×576 TNO 21.0 → 17.9 s (×1.17, same outputs).  Of a 768-wide band,
``eigvalsh`` of the 16×16 Gram matrices is 60 % of the CPU time, the detail GEMM 18 %, the
Gram products 11 %, the gather 7 %, weighting + overlap-add 5 %.  Session 6: the batched solver
(Gram + eigenvalues ≈ 4 µs a matrix instead of ≈ 10 µs) — figures in ``docs/fidelity.md``, "### MDL".
Session 7: the solver ≈ 2.3 µs a matrix (root-free QR, two steps and four Gram rows a pass over the
lanes), patches gathered by torch ``unfold``; 768×576 TNO 10.20 → 8.19 s, 256² 1.02 → 0.78 s single-thread
CPU (loaded machine); uint8 outputs unchanged on 30 pairs at de_level 1–4.
"""
from __future__ import annotations

import io
import zipfile
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fusionbench.method_registry import register_method
from fusionbench.weights import register_weights, weights_path

from ._matlab import float_to_uint8_image, rgb_to_yuv, to_uint8, yuv_to_rgb
from ._planes import method_threads
from ._small_eig import gram_nuclear_norms

UNIT = 16
_HALF = UNIT - 1  # 15: the reach of a patch beyond a pixel

register_weights(
    "mdl",
    filename="models.zip",
    sha256="98ce56d0c4ab21244926af7ad3114d22a29aad317abc29b70b71766456c30f35",
    url="https://github.com/songxujay/MDLatLRRv2/raw/d9f46b14c422574f0528d5739f17bbcab7a89cca/models.zip",
    method_dir="mdl",
    description="MDLatLRRv2 learned projections L_16 (detail) and P_16 (base), 256×256 float64 .mat files",
)


def load_matrices(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(L_16, P_16)`` from the official ``models.zip`` (the cached weights ``mdl`` by default)."""
    from scipy.io import loadmat

    path = path or weights_path("mdl")
    with zipfile.ZipFile(path) as z:
        lmat = loadmat(io.BytesIO(z.read("models/MD_L_16_detail_mix_2000_s1000.mat")))["L_16"]
        pmat = loadmat(io.BytesIO(z.read("models/MD_P_16_detail_mix_2000_s1000.mat")))["P_16"]
    return np.asarray(lmat, dtype=np.float64), np.asarray(pmat, dtype=np.float64)


def _rowmajor_to_colmajor() -> np.ndarray:
    """perm[c] = MATLAB column-major index of the patch element whose C-order index is c."""
    ky, kx = np.divmod(np.arange(UNIT * UNIT), UNIT)
    return ky + UNIT * kx


def _unique_pairs(lo: np.ndarray, hi: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Distinct (lo, hi) pairs and the label of each position."""
    pairs, labels = np.unique(np.stack([lo, hi], axis=1), axis=0, return_inverse=True)
    return (pairs[:, 0], pairs[:, 1]), labels.ravel()


def _ranges(n: int) -> tuple[np.ndarray, np.ndarray]:
    """For each coordinate q in [0, n): first and last patch offset o with a patch at q − o."""
    q = np.arange(n)
    return np.maximum(0, q - (n - UNIT)), np.minimum(_HALF, q)


class _BaseOperator:
    """Overlap average of P·x over all stride-1 patches, as a position-dependent 31×31 correlation.

    ``B[q]·count[q] = Σ_{o ∈ O(q)} Σ_k P[o, k] img[q − o + k]`` where ``O(q)`` are
    the in-patch offsets of the patches covering q.  Away from the border O(q) is
    all 256 offsets and this is one correlation with ``K[d] = Σ_o P[o, o + d]``;
    near the border the kernel of the offset rectangle O(q) is used (from 2-D
    prefix sums over o).  Same value as the official loop, other summation order.
    """

    def __init__(self, pmat: np.ndarray) -> None:
        oy, ox, ky, kx = np.meshgrid(*(np.arange(UNIT),) * 4, indexing="ij")
        contrib = np.zeros((UNIT, UNIT, 2 * UNIT - 1, 2 * UNIT - 1))
        contrib[oy, ox, ky - oy + _HALF, kx - ox + _HALF] = pmat[oy + UNIT * ox, ky + UNIT * kx]
        prefix = np.zeros((UNIT + 1, UNIT + 1) + contrib.shape[2:])
        prefix[1:, 1:] = contrib.cumsum(0).cumsum(1)
        self._prefix = prefix
        self._layouts: dict[tuple[int, int], dict] = {}

    def kernel(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        s = self._prefix
        return s[y1 + 1, x1 + 1] - s[y0, x1 + 1] - s[y1 + 1, x0] + s[y0, x0]

    def layout(self, h: int, w: int) -> dict:
        """Count map, interior block and the kernels of every border row/column for an h×w image (cached)."""
        key = (h, w)
        if key not in self._layouts:
            y0, y1 = _ranges(h)
            x0, x1 = _ranges(w)
            (uy0, uy1), ly = _unique_pairs(y0, y1)
            (ux0, ux1), lx = _unique_pairs(x0, x1)
            s = self._prefix
            table = (s[uy1[:, None] + 1, ux1[None, :] + 1] - s[uy0[:, None], ux1[None, :] + 1]
                     - s[uy1[:, None] + 1, ux0[None, :]] + s[uy0[:, None], ux0[None, :]])
            full_y = (y0 == 0) & (y1 == _HALF)
            full_x = (x0 == 0) & (x1 == _HALF)
            rows, cols = np.flatnonzero(full_y), np.flatnonzero(full_x)
            interior = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)) if rows.size and cols.size else None
            self._layouts[key] = {
                "count": np.outer(y1 - y0 + 1, x1 - x0 + 1).astype(np.float64),
                "interior": interior,
                "full_rows": rows,
                "border_rows": np.flatnonzero(~full_y),
                "border_cols": np.flatnonzero(~full_x),
                "table": table,
                "ly": ly,
                "lx": lx,
            }
        return self._layouts[key]

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape
        lay = self.layout(h, w)
        table, ly, lx, rows = lay["table"], lay["ly"], lay["lx"], lay["full_rows"]
        win = sliding_window_view(np.pad(img, _HALF), (2 * UNIT - 1, 2 * UNIT - 1))  # win[q] ↔ img[q + d]
        out = np.empty_like(img)
        if lay["interior"] is not None:
            from scipy import signal  # here, not at import: scipy.signal (and the scipy.stats it loads) took about
            # 1 s of every process that loads the method registry (every CLI command, pool worker, sandbox child)

            full = self.kernel(0, _HALF, 0, _HALF)
            out[lay["interior"]] = signal.correlate(img, full, mode="same", method="fft")[lay["interior"]]
        for qy in lay["border_rows"]:
            out[qy] = np.einsum("wij,wij->w", win[qy], table[ly[qy], lx])
        for qx in lay["border_cols"]:
            out[rows, qx] = np.einsum("hij,hij->h", win[rows, qx], table[ly[rows], lx[qx]])
        return out / lay["count"]


def _overlap_add(vectors: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Sum of the patch vectors (rows of ``vectors``, column-major 16×16) put back at their positions.

    Reference implementation kept for the tests (the plain level loop that the banded, compiled
    weighting + overlap-add of :class:`MDLatLRR` must equal).
    """
    h, w = shape
    nh, nw = h - _HALF, w - _HALF
    # [ox, oy, py, px]: the column-major vector index is oy + 16·ox
    planes = np.ascontiguousarray(vectors.T).reshape(UNIT, UNIT, nh, nw)
    out = np.zeros(shape)
    for ox in range(UNIT):
        for oy in range(UNIT):
            out[oy : oy + nh, ox : ox + nw] += planes[ox, oy]
    return out


def _window_counts(mask: np.ndarray) -> np.ndarray:
    """Number of True values in every 16×16 window of ``mask`` (valid positions; exact integer prefix sums)."""
    c = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    c[1:, 1:] = mask.cumsum(0).cumsum(1)
    return c[UNIT:, UNIT:] - c[:-UNIT, UNIT:] - c[UNIT:, :-UNIT] + c[:-UNIT, :-UNIT]


def _covered(patches: np.ndarray) -> np.ndarray:
    """Pixels covered by at least one of the flagged patches (an (h−15)×(w−15) mask)."""
    nh, nw = patches.shape
    pad = np.zeros((nh + 2 * _HALF, nw + 2 * _HALF), bool)
    pad[_HALF : _HALF + nh, _HALF : _HALF + nw] = patches
    return _window_counts(pad) > 0


#: Nuclear-norm solvers: "batched" (default; ``methods/_small_eig.py``, float64) or "lapack" (the reference).
SOLVERS = ("batched", "lapack")


def _norms_of(mats: np.ndarray) -> np.ndarray:
    """Σ √eig(MᵀM) for a stack of 16×16 matrices (Gram by stacked ``matmul``, batched LAPACK ``eigvalsh``),
    in the matrices' precision: the reference solver (``solver="lapack"``)."""
    import torch

    gram = np.matmul(mats.transpose(0, 2, 1), mats)
    eig = torch.linalg.eigvalsh(torch.from_numpy(gram))
    return eig.clamp_min_(0).sqrt_().sum(1).double().numpy()


def _norms_rows(det: np.ndarray, index: np.ndarray, solver: str) -> np.ndarray:
    """Nuclear norms of the rows ``index`` of ``det`` (each a row-major 16×16 matrix) with ``solver``.

    The batched solver works in float64: float32 rows (``mdl.fast``) are widened first, which is exact, so
    only the detail vectors are single precision there.  (Until session 29 float32 rows went to LAPACK's
    float32 ``eigvalsh``, and ``mdl.fast`` took 1.05–1.15× ``mdl``'s time instead of about 0.7×.)"""
    if solver == "batched":
        return gram_nuclear_norms(det, index) if det.dtype == np.float64 else \
            gram_nuclear_norms(det[index].astype(np.float64))
    return _norms_of(det[index].reshape(-1, UNIT, UNIT))


def nuclear_norms(det: np.ndarray, workers: int = 2, solver: str = "batched") -> np.ndarray:
    """Nuclear norm of every 16×16 matrix (rows of ``det``): Σ √max(eig(DᵀD), 0).

    ``solver="batched"``: the SIMD block solver of ``methods/_small_eig.py`` (float64);
    ``"lapack"``: batched LAPACK ``eigvalsh`` (torch).  Both release the GIL, so large batches
    are split over ``workers`` threads.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
    det = det.reshape(len(det), UNIT * UNIT)
    parts = np.array_split(np.arange(len(det)), workers) if workers > 1 and len(det) >= 8192 else [np.arange(len(det))]
    if len(parts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            return np.concatenate(list(pool.map(lambda ix: _norms_rows(det, ix, solver), parts)))
    return _norms_rows(det, parts[0], solver)


def nuclear_weights(d1: np.ndarray, d2: np.ndarray, solver: str = "batched") -> tuple[np.ndarray, np.ndarray]:
    """``w_i = n_i / (n_1 + n_2)`` per patch, with the official 0/0 = NaN where both details are zero.

    Norms are computed only where both patches are non-zero: where exactly one
    is zero the weights are exactly 0 and 1 whatever the other norm is.

    Reference implementation kept for the tests (the plain level loop that the banded, compiled
    weighting + overlap-add of :class:`MDLatLRR` must equal, and the NaN rule).
    """
    z1 = ~np.any(d1 != 0, axis=1)
    z2 = ~np.any(d2 != 0, axis=1)
    n1 = np.where(z1, 0.0, 1.0)
    n2 = np.where(z2, 0.0, 1.0)
    both = np.flatnonzero(~z1 & ~z2)
    if both.size:
        n1[both] = nuclear_norms(d1[both], solver=solver)
        n2[both] = nuclear_norms(d2[both], solver=solver)
    with np.errstate(invalid="ignore"):
        total = n1 + n2
        return n1 / total, n2 / total


class _TorchThreads:
    """Run torch single-threaded inside the band workers (the parallelism is over bands), restore afterwards."""

    def __enter__(self):
        import torch

        self._torch, self._old = torch, torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc) -> None:
        self._torch.set_num_threads(self._old)


_FUSE_OVERLAP = None


def _fuse_overlap_kernel():
    """The compiled weighting + overlap-add of one band (numba; compiled on first use, cached on disk).

    ``out[oy + r, ox + c] += w₁·D₁[r, c, oy, ox] + w₂·D₂[r, c, oy, ox]`` for every patch (r, c) of the band,
    one patch row at a time from the bottom, so that each output pixel adds its patches' terms in the order
    (oy, ox) ascending, as the plane-by-plane ``out[oy:, ox:] += plane[oy, ox]`` loop does; each term is
    ``w₁·D₁ + w₂·D₂`` (one of them where only one patch was computed, 0 where none was, as the zero-filled
    fused matrix gave).  Same values, without the band's fused matrix and its transposed copy.
    """
    global _FUSE_OVERLAP
    if _FUSE_OVERLAP is None:
        from numba import njit

        @njit(cache=True, nogil=True)
        def kernel(det1, det2, row1, row2, w1, w2, nw, out):  # pragma: no cover
            rows = out.shape[0] - 15
            fused = np.empty((256, nw))  # one patch row's fused vectors, element-major
            # patch rows bottom to top: pixel row y then gets oy = y − r in ascending order
            for r in range(rows - 1, -1, -1):
                for c in range(nw):
                    p = r * nw + c
                    i1, i2 = row1[p], row2[p]
                    if i1 >= 0 and i2 >= 0:
                        a, b = w1[p], w2[p]
                        for k in range(256):
                            fused[k, c] = a * det1[i1, k] + b * det2[i2, k]
                    elif i1 >= 0:
                        a = w1[p]
                        for k in range(256):
                            fused[k, c] = a * det1[i1, k]
                    elif i2 >= 0:
                        b = w2[p]
                        for k in range(256):
                            fused[k, c] = b * det2[i2, k]
                    else:
                        for k in range(256):
                            fused[k, c] = 0.0
                for oy in range(16):
                    dst = out[r + oy]
                    for ox in range(16):
                        src = fused[oy * 16 + ox]
                        for c in range(nw):
                            dst[ox + c] += src[c]
            return out

        _FUSE_OVERLAP = kernel
    return _FUSE_OVERLAP


class MDLatLRR:
    """The official MDLatLRRv2 fusion of two grey images in [0, 1] (float64).

    Processed in bands of ``band`` patch rows (cache-sized), bands spread over
    :meth:`threads` threads (the GEMM and both norm solvers release the GIL).  Work the
    output cannot depend on is skipped: a patch that is all-zero in both images
    gives the official 0/0 = NaN, so every pixel it covers is NaN (``uint8`` 0)
    whatever else is added there; patches whose 16×16 footprint lies entirely in
    such pixels are not computed at all, and nuclear norms are computed only where
    both patches are non-zero (otherwise the weights are exactly 0 and 1).
    """

    def __init__(self, lmat: np.ndarray, pmat: np.ndarray, levels: int = 4, band: int = 8,
                 workers: int | None = None, precision: str = "float64", solver: str = "batched") -> None:
        if precision not in ("float64", "float32"):
            raise ValueError(f"precision must be 'float64' or 'float32', not {precision!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
        self.levels, self.band, self.workers, self.solver = levels, band, workers, solver
        self.dtype = np.dtype(precision)
        self._l_rows = np.ascontiguousarray(lmat[:, _rowmajor_to_colmajor()].T)  # C-order patch → detail
        perm = _rowmajor_to_colmajor()
        # C-order patch → C-order detail: the 16×16 matrix [oy, ox] that MATLAB's reshape(L*x, 16, 16) gives
        self._l_rr = np.ascontiguousarray(lmat[np.ix_(perm, perm)].T, dtype=self.dtype)
        self._base = _BaseOperator(pmat)

    def _details(self, img: np.ndarray) -> np.ndarray:
        """Column-major detail vectors L·x of every patch (reference layout, used by the tests)."""
        patches = sliding_window_view(img, (UNIT, UNIT)).reshape(-1, UNIT * UNIT)
        return patches @ self._l_rows

    def _band(self, r0: int, r1: int, imgs: tuple[np.ndarray, np.ndarray], active: tuple[np.ndarray, np.ndarray],
              both: np.ndarray) -> np.ndarray:
        """Fused, overlap-added detail of the patch rows [r0, r1): an (r1 − r0 + 15) × w block."""
        import torch

        w = imgs[0].shape[1]
        nw, rows = w - _HALF, r1 - r0
        lt = torch.from_numpy(self._l_rr)
        both_b = both[r0:r1].ravel()
        dets, norms, idx = [], [], []
        for img, act in zip(imgs, active):
            a = np.flatnonzero(act[r0:r1])
            # every patch of the band as a row (one strided copy by torch, ≈ 2× numpy's), then the active ones
            x = torch.from_numpy(img[r0 : r1 + _HALF]).unfold(0, UNIT, 1).unfold(1, UNIT, 1).reshape(-1, UNIT * UNIT)
            if a.size < x.shape[0]:
                x = x[torch.from_numpy(a)]
            det = (x @ lt).numpy()
            norm = np.zeros(rows * nw)
            norm[a] = 1.0  # non-zero patch opposite a zero one: weight exactly 1
            sel = np.flatnonzero(both_b[a])
            if sel.size:
                norm[a[sel]] = _norms_rows(det, sel, self.solver)
            dets.append(det)
            norms.append(norm)
            idx.append(a)
        with np.errstate(invalid="ignore", divide="ignore"):
            total = norms[0] + norms[1]
            weights = (norms[0] / total, norms[1] / total)
        # patch position -> row of det (−1: not computed, contributes nothing)
        rows_of = [np.full(rows * nw, -1, np.int64) for _ in idx]
        for r, a in zip(rows_of, idx):
            r[a] = np.arange(a.size)
        out = np.zeros((rows + _HALF, w))
        _fuse_overlap_kernel()(dets[0], dets[1], rows_of[0], rows_of[1], weights[0], weights[1], nw, out)
        return out

    def fuse(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        """``vector_fusion_method`` (stride 1, overlap, nuclear norm); NaN where the official code gives NaN."""
        return self.fuse_all_levels(img1, img2)[-1]

    def threads(self) -> int:
        """The band threads: ``workers`` if given, else the runner's per-worker cap, else 2 (as CNP and DTNP).

        Until session 28 it was 2 in every case, so in a runner worker capped to one thread (N workers on N
        cores) MDL ran two busy threads, and ``python -m fusionbench.costs`` timed it on two."""
        return method_threads(self.workers)

    def fuse_all_levels(self, img1: np.ndarray, img2: np.ndarray) -> list[np.ndarray]:
        """The official result for every ``de_level`` 1..``levels`` from one pass (the levels are nested).

        Entry k − 1 is exactly what ``vector_fusion_method`` gives with ``de_level = k``
        (same additions in the same order, NaN where it gives NaN).
        """
        from concurrent.futures import ThreadPoolExecutor

        shape = img1.shape
        nh = shape[0] - _HALF
        count = self._base.layout(*shape)["count"]
        nan_pixels = np.zeros(shape, bool)
        cur1, cur2 = img1, img2
        cumulative = np.zeros(shape)
        level_sums, results = [], []
        bands = [(r, min(nh, r + self.band)) for r in range(0, nh, self.band)]
        with _TorchThreads(), ThreadPoolExecutor(self.threads()) as pool, \
                np.errstate(invalid="ignore", divide="ignore"):
            for _ in range(self.levels):
                nz1, nz2 = _window_counts(cur1 != 0) > 0, _window_counts(cur2 != 0) > 0
                nan_patches = ~nz1 & ~nz2
                if nan_patches.any():
                    nan_pixels |= _covered(nan_patches)
                needed = _window_counts(nan_pixels) < UNIT * UNIT
                active = (nz1 & needed, nz2 & needed)
                both = active[0] & active[1]
                imgs = (cur1.astype(self.dtype, copy=False), cur2.astype(self.dtype, copy=False))
                level = np.zeros(shape)
                jobs = [pool.submit(self._band, r0, r1, imgs, active, both) for r0, r1 in bands]
                for (r0, _), job in zip(bands, jobs):
                    block = job.result()
                    level[r0 : r0 + block.shape[0]] += block
                cumulative = cumulative + level
                level_sums.append(cumulative / count)
                cur1, cur2 = self._base(cur1), self._base(cur2)
                detail = level_sums[0]
                for extra in level_sums[1:]:
                    detail = detail + extra
                fused = (0.5 * cur1 + 0.5 * cur2) + detail
                fused[nan_pixels] = np.nan
                results.append(fused)
        return results


_CITATION = ("Song X., Shen T., Li H., Wu X.-J., D2-LRR: a dual-decomposed MDLatLRR approach for medical image "
             "fusion, arXiv 2206.15179 (MVIPIT 2023). Code: github.com/songxujay/MDLatLRRv2")


#: The registered ``mdl``'s decomposition level (``docs/fidelity.md``, "MDL: which level").
DEFAULT_LEVEL = 2


def _register_levels(cls):
    """``mdl.l1`` .. ``mdl.l4``: the four ``de_level`` settings of the official loop, each bit-exact."""
    for level in (1, 2, 3, 4):
        register_method(f"mdl.l{level}", display_name=f"MDL (level {level})", family="low-rank", colour="own",
                        weights=("mdl",), version="1", citation=_CITATION,
                        params={"levels": level, "precision": "float64"},
                        description=f"MDLatLRRv2 with de_level = {level} (the official loop writes levels 1-4)")(cls)
    return cls


@_register_levels
@register_method("mdl.fast", display_name="MDL (float32)", family="low-rank", colour="own", weights=("mdl",),
                 version="3", citation=_CITATION, params={"levels": DEFAULT_LEVEL, "precision": "float32"},
                 description="MDLatLRRv2 at the default level with the patches and detail projections in "
                             "float32 (≈ 1.4–1.5× faster, not bit-exact; agreement in docs/fidelity.md)")
@register_method("mdl", display_name="MDL", family="low-rank", colour="own", weights=("mdl",), version="2",
                 citation=_CITATION, params={"levels": DEFAULT_LEVEL, "precision": "float64"},
                 description="MDLatLRRv2 at de_level 2 (the level that matches the published comparisons; "
                             "docs/fidelity.md); mdl.l1..mdl.l4 give every level")
class MDL:
    """MDLatLRRv2 (official matrices and arithmetic); floats in [0, 1], grey or RGB on either side.

    ``precision="float64"`` (``mdl``, ``mdl.l<k>``) is the bit-exact port; ``"float32"``
    (``mdl.fast``) computes the patches and detail vectors L·x in single precision (their
    nuclear norms in float64, exactly widened; with ``solver="lapack"`` in float32 too).
    ``levels`` is the official ``de_level``.

    Which image goes where (the official code fuses a grey image '-1' with the "YUV"
    luma of an RGB image '-2' and keeps '-2''s U, V): a colour ``b`` (PET/SPECT) is '-2'
    with the grey MRI ``a`` as '-1' (``MR_PET``/``MR_SPECT``); a colour ``a`` (a colour
    visible image) is '-2' with the grey ``b`` (infrared) as '-1'; for two grey images
    the official ``CT_MR`` order is used ('-1' = ``b`` (CT), '-2' = ``a`` replicated to
    RGB) and the output is grey.  If both are colour, ``a`` is reduced to its "YUV" luma
    (the official code uses MATLAB's ``rgb2gray``, rounded to uint8; the two agree on
    grey-valued RGB such as the official test images' '-1' files: 0 pixels differ on
    MR_SPECT 11, MR_PET 12 and CT_MR 13 against passing '-1' as grey, measured 2026-12-05).
    Images smaller than a 16×16 patch are padded symmetrically to 16 and cropped back.
    """

    def __init__(self, levels: int = DEFAULT_LEVEL, precision: str = "float64", solver: str = "batched") -> None:
        self.model = MDLatLRR(*load_matrices(), levels=levels, precision=precision, solver=solver)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a8, b8 = float_to_uint8_image(a), float_to_uint8_image(b)
        h, w = a8.shape[:2]
        ph, pw = max(0, UNIT - h), max(0, UNIT - w)
        if ph or pw:  # fewer pixels than one patch: no detail patch exists; pad (MATLAB 'symmetric') and crop back
            # numpy's 'symmetric' repeats the reflection where the pad is longer than the image, as MATLAB's does
            pad = lambda x: np.pad(x, ((0, ph), (0, pw)) + ((0, 0),) * (x.ndim - 2), mode="symmetric")  # noqa: E731
            return self(pad(a8), pad(b8))[:h, :w]
        mri = a8.astype(np.float64) / 255
        func = b8.astype(np.float64) / 255
        if func.ndim == 3:
            grey, colour = (rgb_to_yuv(mri)[..., 0] if mri.ndim == 3 else mri), func
        elif mri.ndim == 3:
            grey, colour = func, mri
        else:  # official CT_MR order: image 1 = CT (grey), image 2 = MRI through YUV
            grey, colour = func, np.repeat(mri[..., None], 3, axis=2)
        yuv = rgb_to_yuv(colour)
        fused_y = self.model.fuse(grey, yuv[..., 0])
        rgb = to_uint8(yuv_to_rgb(np.stack([fused_y, yuv[..., 1], yuv[..., 2]], axis=-1)) * 255)
        if func.ndim == 3 or mri.ndim == 3:
            return rgb
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise AssertionError("grey MDL output has unequal channels")
        return rgb[..., 0]
