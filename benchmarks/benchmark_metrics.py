"""asv suite for the metrics (issue 4): time and peak memory per preset and per group.

Run::

    asv run --python=same --quick --set-commit-hash $(git rev-parse HEAD) --bench benchmark_metrics

(without ``--set-commit-hash`` an ``existing``-environment asv run saves nothing: asv#920)

Inputs are deterministic synthetic triples (``fusionbench.metrics.synthetic``)
at 256², 512² and 1024² (cost growth with the number of pixels; issue 23).
``Group`` times ``evaluate`` as a user calls it (its presets spread over every
core); ``GroupOneThread`` takes the CPU time of one thread (``FUSIONBENCH_WORKER_THREADS=1``
and one numba thread, as in a runner worker on a single core), which stays
meaningful on a loaded machine; it includes the runner's scoring set (``RUNNER_SCORING``).
``PresetOneThread`` (each preset alone) and ``AllOneThread`` (the per-preset times inside
``evaluate``, their sum and the two-thread makespan they imply) are issue 23's per-preset
figures; run them with the AVX2 stand-in environment of docs/cpu_independence.md for its
AVX2 column.  ``CDDFuseTwelve`` times the twelve metrics that CDDFuse's
``utils/Evaluator.py`` computes, in our CDDFuse-compatible presets, for the
side-by-side comparison documented in docs/metrics.md (the evaluator itself is
third-party code and is not part of this suite).
"""
from __future__ import annotations

import time

SIZES = [256, 512, 1024]
#: the presets the whole-test-split run scores every task with (reports/README.md, docs/runner.md)
RUNNER_SCORING = "paper,VIFp_sum,Qabf,SSIM"
CDDFUSE_TWELVE = ["EN.cddfuse", "SD.cddfuse", "SF.cddfuse", "AG.cddfuse", "MI.cddfuse", "CC.cddfuse",
                  "SCD.cddfuse", "VIFp_sum.cddfuse", "Qabf.cddfuse", "PSNR.cddfuse", "MSE.cddfuse",
                  "SSIM.cddfuse"]


def _all_presets() -> list[str]:
    from fusionbench.metric_registry import resolve_metrics

    import fusionbench.metrics  # noqa: F401  (registers the presets)

    return resolve_metrics("all")


def _triple(n: int):
    from fusionbench.metrics.synthetic import triple

    return triple(n, 0, "avg")


