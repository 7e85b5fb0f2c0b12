r"""asv suite for Table 5: time per pair, GFLOPs and parameters of every registered method.

Run (results are saved only with ``--set-commit-hash`` in an existing environment)::

    asv machine --yes
    asv run --python=same --set-commit-hash $(git rev-parse HEAD) --bench '^benchmark_methods\.MethodSuite\.'

(Table 5's suite only; ``--bench benchmark_methods`` runs all eight suites of this module, hours on 2 cores.)

Inputs: the paper's 20-pair set (10 MRI-PET + 10 MRI-SPECT Harvard test pairs, split v1)
at their native 256×256, from the first of :func:`data_roots` that holds all 20; where none does, 20 built-in
pairs instead.  ``track_paper20_pairs`` records which (20: the paper's pairs, 0: built-in ones), and the
report's caption says so.  ``time_fuse`` fuses all 20 pairs once (``number = repeat = 1``) — the report
divides by 20 — through exactly the runner's path (colour protocol, quantisation), after one
untimed fusion of the first pair in ``setup`` (first-call costs excluded, :func:`_warm`).
``track_gflops``: FLOPs = 2×MAC with ``torch.utils.flop_counter.FlopCounterMode``, both
sources at 256×256; ``track_params``: parameters of the inference modules;
``track_gflops_per_s``: those FLOPs over the best-of-3 time of that forward pass, and
``track_fraction_of_conv_peak`` the same over a plain 3×3 convolution's GFLOP/s
(``benchmark_peak``) measured in the same process.  Non-torch
methods report NaN (n/a).  ``$FUSIONBENCH_BENCH_METHODS`` (comma-separated fnmatch
patterns) restricts the methods.
"""
from __future__ import annotations

import math
import os

from ._data import data_roots
from ._settings import OneShot, _SwitchedSchedule

N_PAIRS = 20


def _methods() -> list[str]:
    from fusionbench.method_registry import create_method, list_methods

    patterns = os.environ.get("FUSIONBENCH_BENCH_METHODS", "*").split(",")
    names = list_methods([p.strip() for p in patterns if p.strip()])
    return [n for n in names if create_method(n).unavailable_reason() is None]


def bench_pairs() -> tuple[str, list]:
    """``(source, pairs)``: the paper's 20 Harvard pairs from the first of :func:`data_roots` that holds all 20,
    else 20 built-in pairs (the 21 of the three built-in tasks, the first 20).  Always :data:`N_PAIRS` pairs:
    ``time_fuse`` is divided by 20 (a folder missing any of the 20 is passed over; before, one with some files of
    both tasks missing had the rest timed and the sum divided by 20, and one without a task's folder failed)."""
    import fusionbench.data as data

    for root in data_roots():
        if not (root / "harvard").is_dir():
            continue
        try:
            pairs = data.paper20_pairs(root)
        except FileNotFoundError:  # a task's folder with none of its pairs
            continue
        if len(pairs) == N_PAIRS:
            return f"paper20 (Harvard, {root})", pairs
    pairs = [p for name in ("builtin-mri-pet", "builtin-mri-spect", "builtin-mri-ct")
             for p in data.create_dataset(name).pairs]
    return "built-in (no folder holds the paper's 20 Harvard pairs)", [pairs[i % len(pairs)] for i in range(N_PAIRS)]


