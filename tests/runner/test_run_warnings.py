"""Warnings raised while a run fuses and scores its pairs are reported by the run, one line per method and
distinct message (naming the method and the first pair), with a count at the run's end: never printed by the
worker over the progress bar, and never lost.

Until session 38 Python printed them where they were raised: PyWavelets-style "Level value of 3 is too high"
lines from ``dwt`` on 9×12 pairs landed inside the ``fuse+score`` bar (``tests/methods/test_any_size.py`` fuses
such pairs), once per worker process, and a second method warning from the same line of code in that process
showed nothing at all (Python's once-per-location registry).
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from PIL import Image

from fusionbench.cli import main
from fusionbench.method_registry import METHODS, register_method
from fusionbench.runner import RunConfig, run

DWT_WARNING = "UserWarning: Level value of 3 is too high: all coefficients will experience boundary effects."


@pytest.fixture
def tiny_pairs(tmp_path):
    """Four 9×12 grey pairs: too small for ``dwt``'s three levels."""
    rng = np.random.default_rng(0)
    for side in ("a", "b"):
        (tmp_path / "data" / side).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (9, 12), dtype=np.uint8)).save(tmp_path / "data" / side / f"p{i}.png")
    return tmp_path / "data"


def _shared_warning(a):
    warnings.warn("shared helper saw a small image", UserWarning, stacklevel=1)  # one location, two methods
    return a


@pytest.fixture
def warning_methods():
    register_method("test_warns_first")(lambda a, b: _shared_warning(a))
    register_method("test_warns_second")(lambda a, b: _shared_warning(b))
    yield ["test_warns_first", "test_warns_second"]
    for name in ("test_warns_first", "test_warns_second"):
        METHODS.remove(name)


def _warning_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "warn" in line]


@pytest.mark.parametrize("workers", [0, 2])
def test_dwt_on_tiny_pairs_reports_its_warning_once_with_the_count(tiny_pairs, tmp_path, capfd, workers) -> None:
    lines: list[str] = []
    summary = run(RunConfig(methods=["dwt,average"], datasets=[f"folder:{tiny_pairs}"], metrics="EN",
                            out=str(tmp_path / "out"), workers=workers, quiet=True), log=lines.append)
    assert summary.failures == 0
    said = _warning_lines(lines)
    assert len(said) == 2, lines
    first = re.fullmatch(r"warning from dwt on folder:\S+/p\d: (.*)", said[0])
    assert first and first.group(1) == DWT_WARNING, said[0]
    assert said[1] == f"run 1: dwt gave this warning on 4 pairs in all: {DWT_WARNING}"
    assert "Level value" not in capfd.readouterr().err  # nothing printed by the workers themselves


def test_two_methods_warning_from_one_line_of_code_are_each_reported(warning_methods, tiny_pairs, tmp_path,
                                                                     capfd) -> None:
    lines: list[str] = []
    run(RunConfig(methods=[",".join(warning_methods)], datasets=[f"folder:{tiny_pairs}"], metrics="EN",
                  out=str(tmp_path / "out"), workers=0, quiet=True), log=lines.append)
    said = _warning_lines(lines)
    for method in warning_methods:
        assert sum(line.startswith(f"warning from {method} on ") for line in said) == 1, said
        assert f"run 1: {method} gave this warning on 4 pairs in all: UserWarning: shared helper saw a small " \
               "image" in said, said
    assert "shared helper" not in capfd.readouterr().err


def test_the_warning_line_is_written_above_the_progress_bar_not_into_it(tiny_pairs, tmp_path, capfd) -> None:
    assert main(["run", "--methods", "dwt", "--datasets", f"folder:{tiny_pairs}", "--metrics", "EN", "--out",
                 str(tmp_path / "out"), "--workers", "0", "--no-report"]) == 0
    err = capfd.readouterr().err
    pieces = [p for p in re.split(r"[\r\n]", err) if "Level value" in p]
    assert len(pieces) == 2 and all(p.startswith(("warning from dwt", "run 1: dwt")) for p in pieces), err


def test_a_warning_in_the_sandbox_child_comes_back_with_the_pair(tiny_pairs) -> None:
    """A Dask worker thread fuses in a child process (:mod:`fusionbench.sandbox`): its warnings, printed there
    before, come back to the thread's task."""
    import threading

    from fusionbench.task_warnings import collecting
    from fusionbench.sandbox import fuse_in_sandbox

    a = np.asarray(Image.open(tiny_pairs / "a" / "p0.png"), dtype=np.float32) / 255
    got = []

    def work() -> None:
        with collecting() as lines:
            fuse_in_sandbox("dwt", "k", {}, a, a, 60.0)
        got.append(lines)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    assert got == [[DWT_WARNING]]
