"""The compiled FMI kernel against a literal O(l²) computation of the reference algorithm.

The oracle below follows the fast-FMI code step by step for every window pair:
min-max normalised window pdfs, their cdfs, the full l×l Fréchet bound
(min(F_i, X_j) when the window correlation is ≥ 0, max(F_i + X_j − 1, 0)
otherwise), its pmf by 2-D differences, φ from the bound's covariance, the joint
pmf φ·J + (1−φ)·f⊗x over all l² cells and FMI = 2·MI / (H_X + H_F).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from fusionbench.metrics.functional import feature
from fusionbench.metrics.functional._fmi_lanes import fmi_mean
from fusionbench.metrics._input import prepare


def _windows(x: np.ndarray, w: int) -> np.ndarray:
    return sliding_window_view(x, (w, w)).transpose(0, 1, 3, 2).reshape(-1, w * w)


def _pdf(win: np.ndarray) -> np.ndarray:
    lo, hi = win.min(axis=1, keepdims=True), win.max(axis=1, keepdims=True)
    s = np.where(hi == lo, 1.0, (win - lo) / np.where(hi == lo, 1.0, hi - lo))
    return s / s.sum(axis=1, keepdims=True)


def _entropy(p: np.ndarray, axes) -> np.ndarray:
    a = np.abs(p)
    return -(p * np.log2(np.where(a == 0, 1.0, a))).sum(axis=axes)


def literal_fmi(ff: np.ndarray, fa: np.ndarray, fb: np.ndarray, w: int = 3) -> float:
    fw = _windows(ff, w)
    total = 0.0
    for src in (fa, fb):
        xw = _windows(src, w)
        l = w * w
        xp, fp = _pdf(xw), _pdf(fw)
        xc, fc = np.cumsum(xp, axis=1), np.cumsum(fp, axis=1)
        xt = xp - xp.mean(axis=1, keepdims=True)
        ft = fp - fp.mean(axis=1, keepdims=True)
        num = (xt * ft).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(num == 0, 0.0, num / np.sqrt((xt * xt).sum(axis=1) * (ft * ft).sum(axis=1)))
        i = np.arange(1, l + 1, dtype=float)
        xsd = np.sqrt((i * i * xp).sum(axis=1) - (i * xp).sum(axis=1) ** 2)
        fsd = np.sqrt((i * i * fp).sum(axis=1) - (i * fp).sum(axis=1) ** 2)
        F, X = fc[:, :, None], xc[:, None, :]
        bound = np.where((c >= 0)[:, None, None], np.minimum(F, X), np.maximum(F + X - 1, 0.0))
        padded = np.pad(bound, ((0, 0), (1, 0), (1, 0)))
        pmf = padded[:, 1:, 1:] - padded[:, :-1, 1:] - padded[:, 1:, :-1] + padded[:, :-1, :-1]
        cov = bound.sum(axis=(1, 2)) - fc.sum(axis=1) * xc.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = c / (cov / (fsd * xsd))
        deg = (xsd == 0) | (fsd == 0) | ((c >= 0) & (c == 0))
        phi = np.where(deg, 0.0, phi)[:, None, None]
        joint = phi * pmf + (1 - phi) * fp[:, :, None] * xp[:, None, :]
        hx, hf = _entropy(xp, 1), _entropy(fp, 1)
        mi = hx + hf - _entropy(joint, (1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(mi == 0, 0.0, 2 * mi / (hx + hf))
        v = np.where(np.all(xw == fw, axis=1), 1.0, v)
        total += v.sum()
    return total / (2 * len(fw))


def _triples():
    rng = np.random.default_rng(7)
    yield tuple(rng.integers(0, 256, (14, 17), dtype=np.uint8) for _ in range(3))
    few = rng.integers(0, 3, (16, 16), dtype=np.uint8) * 60  # ties, constant windows
    yield few, few.copy(), rng.integers(0, 3, (16, 16), dtype=np.uint8) * 60
    ramp = np.add.outer(np.arange(16), np.arange(16)).astype(np.uint8) * 7
    yield ramp, 255 - ramp, (ramp // 2).astype(np.uint8)  # anti-correlated windows


@pytest.mark.parametrize("feat", ["none", "dct", "wavelet", "edge"])
@pytest.mark.parametrize("k", range(3))
def test_kernel_matches_literal_computation(feat, k):
    f, a, b = list(_triples())[k]
    ff, fa, fb = (feature._feature(x, feat) for x in prepare(f, a, b))
    ours = fmi_mean(ff, fa, fb, 3)
    ref = literal_fmi(ff, fa, fb, 3)
    # 1e-9, not 1e-14: the DCT of the ramp has nearly flat windows whose min-max
    # normalisation turns round-off (summation order) into visible differences
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-14)


def test_kernel_handles_other_window_sizes():
    rng = np.random.default_rng(3)
    ff, fa, fb = (rng.random((12, 13)) for _ in range(3))
    assert fmi_mean(ff, fa, fb, 4) == pytest.approx(literal_fmi(ff, fa, fb, 4), rel=1e-12)


def test_kernel_is_safe_from_several_threads():
    rng = np.random.default_rng(5)
    ff, fa, fb = (rng.random((40, 40)) for _ in range(3))
    expected = fmi_mean(ff, fa, fb, 3)
    results: list[float] = []
    threads = [threading.Thread(target=lambda: results.append(fmi_mean(ff, fa, fb, 3))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_kernel_result_does_not_depend_on_the_thread_count(monkeypatch):
    from fusionbench.metrics.functional import _fmi_lanes

    rng = np.random.default_rng(9)
    ff, fa, fb = (rng.random((30, 31)) for _ in range(3))
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "1")
    assert _fmi_lanes.span_threads() == 1
    one = fmi_mean(ff, fa, fb, 3)
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "3")
    assert _fmi_lanes.span_threads() == min(3, _fmi_lanes.numba.config.NUMBA_NUM_THREADS)
    assert one == fmi_mean(ff, fa, fb, 3) == fmi_mean(ff, fa, fb, 3)


def test_fmi_does_not_start_numba_s_thread_pool():
    """The row spans are Python threads: numba's own threading layer (OpenMP here; unsafe in a child forked
    after it started) stays unstarted.  Before session 28 ``numba.get_num_threads()`` started it."""
    import subprocess
    import sys

    script = ("import numpy as np, numba.np.ufunc.parallel as layer\n"
              "from fusionbench.metrics.functional._fmi_lanes import fmi_mean\n"
              "rng = np.random.default_rng(1)\n"
              "fmi_mean(*(rng.random((24, 25)) for _ in range(3)), 3)\n"
              "print(layer._is_initialized)\n")
    env = {**__import__("os").environ, "FUSIONBENCH_WORKER_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0 and done.stdout.split() == ["False"], done.stderr[-2000:]


@pytest.mark.parametrize("rows", [7, 30, 1])
def test_row_spans_give_the_serial_bits_for_any_thread_count(rows):
    """The rows shared out in spans between 1, 2, 3 or 7 threads (more threads and spans than rows included):
    every row written once, by the serial kernel's code, so the same bits."""
    from fusionbench.metrics.functional import _fmi_lanes

    rng = np.random.default_rng(rows)
    ff, fa, fb = (_fmi_lanes._read_only(rng.random((rows + 2, 17))) for _ in range(3))
    serial = _fmi_lanes.row_sums_serial(ff, fa, fb, 3)
    assert serial.shape == (rows,) and np.all(serial != 0)
    for threads in (1, 2, 3, 7):
        np.testing.assert_array_equal(_fmi_lanes.row_sums_parallel(ff, fa, fb, 3, threads=threads), serial)