class MethodSuite(OneShot):
    """One parametrised suite over every available registered method."""

    params = [_methods()]
    param_names = ["method"]
    timeout = 1800

    def setup(self, method: str) -> None:
        from fusionbench.io import load_image
        from fusionbench.method_registry import create_method

        self.method = create_method(method)
        source, pairs = bench_pairs()
        self.paper20 = source.startswith("paper20")
        self.images = [(load_image(p.a_path), load_image(p.b_path)) for p in pairs]
        if self.method.is_class:
            self.method.instance  # builds the network and loads its weights outside the timing
        _warm(self.method, *self.images[0])

    def time_fuse(self, method: str) -> None:
        from fusionbench.api import fuse_arrays

        for a, b in self.images:
            fuse_arrays(self.method, a, b)

    def track_paper20_pairs(self, method: str) -> float:
        """How many of the pairs ``time_fuse`` fused are the paper's 20 Harvard pairs: 20, or 0 where
        :func:`bench_pairs` found no folder holding them and built-in pairs were timed (the report says which)."""
        return float(len(self.images) if self.paper20 else 0)

    track_paper20_pairs.unit = "pairs"

    def track_gflops(self, method: str) -> float:
        from fusionbench import profile

        value = profile.gflops(self.method, size=(256, 256))
        return math.nan if value is None else float(value)

    track_gflops.unit = "GFLOPs"

    def track_params(self, method: str) -> float:
        from fusionbench import profile

        value = profile.params(self.method)
        return math.nan if value is None else float(value)

    track_params.unit = "parameters"

    def track_gflops_per_s(self, method: str) -> float:
        """Achieved GFLOP/s of the deep method's forward pass at 256² (best of 3; NaN for non-torch methods)."""
        from fusionbench import profile

        value = profile.gflops_per_s(self.method, size=(256, 256))
        return math.nan if value is None else float(value)

    track_gflops_per_s.unit = "GFLOP/s"

    def track_fraction_of_conv_peak(self, method: str) -> float:
        """track_gflops_per_s over a plain 3×3 convolution's GFLOP/s measured in the same process (benchmark_peak):
        the median of three interleaved rounds, each a yardstick reading then the forward pass
        (:func:`fusionbench.profile.fraction_of_conv_peak`)."""
        from fusionbench import profile

        value = profile.fraction_of_conv_peak(self.method, size=(256, 256))
        return math.nan if value is None else float(value)

    track_fraction_of_conv_peak.unit = "fraction"


# --------------------------------------------------------------------------- cost growth with pixels (issue 23)
SCALING_SIZES = (256, 512, 1024)


