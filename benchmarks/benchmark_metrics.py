"""asv suite for the metrics (issue 4): time and peak memory per preset and per group.

Run::

    asv run --python=same --quick --bench benchmark_metrics

Inputs are deterministic synthetic triples (``fusionbench.metrics.synthetic``)
at 256², 512² and 1024² (cost growth with the number of pixels; issue 23).
``Group`` times ``evaluate`` as a user calls it (its presets spread over every
core); ``GroupOneThread`` takes the CPU time of one thread (``FUSIONBENCH_WORKER_THREADS=1``
and one numba thread, as in a runner worker on a single core), which stays
meaningful on a loaded machine; it includes the runner's scoring set (``RUNNER_SCORING``).  ``CDDFuseTwelve`` times the twelve metrics that CDDFuse's
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


class Preset:
    """One preset on one triple."""

    params = (_all_presets(), SIZES)
    param_names = ["preset", "size"]
    timeout = 600

    def setup(self, preset: str, size: int) -> None:
        import fusionbench.metrics as M

        self.M = M
        self.f, self.a, self.b = _triple(size)
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


class GroupOneThread:
    """``evaluate`` on one thread (the runner's per-worker cap of 1), CPU time (``time.process_time``).

    ``RUNNER_SCORING`` is what a runner worker pays per task in the whole-test-split run.
    """

    params = (["paper", RUNNER_SCORING, "all"], SIZES)
    param_names = ["group", "size"]
    timeout = 1200
    timer = time.process_time

    def setup(self, group: str, size: int) -> None:
        import os

        import numba

        import fusionbench.metrics as M

        self._env = os.environ.get("FUSIONBENCH_WORKER_THREADS")
        self._numba = numba.get_num_threads()
        os.environ["FUSIONBENCH_WORKER_THREADS"] = "1"
        numba.set_num_threads(1)
        self.M = M
        self.f, self.a, self.b = _triple(size)
        M.evaluate(self.f, self.a, self.b, group)

    def teardown(self, group: str, size: int) -> None:
        import os

        import numba

        if self._env is None:
            os.environ.pop("FUSIONBENCH_WORKER_THREADS", None)
        else:
            os.environ["FUSIONBENCH_WORKER_THREADS"] = self._env
        numba.set_num_threads(self._numba)

    def time_evaluate(self, group: str, size: int) -> None:
        self.M.evaluate(self.f, self.a, self.b, group)



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