def test_a_call_while_the_interpreter_shuts_down_computes_on_its_thread():
    """A thread still running when the main thread has ended (Python's exit has shut the pools down) gets the
    value, computed on its own thread; before, ``cannot schedule new futures after shutdown`` (the session 27
    review)."""
    import subprocess
    import sys

    script = ("import threading, time, numpy as np, numba\n"
              "from fusionbench.metrics.functional import _fmi_lanes\n"
              "rng = np.random.default_rng(2)\n"
              "ff, fa, fb = (_fmi_lanes._read_only(rng.random((20, 21))) for _ in range(3))\n"
              "serial = _fmi_lanes.row_sums_serial(ff, fa, fb, 3)\n"
              "def late():\n"
              "    time.sleep(1.0)\n"
              "    got = _fmi_lanes.row_sums_parallel(ff, fa, fb, 3, threads=2)\n"
              "    print('same' if np.array_equal(got, serial) else 'differs', flush=True)\n"
              "threading.Thread(target=late).start()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["same"], done.stderr[-2000:]


@pytest.mark.parametrize("shape", [(256, 256), (102, 102), (103, 150), (357, 260), (64, 64), (5, 9)])
def test_compiled_dwt2_is_pywt_bit_for_bit(shape):
    """FMI_w's dwt2 (non-zero taps only, PyWavelets' summation order) equals ``pywt.dwt2`` exactly."""
    import pywt

    from fusionbench.metrics.functional._dwt import dwt2_symmetric
    from fusionbench.metrics.functional.feature import _dmey102

    x = np.random.default_rng(sum(shape)).normal(0, 60, shape)
    ref = pywt.dwt2(x, _dmey102(), mode="symmetric")
    got = dwt2_symmetric(x, _dmey102())
    for r, g in zip((ref[0], *ref[1]), (got[0], *got[1])):
        np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("shape", [(256, 256), (103, 150), (150, 103), (64, 64)])
def test_tiled_dwt2_is_the_block_of_pywt_subbands(shape):
    """FMI_w's feature image, written straight into the [cA cH; cV cD] tiling, equals ``np.block`` of pywt's."""
    import pywt

    from fusionbench.metrics.functional._dwt import dwt2_tiled
    from fusionbench.metrics.functional.feature import _dmey102

    x = np.random.default_rng(sum(shape)).normal(0, 60, shape)
    cA, (cH, cV, cD) = pywt.dwt2(x, _dmey102(), mode="symmetric")
    np.testing.assert_array_equal(dwt2_tiled(x, _dmey102()), np.block([[cA, cH], [cV, cD]]))


def test_branch_free_log2_is_within_two_ulp_of_the_c_library():
    """The FMI kernel's inline log2 (``_log2``) over the positive normal range, near 1 and at sqrt(2)."""
    import math

    from numba import njit

    from fusionbench.metrics.functional._log2 import TINY, log2

    @njit
    def apply(x, out):
        for i in range(x.size):
            out[i] = log2(x[i])

    rng = np.random.default_rng(0)
    x = np.concatenate([
        2.0 ** rng.uniform(-1022, 1023, 200_000),  # every binade
        rng.random(100_000) + TINY,  # probabilities
        1 + rng.uniform(-1e-6, 1e-6, 20_000),  # near 1 (small results)
        math.sqrt(2) * (1 + rng.uniform(-1e-12, 1e-12, 1000)),  # the reduction's switch point
        2.0 ** np.arange(-1022, 1024),  # powers of two: exact
        [TINY, np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0), 255.0, 1 / 9],
    ])
    got = np.empty_like(x)
    apply(x, got)
    ref = np.array([math.log2(v) for v in x])
    ulp = np.abs(got - ref) / np.spacing(np.maximum(np.abs(ref), TINY))
    assert ulp.max() <= 2.0, (ulp.max(), x[np.argmax(ulp)])
    np.testing.assert_array_equal(got[-2051:-5], np.arange(-1022, 1024, dtype=np.float64))


