"""Measure the Dask executor: tasks/s with 1 and 2 workers, bytes and scheduler overhead per task.

Usage (numbers in ``docs/cluster.md`` come from this script)::

    python scripts/measure_cluster.py --data-dir ../shared/data --dataset harvard-mri-pet \\
        --methods dwt,nsct,legff --metrics paper --pairs 20

For each N in ``--workers`` (default 1 2) it runs the same plan on the local
process pool and on a Dask LocalCluster of N single-thread processes started
beforehand (cluster start-up is not counted), each into a fresh OUT, and prints
tasks/s; the Dask run is made twice on the same workers, cold (first use: imports, the
fusion child's start, kernel compilation in both processes) and warm.  It also reports
the pickled size of a task as shipped (images as bytes)
and of a result (PNG + scores), and the per-task scheduler overhead: for
``average`` + EN (almost no work) sent one at a time to one Dask worker, the
median of (client round trip − the worker's own time), with and without the
killable fusion child that a per-pair timeout uses.
"""
from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path


def _timed_run(config, label: str) -> tuple[float, int]:
    from fusionbench.runner import run

    start = time.perf_counter()
    summary = run(config, log=lambda m: None)
    wall = time.perf_counter() - start
    assert summary.failures == 0, f"{label}: {summary.failures} failures"
    return wall, summary.completed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--dataset", default="harvard-mri-pet")
    ap.add_argument("--methods", default="dwt,nsct,legff")
    ap.add_argument("--metrics", default="paper")
    ap.add_argument("--pairs", type=int, default=20, help="first N pairs of the test split (a split of that size)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    from dask.distributed import LocalCluster

    from fusionbench.data import create_dataset
    from fusionbench.runner import RunConfig
    from fusionbench.worker import ImageSource, Task, run_task

    ds = create_dataset(args.dataset, data_dir=args.data_dir)
    pairs = ds.select("test")[: args.pairs]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # a folder dataset of the chosen pairs, so every run plans exactly these
        for side in ("a", "b"):
            (root / "data" / side).mkdir(parents=True)
        for p in pairs:
            (root / "data" / "a" / f"{p.id}.png").write_bytes(Path(p.a_path).read_bytes())
            (root / "data" / "b" / f"{p.id}.png").write_bytes(Path(p.b_path).read_bytes())
        base = dict(methods=[args.methods], datasets=[f"folder:{root / 'data'}"], split="all",
                    metrics=args.metrics, quiet=True, summary=False)
        print(f"{len(pairs)} pairs of {args.dataset}, methods {args.methods}, metrics {args.metrics}")
        for n in args.workers:
            wall, done = _timed_run(RunConfig(out=str(root / f"local{n}"), workers=n, **base), f"local {n}")
            print(f"local pool, {n} worker(s): {done} tasks in {wall:.1f} s = {done / wall:.2f} tasks/s")
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster:
                for state in ("cold", "warm"):  # warm: the same workers again (imports, fusion children, kernels)
                    wall, done = _timed_run(RunConfig(out=str(root / f"dask{n}{state}"),
                                                      scheduler=cluster.scheduler_address, **base), f"dask {n}")
                    print(f"dask LocalCluster, {n} worker(s), {state}: {done} tasks in {wall:.1f} s "
                          f"= {done / wall:.2f} tasks/s")

        # bytes per task: what client.submit ships (images as bytes) and what comes back
        from fusionbench.method_registry import create_method
        from fusionbench.metric_registry import resolve_metrics

        metrics = tuple(resolve_metrics(args.metrics))
        sizes_in, sizes_out = [], []
        for p in pairs[:5]:
            task = Task(dataset="m", pair=p.id, pair_sha256=p.sha256, method="dwt", method_key=create_method("dwt").cache_key(),
                        metrics=metrics, a=ImageSource.from_path(p.a_path), b=ImageSource.from_path(p.b_path),
                        fused_path=str(root / "x.png")).portable()
            sizes_in.append(len(pickle.dumps(task)))
            sizes_out.append(len(pickle.dumps(run_task(task))))
        print(f"bytes per task: {statistics.mean(sizes_in) / 1e3:.0f} kB to the worker, "
              f"{statistics.mean(sizes_out) / 1e3:.0f} kB back (PNG + scores)")

        # scheduler overhead: one task at a time on one Dask worker; per task, the client's round trip minus the
        # worker's own time (medians, robust to a loaded machine); with and without the fusion child (timeout)
        from dask.distributed import Client

        def tasks(method: str, timeout: float | None) -> list:
            return [Task(dataset="m", pair=p.id, pair_sha256=p.sha256, method=method, method_key=create_method(method).cache_key(),
                         metrics=("EN",), a=ImageSource.from_path(p.a_path), b=ImageSource.from_path(p.b_path),
                         fused_path=str(root / "x.png"), timeout=timeout).portable() for p in pairs[:8]]

        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            for timeout in (None, 600.0):
                batch = tasks("average", timeout)
                client.submit(_timed_task, batch[0], pure=False).result()  # warm-up (imports, fusion child)
                trips, inside = [], []
                for _ in range(3):
                    for task in batch:
                        start = time.perf_counter()
                        result, seconds = client.submit(_timed_task, task, pure=False).result()
                        trips.append(time.perf_counter() - start)
                        inside.append(seconds)
                        assert result.has_output, result.failures
                print(f"average + EN, timeout {timeout}: worker {1e3 * statistics.median(inside):.1f} ms/task, "
                      f"round trip {1e3 * statistics.median(trips):.1f} ms, scheduler + transfer overhead "
                      f"{1e3 * statistics.median([t - i for t, i in zip(trips, inside)]):.1f} ms/task")
        inline = []
        for task in tasks("average", None):
            start = time.perf_counter()
            run_task(task)
            inline.append(time.perf_counter() - start)
        print(f"average + EN inline in this process: {1e3 * statistics.median(inline):.1f} ms/task")


def _timed_task(task):
    from fusionbench.worker import run_task

    start = time.perf_counter()
    result = run_task(task)
    return result, time.perf_counter() - start

if __name__ == "__main__":
    main()
