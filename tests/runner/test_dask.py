"""The same run on a Dask LocalCluster (127.0.0.1) gives the same scores as the local pool."""
from __future__ import annotations

import sqlite3

import pytest

from fusionbench.runner import RunConfig, run


def test_dask_cluster_matches_local_run(tmp_path, make_pairs) -> None:
    distributed = pytest.importorskip("dask.distributed")
    data = make_pairs(tmp_path / "data", 3)
    base = dict(methods=["average,dwt"], datasets=[f"folder:{data}"], metrics="EN,SD", quiet=True)
    run(RunConfig(out=str(tmp_path / "local"), workers=1, **base), log=lambda m: None)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", processes=True,
                                  dashboard_address=None) as cluster:
        summary = run(RunConfig(out=str(tmp_path / "dask"), scheduler=cluster.scheduler_address, **base),
                      log=lambda m: None)
    assert summary.completed == 6 and summary.failures == 0
    q = "SELECT pair, method, metric, value FROM scores ORDER BY pair, method, metric"
    local = sqlite3.connect(tmp_path / "local" / "results.sqlite").execute(q).fetchall()
    dask = sqlite3.connect(tmp_path / "dask" / "results.sqlite").execute(q).fetchall()
    assert len(local) == 12 and local == dask
