"""Weights on Dask workers (issue 18): checked on every worker, sent from the client and verified there, fetched by
the pinned download otherwise; a worker that still lacks them is named, and its tasks go to the others or fail.

The cluster is simulated by a client whose ``run`` calls the worker functions in this process, each worker with its
own ``FUSIONBENCH_HOME`` (the real Dask path is pinned in ``test_dask.py``)."""
from __future__ import annotations

import hashlib
import os

import pytest

from fusionbench import executors
from fusionbench.method_registry import METHODS, register_method
from fusionbench.weights import WEIGHTS, register_weights
from fusionbench.worker import ImageSource, Task

PAYLOAD = b"pinned test weights\n" * 100


class FakeClient:
    """``client.run`` over workers that are FUSIONBENCH_HOME folders."""

    def __init__(self, homes: dict[str, str]):
        self.homes = homes

    def run(self, fn, *args, workers=None):
        out, old = {}, os.environ.get("FUSIONBENCH_HOME")
        try:
            for addr in workers or list(self.homes):
                os.environ["FUSIONBENCH_HOME"] = self.homes[addr]
                out[addr] = fn(*args)
        finally:
            os.environ["FUSIONBENCH_HOME"] = old if old is not None else ""
            if old is None:
                del os.environ["FUSIONBENCH_HOME"]
        return out


@pytest.fixture
def weighted_method(tmp_path, monkeypatch):
    register_weights("test_dask_w", filename="w.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                     url="https://invalid.example/w.bin", method_dir="test_dask")
    register_method("test_dask_weighted", weights=("test_dask_w",))(lambda a, b: a)
    client_home = tmp_path / "client"
    (client_home / "weights" / "test_dask").mkdir(parents=True)
    (client_home / "weights" / "test_dask" / "w.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("FUSIONBENCH_HOME", str(client_home))
    yield
    METHODS.remove("test_dask_weighted")
    WEIGHTS.remove("test_dask_w")


def _tasks() -> list[Task]:
    src = ImageSource("x.png", data=b"")
    return [Task(dataset="d", pair="p", pair_sha256="s", method="test_dask_weighted", method_key="k",
                 metrics=("EN",), a=src, b=src, fused_path="f.png")]


def test_weights_are_sent_once_and_verified_on_each_worker(tmp_path, weighted_method) -> None:
    homes = {"w1": str(tmp_path / "w1"), "w2": str(tmp_path / "w2")}
    logs: list[str] = []
    restrict, fail = executors.prepare_weights(FakeClient(homes), _tasks(), logs.append)
    assert restrict == {} and fail == {}
    for home in homes.values():
        assert (tmp_path / home / "weights" / "test_dask" / "w.bin").read_bytes() == PAYLOAD
    assert any(f"sent {2 * len(PAYLOAD) / 1e3:.1f} kB of weights" in line for line in logs)  # once per worker
    logs.clear()
    executors.prepare_weights(FakeClient(homes), _tasks(), logs.append)  # already there: nothing sent
    assert not logs


def test_a_worker_that_still_lacks_them_is_named_and_skipped(tmp_path, weighted_method, monkeypatch) -> None:
    homes = {"w1": str(tmp_path / "w1"), "w2": str(tmp_path / "w2")}
    real_install = executors._install_weights

    def install(name, data):  # w2's copy is corrupted on the way
        bad = os.environ["FUSIONBENCH_HOME"] == homes["w2"]
        return real_install(name, data[:-1] + b"X" if bad else data)

    monkeypatch.setattr(executors, "_install_weights", install)
    monkeypatch.setattr(executors, "_fetch_weights", lambda name: "ConnectionError: no network")
    logs: list[str] = []
    restrict, fail = executors.prepare_weights(FakeClient(homes), _tasks(), logs.append)
    assert restrict == {"test_dask_weighted": ["w1"]} and fail == {}
    (line,) = [line for line in logs if "lacks" in line]
    assert line.startswith("dask: worker w2 lacks the weights of test_dask_weighted")
    assert "does not match the pinned" in line and "no network" in line and "other 1 worker" in line
    assert not (tmp_path / "w2" / "weights" / "test_dask" / "w.bin").exists()


def test_no_worker_with_weights_fails_the_tasks_naming_the_workers(tmp_path, weighted_method, monkeypatch) -> None:
    homes = {"w1": str(tmp_path / "w1"), "w2": str(tmp_path / "w2")}
    monkeypatch.setattr(executors, "_install_weights", lambda name, data: "OSError: disk full")
    monkeypatch.setattr(executors, "_fetch_weights", lambda name: "ConnectionError: no network")
    restrict, fail = executors.prepare_weights(FakeClient(homes), _tasks(), lambda m: None)
    assert restrict == {}
    message = fail["test_dask_weighted"]
    assert "w1 (" in message and "w2 (" in message and "disk full" in message and "\n" not in message