def scaled_pair(size: int) -> tuple:
    """One MRI-PET pair at size×size: a Harvard pair (256²) repeated k×k per pixel, else a smooth synthetic pair."""
    import numpy as np

    _, pairs = bench_pairs()
    from fusionbench.io import load_image

    a, b = load_image(pairs[0].a_path), load_image(pairs[0].b_path)
    k = max(1, size // a.shape[0])
    a = np.kron(a, np.ones((k, k), a.dtype))[:size, :size]
    b = np.kron(b, np.ones((k, k) + (1,) * (b.ndim - 2), b.dtype))[:size, :size]
    return a, b


def _prepared(method: str):
    """The method, compiled and loaded (numba kernels, weights) by one fusion of a 48×48 crop."""
    from fusionbench.method_registry import create_method

    m = create_method(method)
    a, b = scaled_pair(SCALING_SIZES[0])
    _warm(m, a[:48, :48], b[:48, :48])
    return m


def _warm(method, a, b) -> None:
    """One fusion of ``(a, b)`` outside the timing, at the size then timed: what a method builds or compiles on
    its first call (numba kernels loaded or compiled, per-size filter responses, allocator pools) is not
    counted.  Without it the single timed sample of ``time_fuse`` held it: mopa's 20 pairs 1.39 s against
    0.82 s warm, 23 s with an empty numba cache; mopa at 256² in the scaling suite 0.162 s against 0.047 s."""
    from fusionbench.api import fuse_arrays

    fuse_arrays(method, a, b)


class MethodScalingSuite(OneShot):
    """Time and peak memory of one fusion at 256², 512² and 1024² for every available method.

    Linear growth means ×4 and ×16 the 256² time.  The pair is built, the method
    compiled/loaded (numba kernels, weights) and fused once at the timed size outside the timing.  ``peakmem_fuse`` is the
    process's peak resident memory (a worker must stay under 2 GB at 1024²).
    ``$FUSIONBENCH_BENCH_METHODS`` restricts the methods, as for :class:`MethodSuite`.
    """

    params = [MethodSuite.params[0], list(SCALING_SIZES)]
    param_names = ["method", "size"]
    timeout = 1800

    def setup(self, method: str, size: int) -> None:
        self.method = _prepared(method)
        self.a, self.b = scaled_pair(size)
        _warm(self.method, self.a, self.b)  # the first call at a new size builds what is cached per size

    def time_fuse(self, method: str, size: int) -> None:
        from fusionbench.api import fuse_arrays

        fuse_arrays(self.method, self.a, self.b)

    def peakmem_fuse(self, method: str, size: int) -> None:
        from fusionbench.api import fuse_arrays

        fuse_arrays(self.method, self.a, self.b)


def growth_ratio(method, size: int, base: int = SCALING_SIZES[0], repeat: int = 3) -> float:
    """Time per pixel of one fusion at size² over that at base² (1.0 = linear in the pixels).

    Wall-clock, best of ``repeat`` fusions at each size (fusions of 2 s or more: best of 2, since the first
    at a new size also builds what is cached per size, e.g. ``nsct.liu``'s filter responses: 4-8 s against
    1.8 s at 1024²), both measured in this process one after the other with the method already compiled and
    loaded.
    """
    import time

    from fusionbench.api import fuse_arrays

    def best(n: int) -> float:
        a, b = scaled_pair(n)
        times: list[float] = []
        while len(times) < repeat and not (len(times) >= 2 and min(times) >= 2.0):
            start = time.perf_counter()
            fuse_arrays(method, a, b)
            times.append(time.perf_counter() - start)
        return min(times)

    t_base = best(base)
    return (best(size) / t_base) / ((size / base) ** 2)


class MethodGrowthSuite(OneShot):
    """Growth of the cost with the pixels: time per pixel at 512² and 1024² over 256² (target ≈ 1).

    ``track_growth_512`` / ``track_growth_1024``: :func:`growth_ratio` (1.0 = the cost grows
    exactly as the pixels; 1.25 at 1024² = 20× the 256² time for 16× the pixels).
    """

    params = [MethodSuite.params[0]]
    param_names = ["method"]
    timeout = 3600

    def setup(self, method: str) -> None:
        self.method = _prepared(method)

    def track_growth_512(self, method: str) -> float:
        return growth_ratio(self.method, 512)

    track_growth_512.unit = "time per pixel / 256²"

    def track_growth_1024(self, method: str) -> float:
        return growth_ratio(self.method, 1024)

    track_growth_1024.unit = "time per pixel / 256²"


# --------------------------------------------------------------------------- whole-run pairs (issue 23)
def run_pairs() -> dict[str, tuple]:
    """``{"harvard-256": (a, b), "tno-768x576": (a, b)}``: one pair of each size the whole test-split run fuses.

    The first Harvard MRI-PET test pair (256²) and the first TNO test pair of the largest TNO size
    (768×576, 18 of the 50 TNO images); without the data, :func:`scaled_pair` at 256² and 512² stands in.
    """
    import fusionbench.data as data
    from fusionbench.io import load_image

    root = next((r for r in data_roots() if (r / "harvard").is_dir() and (r / "tno").is_dir()), None)
    if root is None:
        return {"harvard-256": scaled_pair(256), "tno-768x576": scaled_pair(512)}
    pet = data.create_dataset("harvard-mri-pet", data_dir=root).select("test")[0]
    out = {"harvard-256": (load_image(pet.a_path), load_image(pet.b_path))}
    for pair in data.create_dataset("tno", data_dir=root).select("test"):
        a = load_image(pair.a_path)
        if a.shape[:2] == (576, 768):
            out["tno-768x576"] = (a, load_image(pair.b_path))
            break
    return out


class MethodRunPairSuite(OneShot):
    """One fusion of a Harvard 256² pair and of a 768×576 TNO pair, as a runner worker does it.

    ``time_fuse`` is wall-clock; ``track_cpu_seconds`` is the single-thread CPU time
    (``time.process_time``, torch/BLAS/numba at one thread as in a worker of a run with as many
    workers as cores; best of 2), the measure that holds on a shared machine.
    ``$FUSIONBENCH_BENCH_METHODS`` restricts the methods (e.g. ``mdl,mlepf,dtnp,cnp``).
    """

    params = [MethodSuite.params[0], ["harvard-256", "tno-768x576"]]
    param_names = ["method", "pair"]
    timeout = 1800

    def setup(self, method: str, pair: str) -> None:
        self.method = _prepared(method)
        self.a, self.b = run_pairs()[pair]
        _warm(self.method, self.a, self.b)

    def time_fuse(self, method: str, pair: str) -> None:
        from fusionbench.api import fuse_arrays

        fuse_arrays(self.method, self.a, self.b)

    def track_cpu_seconds(self, method: str, pair: str) -> float:
        import time

        import torch

        from fusionbench.api import fuse_arrays
        from fusionbench.config import WORKER_THREADS_ENV

        old_torch, old_cap = torch.get_num_threads(), os.environ.get(WORKER_THREADS_ENV)
        torch.set_num_threads(1)
        os.environ[WORKER_THREADS_ENV] = "1"
        try:
            times = []
            for _ in range(2):
                start = time.process_time()
                fuse_arrays(self.method, self.a, self.b)
                times.append(time.process_time() - start)
            return min(times)
        finally:
            torch.set_num_threads(old_torch)
            if old_cap is None:
                os.environ.pop(WORKER_THREADS_ENV, None)
            else:
                os.environ[WORKER_THREADS_ENV] = old_cap

    track_cpu_seconds.unit = "CPU seconds"


class MDLNuclearNormSuite:
    """MDL's costliest step alone: nuclear norms of 16×16 detail patches, per solver (issue 23).

    ``batched``: the SIMD block solver (``methods/_small_eig.py``, the default); ``lapack``: batched
    LAPACK ``eigvalsh`` through torch (the reference path).  Inputs: the first-level detail matrices of
    the image of :func:`run_pairs`'s Harvard pair (its non-zero patches, at most 16,384).
    ``track_cpu_us_per_matrix``: single-thread CPU time (``time.process_time``, best of 3) per matrix.
    """

    params = [["batched", "lapack"]]
    param_names = ["solver"]
    timeout = 600
    number = 1
    repeat = 3
    warmup_time = 0
    processes = 1

    def setup(self, solver: str) -> None:
        import numpy as np

        from fusionbench.methods.mdl import MDLatLRR, load_matrices, nuclear_norms

        a, _ = run_pairs()["harvard-256"]
        img = np.asarray(a, dtype=np.float64)
        img = (img if img.ndim == 2 else img[..., 0]) / 255.0
        det = MDLatLRR(*load_matrices())._details(img)
        self.det = np.ascontiguousarray(det[np.any(det != 0, axis=1)][:16384])
        self.solver = solver
        nuclear_norms(self.det[:64], workers=1, solver=solver)  # compile / warm up

    def time_nuclear_norms(self, solver: str) -> None:
        from fusionbench.methods.mdl import nuclear_norms

        nuclear_norms(self.det, workers=1, solver=solver)

    def track_cpu_us_per_matrix(self, solver: str) -> float:
        import time

        import torch

        from fusionbench.methods.mdl import nuclear_norms

        old = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            best = math.inf
            for _ in range(3):
                start = time.process_time()
                nuclear_norms(self.det, workers=1, solver=solver)
                best = min(best, time.process_time() - start)
            return 1e6 * best / len(self.det)
        finally:
            torch.set_num_threads(old)

    track_cpu_us_per_matrix.unit = "CPU µs"


# --------------------------------------------------------------------------- neuron models (issue 23, session 6)
def neuron_model_inputs(pair: str) -> dict:
    """The inputs the DTNP neuron model, MLEPF's MLMG and its PCNN, and NSST-PAPCNN's PA-PCNN get when one run
    pair is fused.

    ``{"dtnp": [22 (2, H, W) INSML stacks], "mlmg": (12, H, W), "pcnn": (12, H, W), "pa_pcnn": [96 (H, W)
    bands]}``, captured by
    fusing the :func:`run_pairs` pair once through the runner's path with the kernels wrapped.
    """
    import numpy as np

    import fusionbench.methods.dtnp as dtnp_mod
    import fusionbench.methods.mlepf as mlepf_mod
    import fusionbench.methods.nsst_papcnn as papcnn_mod
    from fusionbench.api import fuse_arrays

    a, b = run_pairs()[pair]
    seen: dict = {"dtnp": [], "mlmg": [], "pcnn": [], "pa_pcnn": []}
    originals = {"dtnp": (dtnp_mod, "dtnp_firing_counts"), "mlmg": (mlepf_mod, "mlmg"),
                 "pcnn": (mlepf_mod, "pcnn_counts"), "pa_pcnn": (papcnn_mod, "pa_pcnn_firing_counts")}

    def wrap(key, fn):
        def recorder(x, *args, **kwargs):
            seen[key].append(np.array(x))
            return fn(x, *args, **kwargs)
        return recorder

    saved = {k: getattr(mod, name) for k, (mod, name) in originals.items()}
    try:
        for k, (mod, name) in originals.items():
            setattr(mod, name, wrap(k, saved[k]))
        fuse_arrays(_prepared("dtnp"), a, b)
        fuse_arrays(_prepared("mlepf"), a, b)
        fuse_arrays(_prepared("nsst_papcnn"), a, b)
    finally:
        for k, (mod, name) in originals.items():
            setattr(mod, name, saved[k])
    return {"dtnp": seen["dtnp"][-22:], "mlmg": seen["mlmg"][-1], "pcnn": seen["pcnn"][-1],
            "pa_pcnn": seen["pa_pcnn"][-96:]}


class NeuronModelSuite(OneShot):
    """The compiled neuron models of DTNP, MLEPF and NSST-PAPCNN, and MLEPF's MLMG, on the inputs of one run pair.

    ``track_cpu_ns_per_pixel_step``: single-thread CPU time (best of 3) per pixel and iteration
    (DTNP and PA-PCNN: 110 iterations, PCNN: 200) or per pixel and scale (MLMG: 40), summed over all the
    maps one fusion of the pair computes (DTNP: 22 directions × 2 sources; MLEPF: 12 layers; NSST-PAPCNN:
    48 directions × 2 sources).
    """

    params = [["dtnp", "pcnn", "mlmg", "pa_pcnn"], ["harvard-256", "tno-768x576"]]
    param_names = ["model", "pair"]
    timeout = 1800

    def setup(self, model: str, pair: str) -> None:
        self.inputs = neuron_model_inputs(pair)[model]
        self.run(model)  # compiled already by the capture; warm

    def run(self, model: str) -> None:
        from fusionbench.methods import _neural_p, mlepf, nsst_papcnn

        if model == "dtnp":
            for stack in self.inputs:
                _neural_p.dtnp_firing_counts(stack, 110, workers=1)
        elif model == "pa_pcnn":
            for band in self.inputs:
                nsst_papcnn.pa_pcnn_firing_counts(band, 110)
        elif model == "pcnn":
            mlepf.pcnn_counts(self.inputs, workers=1)
        else:
            mlepf.mlmg(self.inputs, workers=1)

    def time_model(self, model: str, pair: str) -> None:
        self.run(model)

    def track_cpu_ns_per_pixel_step(self, model: str, pair: str) -> float:
        import time

        steps = {"dtnp": 110, "pcnn": 200, "mlmg": 40, "pa_pcnn": 110}[model]
        pixels = sum(x.size for x in self.inputs) if model in ("dtnp", "pa_pcnn") else self.inputs.size
        best = math.inf
        for _ in range(3):
            start = time.process_time()
            self.run(model)
            best = min(best, time.process_time() - start)
        return 1e9 * best / (pixels * steps)

    track_cpu_ns_per_pixel_step.unit = "CPU ns"


#: the methods a whole run fuses MRI-PET pairs with (session 7's run; ``swinfusion.ct``, ``legff.ivf`` and
#: ``u2fusion.ivf`` are the variants run on MRI-CT and IR-VIS pairs instead)
WHOLE_RUN_MRI_PET = (
    "average", "cnn", "cnp", "contrast_pyramid", "dtnp", "dwt", "dwt.vifb", "ifcnn", "laplacian_pyramid",
    "laplacian_pyramid.mertens", "legff", "matr", "maximum", "mdl", "mlepf", "mopa", "mopa.v1", "nsct",
    "nsct.liu", "nsst", "nsst.liu", "sdnet", "swinfusion", "u2fusion",
)

_WORKER_PEAK_SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
from fusionbench.method_registry import create_method
from fusionbench.worker import ImageSource, Task, run_task
a, b, methods = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
for m in methods:
    key = create_method(m).cache_key()  # a worker builds only the method its task was planned for
    r = run_task(Task("bench", "p", "p-sha", m, key, ("AG", "EN", "SF", "SD", "CC", "MI", "SCD"),
                      ImageSource.from_path(a), ImageSource.from_path(b), "unused.png"))
    if r.failures:
        sys.exit(f"{m}: {r.failures[0]}")
with open("/proc/self/status") as f:
    print([line.split()[1] for line in f if line.startswith("VmHWM:")][0])
"""


def worker_peak_mb(methods: tuple[str, ...] | list[str], size: int = 1024) -> float:
    """Peak resident memory (MiB, ``VmHWM``) of a fresh process running ``methods`` one after another through
    the worker's ``run_task`` on one size² MRI-PET pair (:func:`scaled_pair`), one torch thread, the paper
    metrics, the default ``$FUSIONBENCH_WORKER_MEMORY_MB`` (unless set): a runner worker's peak, interpreter,
    torch, weights and caches included.  Linux (reads ``/proc/self/status``)."""
    import subprocess
    import sys
    import tempfile

    from PIL import Image

    a, b = scaled_pair(size)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [f"{tmp}/a.png", f"{tmp}/b.png"]
        for image, path in zip((a, b), paths):
            Image.fromarray(image).save(path)
        out = subprocess.run([sys.executable, "-c", _WORKER_PEAK_SCRIPT, *paths, ",".join(methods)],
                             check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 1024


class WorkerMemorySuite(OneShot):
    """A worker's peak resident memory at 1024² (issue 23: under 2 GB per worker), :func:`worker_peak_mb`.

    ``sequence``: every method of :data:`WHOLE_RUN_MRI_PET` one after another in one process (freed
    temporaries and caches of the earlier methods stay, as in a worker); ``reversed``: the same in the
    opposite order; ``cnn``, ``ifcnn``: that method alone in a fresh process.  Methods not available here
    are left out.  The sequences take minutes.
    """

    params = [["sequence", "reversed", "cnn", "ifcnn"]]
    param_names = ["tasks"]
    timeout = 3600

    def track_peak_rss_1024(self, tasks: str) -> float:
        from fusionbench.method_registry import create_method

        available = [m for m in WHOLE_RUN_MRI_PET if create_method(m).unavailable_reason() is None]
        methods = {"sequence": available, "reversed": available[::-1]}.get(tasks, [tasks])
        return worker_peak_mb(methods)

    track_peak_rss_1024.unit = "MiB"


# --------------------------------------------------------------------------- mopa's two-thread schedule (issue 23)
class MopaThreadSchedule(_SwitchedSchedule):
    """``mopa``'s 256² forward at torch's thread count under its two band-worker schedules: the whole-image planar
    pass with every layer's output rows split among N single-threaded workers (``methods/mopa/_split.py``,
    ``InferencePath.SPLIT_LAYERS``, session 11: a barrier per layer, no halo rows), or the banded passes
    (``methods/mopa/_banded.py``, the default: one band of rows per worker, each pass recomputing its halo rows,
    three barriers since session 12: features and contrast flow in one pass).  The fraction of the plain 3×3
    64→64 convolution's GFLOP/s timed just before in the same process
    (:func:`fusionbench.profile.conv_peak_gflops_per_s`), so that an idle run says which schedule is faster.  At
    one thread both run the whole image in one piece.  The two give the same fused map (bit-identical at 256²).
    (Until session 11 this compared the band workers with torch's OpenMP team on the whole image; the whole-image
    pass now runs compiled single-threaded kernels, so an OpenMP team no longer applies.)"""

    params = [["rows split", "bands with halos"]]
    param_names = ["schedule"]
    method_name = "mopa"

    def _switch(self) -> tuple[object, str]:
        from fusionbench.methods.mopa.inference import InferencePath

        return InferencePath, "SPLIT_LAYERS"

    def _value(self, schedule: str) -> bool:
        return schedule == "rows split"  # else the banded passes at N > 1 threads
