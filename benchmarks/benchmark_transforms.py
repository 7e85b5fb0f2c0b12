"""asv suite: decomposition + reconstruction time of the multiscale transforms (issue 5).

Targets on the 2-core dev machine, 256×256 float64: NSST and NSCT ≤ 0.5 s each (decompose +
reconstruct), pyramids and DWT ≤ 20 ms.  Filter banks are built (and cached) in ``setup``,
as they are once per process in real use.

Run::

    asv run --python=same --quick --set-commit-hash $(git rev-parse HEAD) --bench benchmark_transforms
"""
from __future__ import annotations

import numpy as np


def _image(n: int = 256) -> np.ndarray:
    return np.random.default_rng(0).random((n, n))


class NSST:
    params = [["cnp", "liu"]]
    param_names = ["setting"]
    _settings = {"cnp": ((2, 2, 3, 3), (4, 4, 8, 8)), "liu": ((3, 3, 4, 4), (8, 8, 16, 16))}

    def setup(self, setting):
        from fusionbench.methods._transforms import nsst_decompose, nsst_reconstruct

        self.dec, self.rec = nsst_decompose, nsst_reconstruct
        self.x = _image()
        self.dcomp, self.dsize = self._settings[setting]
        self.coeffs = self.dec(self.x, self.dcomp, self.dsize)  # warms the filter caches

    def time_decompose_reconstruct(self, setting):
        low, bands = self.dec(self.x, self.dcomp, self.dsize)
        self.rec(low, bands, self.dsize)

    def time_decompose(self, setting):
        self.dec(self.x, self.dcomp, self.dsize)

    def peakmem_decompose_reconstruct(self, setting):
        low, bands = self.dec(self.x, self.dcomp, self.dsize)
        self.rec(low, bands, self.dsize)


class NSCT:
    params = [["dtnp", "liu", "toolbox_default"]]
    param_names = ["setting"]
    _settings = {"dtnp": ((1, 2, 3, 3), "9-7", "pkva"), "liu": ((2, 3, 3, 4), "pyrexc", "vk"),
                 "toolbox_default": ((2, 3, 3, 4), "maxflat", "dmaxflat7")}

    def setup(self, setting):
        from fusionbench.methods._transforms import nsct_decompose, nsct_reconstruct

        self.dec, self.rec = nsct_decompose, nsct_reconstruct
        self.x = _image()
        self.levels, self.pf, self.df = self._settings[setting]
        self.dec(self.x, self.levels, self.pf, self.df)  # warms the filter caches

    def time_decompose_reconstruct(self, setting):
        low, bands = self.dec(self.x, self.levels, self.pf, self.df)
        self.rec(low, bands, self.pf, self.df)

    def time_decompose(self, setting):
        self.dec(self.x, self.levels, self.pf, self.df)

    def peakmem_decompose_reconstruct(self, setting):
        low, bands = self.dec(self.x, self.levels, self.pf, self.df)
        self.rec(low, bands, self.pf, self.df)


class Pyramids:
    params = [["laplacian_burt", "laplacian_mertens", "contrast"]]
    param_names = ["kind"]

    def setup(self, kind):
        from fusionbench.methods._transforms import pyramids

        self.x = _image()
        if kind == "contrast":
            self.f = lambda: pyramids.reconstruct_contrast(pyramids.contrast_pyramid(self.x, 4))
        else:
            v = kind.split("_")[1]
            levels = 4 if v == "burt" else 7  # Mertens' nlev = floor(log2 256) = 8 -> 7 detail levels
            self.f = lambda: pyramids.reconstruct_laplacian(pyramids.laplacian_pyramid(self.x, levels, v), v)

    def time_decompose_reconstruct(self, kind):
        self.f()


class DWT:
    params = [[("db1", "periodization", 4), ("db2", "symmetric", 3)]]
    param_names = ["setting"]

    def setup(self, setting):
        from fusionbench.methods._transforms import dwt_decompose, dwt_reconstruct

        self.x = _image()
        w, mode, level = setting
        self.f = lambda: dwt_reconstruct(dwt_decompose(self.x, w, level, mode), w, mode)

    def time_decompose_reconstruct(self, setting):
        self.f()


def _multiscale_methods() -> list[str]:
    """Every registered method of the ``multiscale`` family (a new preset is timed without editing this file)."""
    from fusionbench.method_registry import METHODS

    return [e.name for e in METHODS.entries() if e.info.family == "multiscale"]


class ClassicalFusion:
    """Whole-method time per 256² pair (two decompositions, the rule, one reconstruction)."""

    params = [_multiscale_methods()]
    param_names = ["method"]

    def setup(self, method):
        from fusionbench.method_registry import create_method

        rng = np.random.default_rng(1)
        self.a = rng.random((256, 256)).astype(np.float32)
        self.b = rng.random((256, 256)).astype(np.float32)
        self.m = create_method(method)
        self.m(self.a, self.b)

    def time_fuse(self, method):
        self.m(self.a, self.b)


class TransformGrowth:
    """Per-pixel cost of the pyramid / DWT round trips at 1024² over 256² (issue 23 (d); 1.0 = linear).

    The transforms alone, without the colour protocol and the fusion rule that
    ``benchmark_methods.MethodGrowthSuite`` includes: one-thread CPU time (``time.process_time``,
    best of 7 at 256², 3 at 1024²) of decompose + reconstruct of a random image.  ``nsp_pyrexc`` /
    ``nsp_maxflat``: the non-subsampled (à trous) pyramid of ``nsct.liu`` / NSST, 4 levels (issue 23 (b),
    session 11).
    """

    params = [["laplacian_burt", "laplacian_mertens", "contrast", "dwt_db1_per", "dwt_db2_sym", "nsp_pyrexc",
               "nsp_maxflat"]]
    param_names = ["transform"]
    timeout = 600

    def setup(self, transform):
        from fusionbench.methods._transforms import dwt_decompose, dwt_reconstruct, pyramids
        from fusionbench.methods._transforms._atrous import nsp_decompose, nsp_reconstruct

        def make(x):
            if transform.startswith("nsp_"):
                name = transform.split("_")[1]
                return lambda: nsp_reconstruct(*nsp_decompose(x, name, 4), name)
            if transform == "contrast":
                return lambda: pyramids.reconstruct_contrast(pyramids.contrast_pyramid(x, 4))
            if transform.startswith("laplacian"):
                v = transform.split("_")[1]
                return lambda: pyramids.reconstruct_laplacian(pyramids.laplacian_pyramid(x, 4, v), v)
            w, mode, level = ("db1", "periodization", 4) if transform == "dwt_db1_per" else ("db2", "symmetric", 3)
            return lambda: dwt_reconstruct(dwt_decompose(x, w, level, mode), w, mode)

        self.small, self.large = make(_image(256)), make(_image(1024))

    @staticmethod
    def _best(f, repeat: int) -> float:
        import time

        f()
        times = []
        for _ in range(repeat):
            start = time.process_time()
            f()
            times.append(time.process_time() - start)
        return min(times)

    def track_growth_1024(self, transform):
        return (self._best(self.large, 3) / self._best(self.small, 7)) / 16.0

    track_growth_1024.unit = "time per pixel / 256²"