def _triple_for(preset: str, n: int):
    """The grey triple, or for a preset that reads colour (``ChromaErr``) the same with a pseudo-colour b and a
    colour fused image (on the grey triple it is undefined and returns at once, which times nothing)."""
    import numpy as np

    from fusionbench.metric_registry import reads_colour

    f, a, b = _triple(n)
    if not reads_colour(preset):
        return f, a, b
    colour_b = np.stack([b, b // 2, 255 - b], axis=-1).astype(np.uint8)
    colour_f = np.stack([f, (f // 2 + a // 4), 255 - f], axis=-1).astype(np.uint8)
    return colour_f, a, colour_b


class Preset:
    """One preset on one triple."""

    params = (_all_presets(), SIZES)
    param_names = ["preset", "size"]
    timeout = 600

    def setup(self, preset: str, size: int) -> None:
        import fusionbench.metrics as M

        self.M = M
        self.f, self.a, self.b = _triple_for(preset, size)
        M.compute(preset, self.f, self.a, self.b)  # warm caches (filter banks)

    def time_compute(self, preset: str, size: int) -> None:
        self.M.compute(preset, self.f, self.a, self.b)

    def peakmem_compute(self, preset: str, size: int) -> None:
        self.M.compute(preset, self.f, self.a, self.b)


class Group:
    """A whole group (``paper``, ``standard``, ``all``) on one triple, as the runner calls it."""

    params = (["paper", "standard", "all"], SIZES)
    param_names = ["group", "size"]
    timeout = 1200

    def setup(self, group: str, size: int) -> None:
        import fusionbench.metrics as M

        self.M = M
        self.f, self.a, self.b = _triple(size)
        M.evaluate(self.f, self.a, self.b, group)

    def time_evaluate(self, group: str, size: int) -> None:
        self.M.evaluate(self.f, self.a, self.b, group)

    def peakmem_evaluate(self, group: str, size: int) -> None:
        self.M.evaluate(self.f, self.a, self.b, group)


class _OneThread:
    """Runs each benchmark as a runner worker does: one thread (``FUSIONBENCH_WORKER_THREADS=1``,
    one numba thread), CPU time (``time.process_time``), meaningful on a loaded machine."""

    timer = time.process_time

    def _cap(self) -> None:
        import os

        import numba

        self._env = os.environ.get("FUSIONBENCH_WORKER_THREADS")
        self._numba = numba.get_num_threads()
        os.environ["FUSIONBENCH_WORKER_THREADS"] = "1"
        numba.set_num_threads(1)

    def _restore(self) -> None:
        import os

        import numba

        if self._env is None:
            os.environ.pop("FUSIONBENCH_WORKER_THREADS", None)
        else:
            os.environ["FUSIONBENCH_WORKER_THREADS"] = self._env
        numba.set_num_threads(self._numba)


class GroupOneThread(_OneThread):
    """``evaluate`` on one thread (the runner's per-worker cap of 1), CPU time (``time.process_time``).

    ``RUNNER_SCORING`` is what a runner worker pays per task in the whole-test-split run.
    """

    params = (["paper", RUNNER_SCORING, "all"], SIZES)
    param_names = ["group", "size"]
    timeout = 1200

    def setup(self, group: str, size: int) -> None:
        import fusionbench.metrics as M

        self._cap()
        self.M = M
        self.f, self.a, self.b = _triple(size)
        M.evaluate(self.f, self.a, self.b, group)

    def teardown(self, group: str, size: int) -> None:
        self._restore()

    def time_evaluate(self, group: str, size: int) -> None:
        self.M.evaluate(self.f, self.a, self.b, group)


class PresetOneThread(_OneThread):
    """Each preset of ``all`` alone on the 256² triple, one thread, CPU time (issue 23).

    Standalone: presets that share intermediates inside ``evaluate`` (VIFp_sum and VIFF, the
    SSIM family) pay for them here; ``AllOneThread`` gives the per-preset times inside
    ``evaluate``.  For the AVX2 column of docs/metrics.md run it with the AVX2 stand-in
    environment of docs/cpu_independence.md (asv passes the environment on).
    """

    params = (_all_presets(),)
    param_names = ["preset"]

    def setup(self, preset: str) -> None:
        import fusionbench.metrics as M

        self._cap()
        self.M = M
        self.f, self.a, self.b = _triple_for(preset, 256)
        M.compute(preset, self.f, self.a, self.b)

    def teardown(self, preset: str) -> None:
        self._restore()

    def time_compute(self, preset: str) -> None:
        self.M.compute(preset, self.f, self.a, self.b)


def _makespan(times: list[float], workers: int) -> float:
    """Longest-first (LPT) schedule of ``times`` on ``workers`` threads, as ``evaluate``'s pool orders them."""
    loads = [0.0] * workers
    for t in sorted(times, reverse=True):
        loads[loads.index(min(loads))] += t
    return max(loads)


class AllOneThread(_OneThread):
    """The ``all`` group at 256²: each preset's one-thread CPU time inside ``evaluate``'s shared cache
    (best of 7, in ``all`` order), their sum, and the two-thread longest-first makespan of those times:
    the wall time of ``evaluate(..., "all")`` on two idle cores if its pool never waits (issue 23's
    target: ≤ 0.15 s on two AVX2 cores).  Tracked values, in seconds; under load they stay near the
    idle figures (CPU time), unlike ``Group.time_evaluate``.
    """

    unit = "seconds"
    timeout = 600

    def setup_cache(self) -> dict:
        import fusionbench.metrics as M
        from fusionbench.metrics._cache import shared_cache

        self._cap()
        try:
            f, a, b = _triple(256)
            names = _all_presets()
            M.evaluate(f, a, b, names)
            best = dict.fromkeys(names, float("inf"))
            for _ in range(7):
                with shared_cache():
                    for name in names:
                        t = time.process_time()
                        M.compute(name, f, a, b)
                        best[name] = min(best[name], time.process_time() - t)
        finally:
            self._restore()
        return best

    def track_sum(self, best: dict) -> float:
        return sum(best.values())

    def track_two_thread_makespan(self, best: dict) -> float:
        return _makespan(list(best.values()), 2)


class GrowthPerPreset(_OneThread):
    """Which presets grow: each preset of ``all`` at 256² and 1024² in one ``evaluate``-like pass
    (shared cache, ``all`` order, NumPy's huge-page advice off as inside ``evaluate``), one thread,
    wall time, best of 3 / 2; tracked: time per pixel at 1024² over 256² (1.0 = linear; issue 23).
    The table in docs/metrics.md ("cost linear in the pixels") comes from this pass."""

    unit = "ratio"
    timeout = 900
    params = (_all_presets(),)
    param_names = ["preset"]

    def setup_cache(self) -> dict:
        import fusionbench.metrics as M
        from fusionbench.metrics._cache import shared_cache
        from fusionbench.pages import small_pages

        self._cap()
        try:
            names = _all_presets()
            best = {}
            for n, runs in ((256, 3), (1024, 2)):
                f, a, b = _triple(n)
                M.evaluate(f, a, b, names)
                best[n] = dict.fromkeys(names, float("inf"))
                for _ in range(runs):
                    with small_pages(), shared_cache():
                        for name in names:
                            t = time.perf_counter()
                            M.compute(name, f, a, b)
                            best[n][name] = min(best[n][name], time.perf_counter() - t)
        finally:
            self._restore()
        return {name: best[1024][name] / best[256][name] / 16 for name in names}

    def track_per_pixel_cost_1024_vs_256(self, ratios: dict, preset: str) -> float:
        return ratios[preset]


class CDDFuseTwelve:
    """The twelve metrics of CDDFuse's Evaluator (EN SD SF AG MI CC SCD VIF Qabf PSNR MSE SSIM)."""

    params = SIZES
    param_names = ["size"]

    def setup(self, size: int) -> None:
        import fusionbench.metrics as M

        self.M = M
        self.f, self.a, self.b = _triple(size)
        M.evaluate(self.f, self.a, self.b, CDDFUSE_TWELVE)

    def time_evaluate(self, size: int) -> None:
        self.M.evaluate(self.f, self.a, self.b, CDDFUSE_TWELVE)


class Growth:
    """Cost growth with image size: time per pixel at 512² and 1024² over time per pixel at 256².

    1.0 means linear in the number of pixels (issue 23); a ratio, so it holds on any machine.
    """

    params = (["all"],)
    param_names = ["group"]
    timeout = 1800
    unit = "ratio"

    def setup(self, group: str) -> None:
        import time

        import fusionbench.metrics as M

        per_pixel = {}
        for n in SIZES:
            f, a, b = _triple(n)
            M.evaluate(f, a, b, group)  # warm caches
            best = float("inf")
            for _ in range(3 if n < 1024 else 2):
                t = time.perf_counter()
                M.evaluate(f, a, b, group)
                best = min(best, time.perf_counter() - t)
            per_pixel[n] = best / (n * n)
        self.ratio = {n: per_pixel[n] / per_pixel[SIZES[0]] for n in SIZES}

    def track_per_pixel_cost_512_vs_256(self, group: str) -> float:
        return self.ratio[512]

    def track_per_pixel_cost_1024_vs_256(self, group: str) -> float:
        return self.ratio[1024]