def _lane_cases():
    rng = np.random.default_rng(11)
    yield "random", tuple(rng.random((21, 300)) for _ in range(3))  # several lane blocks and a partial one
    few = rng.integers(0, 3, (24, 150)).astype(float) * 60  # ties, constant and identical windows
    yield "ties", (few, few.copy(), rng.integers(0, 3, (24, 150)).astype(float) * 60)
    ramp = np.add.outer(np.arange(30), np.arange(140)).astype(float) * 7
    yield "anti-correlated", (ramp, 255 - ramp, ramp // 2)
    half = rng.random((20, 260))
    yield "half identical", (half, np.where(np.arange(260) < 140, half, rng.random((20, 260))), half[::-1].copy())
    from fusionbench.metrics.synthetic import triple

    f, a, b = prepare(*triple(96, 0, "avg"))
    for feat in ("none", "dct", "wavelet", "edge"):
        yield feat, tuple(feature._feature(x, feat) for x in (f, a, b))


@pytest.mark.parametrize("w", [3, 2, 4])
def test_lane_kernel_is_the_one_window_kernel_bit_for_bit(w):
    """``_fmi_lanes`` (many windows at a time, branch-free) equals ``_fmi_row_sums`` row by row, exactly."""
    from fusionbench.metrics.functional import _fmi_kernel, _fmi_lanes

    for name, arrays in _lane_cases():
        # read-only, as ``fmi_mean`` passes them: the kernels compiled (or cached) for that one array type
        ff, fa, fb = (_fmi_lanes._read_only(x) for x in arrays)
        one = _fmi_kernel._fmi_row_sums(ff, fa, fb, w)
        np.testing.assert_array_equal(_fmi_lanes.row_sums_serial(ff, fa, fb, w), one, err_msg=name)
        np.testing.assert_array_equal(_fmi_lanes.row_sums_parallel(ff, fa, fb, w), one, err_msg=name)


def test_fmi_mean_passes_one_array_type_to_the_kernels():
    """Prepared (read-only) images and new (writable) feature maps reach the kernels as one numba type, so
    each kernel compiles once per process (each extra type cost tens of seconds of a cold compile)."""
    import numba

    from fusionbench.metrics.functional import _fmi_lanes

    rng = np.random.default_rng(3)
    writable = rng.random((12, 20))
    frozen = rng.random((12, 20))
    frozen.setflags(write=False)
    views = [_fmi_lanes._read_only(x) for x in (writable, frozen, writable.astype(np.float32), writable.T)]
    assert len({numba.typeof(v) for v in views}) == 1
    assert writable.flags.writeable  # a view: the caller's array keeps its flags
    np.testing.assert_array_equal(views[3], writable.T)
    assert fmi_mean(writable, frozen, writable, 3) == fmi_mean(*views[:2], views[0], 3)
