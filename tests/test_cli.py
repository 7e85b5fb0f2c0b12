"""The command line: list, run on the built-in data, one-line errors, --version, python -m."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fusionbench.cli import main


def test_version_and_module_entry(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "fusionbench", "--version"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("fusionbench ")


def test_list_commands(capsys) -> None:
    assert main(["list", "methods", "dwt*"]) == 0
    assert "dwt" in capsys.readouterr().out
    assert main(["list", "metrics", "EN"]) == 0
    assert "EN" in capsys.readouterr().out
    assert main(["list", "datasets"]) == 0
    listed = capsys.readouterr().out
    assert "harvard-mri-pet" in listed and "builtin-mri-ct" in listed and "folder:PATH" in listed


def test_list_metrics_of_a_group_or_a_comma_list(capsys) -> None:
    """``fusionbench list metrics paper`` lists the group's presets in its order, as ``--metrics paper`` takes them
    (until session 39 it was an error that named the group); a comma list as ``--metrics`` reads it."""
    from fusionbench.metric_registry import PAPER_ORDER, resolve_metrics

    assert main(["list", "metrics", "paper"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == list(PAPER_ORDER)
    assert main(["list", "metrics", "standard"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == resolve_metrics("standard")
    assert main(["list", "metrics", "EN,SSIM*"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == resolve_metrics("EN,SSIM*")
    assert main(["list", "metrics", "Paper"]) == 1  # still a hint for another case
    assert "'paper' (lower case) is a group of presets" in capsys.readouterr().err


def test_list_columns_are_aligned(capsys) -> None:
    assert main(["list", "methods", "*"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("mopa.seed1 ", "cnp "))]
    assert len(lines) == 2  # long display names and families do not shift the later columns
    assert lines[0].index("colour=") == lines[1].index("colour=")


def test_aligned_pads_all_but_the_last_column() -> None:
    from fusionbench.cli import aligned

    assert aligned([["a", "bbb", "x"], ["cc", "d", "yy"]]) == ["a   bbb  x", "cc  d    yy"]
    assert aligned([]) == []


def test_list_without_a_match_is_an_error(capsys) -> None:
    assert main(["list", "methods", "nosuch*"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fusionbench: error: ") and "nosuch*" in err and "\n" not in err


def test_list_datasets_filters_the_folder_row_like_a_name(capsys) -> None:
    """``folder:PATH`` is listed where the pattern matches it; a pattern matching nothing is the "no match" error
    of the other kinds (the row was always printed, so ``list datasets 'zz*'`` exited 0)."""
    assert main(["list", "datasets", "zz*"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fusionbench: error: no datasets match 'zz*'") and "\n" not in err
    assert main(["list", "datasets", "tno"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["tno"]
    assert main(["list", "datasets", "FOLDER*"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["folder:PATH"]


def test_errors_are_one_line(capsys, tmp_path) -> None:
    assert main(["run", "--methods", "averag", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fusionbench: error: unknown method 'averag'") and "\n" not in err


def test_run_on_builtin_data(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "home"))
    assert main(["run", "--methods", "average,maximum", "--out", str(tmp_path / "out"), "--workers", "1",
                 "--quiet", "--no-report", "--metrics", "EN,SD"]) == 0
    assert "42 tasks done" in capsys.readouterr().out  # 3 built-in datasets × 7 pairs × 2 methods
    assert (tmp_path / "out" / "summary.md").read_text().count("## builtin-mri") == 3


def test_help_lists_every_command_in_plain_words(capsys) -> None:
    import pytest

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("list", "run", "fetch", "score", "train", "report"):
        assert f"    {command} " in out
    assert "``" not in out and "train a registered trainable method" in out and "build tables" in out


def test_an_interrupt_says_how_to_go_on(monkeypatch, capsys) -> None:
    """Ctrl-C: a run resumes by running the same command; a training run needs --resume (without it, the
    run folder holding a checkpoint is refused), so its line says so."""
    import fusionbench.cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_run", interrupted)
    monkeypatch.setattr(cli, "_cmd_delegate", interrupted)
    assert main(["run", "--methods", "average"]) == 130
    assert "run the same command to resume" in capsys.readouterr().err
    assert main(["train", "mopa", "--out", "runs/m"]) == 130
    assert "`fusionbench train mopa --resume-or-start --out runs/m`" in capsys.readouterr().err


def test_bad_timeout_and_workers_are_argparse_errors_before_any_run(tmp_path, capsys) -> None:
    """``--timeout -1/nan/inf`` used to fail every task as the method's ``fuse`` failure (itimer errors),
    ``--workers -3`` to stop with ProcessPoolExecutor's text after the run row was written, and
    ``--scheduler local:0`` to start a Dask cluster with no workers and wait for ever."""
    import pytest

    out = tmp_path / "out"
    for flag, value in (("--timeout", "-1"), ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "1e10"),
                        ("--timeout", "soon"), ("--workers", "-3"), ("--workers", "1.5"),
                        ("--scheduler", "local:0"), ("--scheduler", "local:-1"), ("--scheduler", "local:abc")):
        with pytest.raises(SystemExit) as info:
            main(["run", "--methods", "average", "--out", str(out), flag, value])
        assert info.value.code == 2
        assert f"argument {flag}: " in capsys.readouterr().err
    assert not out.exists()
    from fusionbench.cli import build_parser

    args = build_parser().parse_args(["run", "--timeout", "0", "--workers", "0"])
    assert args.timeout == 0 and args.workers == 0  # 0 = no time limit; 0 workers = inline
    assert build_parser().parse_args(["run", "--scheduler", "local:"]).scheduler == "local:"  # one worker


def test_out_or_cache_that_is_a_file_is_refused_before_any_run(tmp_path, capsys) -> None:
    """``--out FILE`` said "[Errno 17] File exists", and ``--cache FILE`` was found only when the first result
    was written (the run row 'interrupted', the result lost)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for flags in (["--out", str(a_file)], ["--out", str(tmp_path / "out"), "--cache", str(a_file)]):
        assert main(["run", "--methods", "average", *flags]) == 1
        err = capsys.readouterr().err.strip()
        assert err.endswith(f"{a_file}: is a file, not a folder") and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "results.sqlite").exists()


def test_sigterm_is_handled_as_ctrl_c(tmp_path, make_pairs) -> None:
    """``kill``/``timeout``/a batch scheduler's SIGTERM used to end the run with no message and leave its
    status ``running`` forever: now it says what is kept, exits 143, records ``interrupted``, keeps the rows."""
    import signal
    import sqlite3
    import textwrap
    import time

    from _db import rows

    data = make_pairs(tmp_path / "data", 30)
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import sys, time
        from fusionbench import register_method
        from fusionbench.cli import main

        register_method("test_sigterm_slow")(lambda a, b: time.sleep(0.2) or a)
        sys.exit(main(["run", "--methods", "test_sigterm_slow", "--datasets", "folder:{data}", "--metrics", "EN",
                       "--workers", "0", "--quiet", "--no-report", "--out", "{out}"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    def fused_some() -> bool:
        try:  # the file exists a moment before its tables do (seen once on a loaded machine)
            return bool(rows(out / "results.sqlite", "SELECT COUNT(*) FROM outputs")[0][0])
        except sqlite3.OperationalError:
            return False

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "results.sqlite").is_file() and fused_some():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "fusionbench: terminated; everything committed so far is kept" in err
    assert rows(out / "results.sqlite", "SELECT status FROM runs") == [("interrupted",)]
    assert 0 < rows(out / "results.sqlite", "SELECT COUNT(*) FROM outputs")[0][0] < 30


def test_the_summary_line_counts_input_files_that_formed_no_pair(tmp_path, make_pairs, capsys) -> None:
    """A dataset whose only problem is a mis-sized pair used to end with "0 failures"."""
    import numpy as np
    from PIL import Image

    data = make_pairs(tmp_path / "data", 1)
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(data / "a" / "size.png")
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(data / "b" / "size.png")
    assert main(["run", "--methods", "average", "--datasets", f"folder:{data}", "--metrics", "EN", "--workers", "0",
                 "--quiet", "--no-report", "--out", str(tmp_path / "out")]) == 0
    assert "1 tasks done, 0 already done, 1 failures (1 of them unusable input files)," in capsys.readouterr().out


def test_the_api_refuses_a_local_cluster_of_no_workers(tmp_path) -> None:
    import pytest

    from fusionbench.runner import RunConfig, run

    with pytest.raises(ValueError, match="at least 1 worker"):
        run(RunConfig(methods=["average"], scheduler="local:0", out=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_a_folder_dataset_without_its_path_is_refused_in_one_line(tmp_path, make_pairs, monkeypatch, capsys) -> None:
    """``run --datasets folder:`` ran the working folder (silently, where it has a/ and b/) instead of saying that
    the folder's path is missing; the run stops while planning, its row says so (docs/runner.md)."""
    import sqlite3

    make_pairs(tmp_path, 1)  # a working folder that is itself a folder dataset
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    for dataset in ("folder:", "folder: "):
        assert main(["run", "--methods", "average", "--datasets", dataset, "--metrics", "EN", "--out", str(out),
                     "--workers", "0", "--quiet", "--no-report"]) == 1
        err = capsys.readouterr().err.strip()
        assert "folder: needs the folder's path" in err and len(err.splitlines()) == 1, err
    con = sqlite3.connect(out / "results.sqlite")
    try:
        assert con.execute("SELECT status FROM runs").fetchall() == [("failed before any task",)] * 2
        assert con.execute("SELECT COUNT(*) FROM scores").fetchone() == (0,)
    finally:
        con.close()


def test_workers_minus_one_is_refused(tmp_path, capsys) -> None:
    """C2: the boundary of --workers: -1 is an argparse error like -3 (0 = inline is accepted)."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["run", "--methods", "average", "--out", str(out), "--workers", "-1"])
    assert info.value.code == 2 and "argument --workers: " in capsys.readouterr().err
    assert not out.exists()


class _Stop(Exception):
    pass


def test_run_flags_reach_the_run_config(tmp_path, monkeypatch) -> None:
    """C4-C6: `--timeout 0` is no limit (None), `--split all` is every split (None), `--datasets` names are
    stripped of the spaces around the commas."""
    import fusionbench.runner as runner

    seen = []

    def fake_run(config, command=None):
        seen.append(config)
        raise _Stop

    monkeypatch.setattr(runner, "run", fake_run)
    with pytest.raises(_Stop):
        main(["--debug", "run", "--methods", "average", "--out", str(tmp_path / "out"), "--timeout", "0",
              "--split", "all", "--datasets", "harvard-mri-pet , harvard-mri-spect", "--quiet"])
    config = seen[0]
    assert config.timeout is None and config.split is None
    assert config.datasets == ["harvard-mri-pet", "harvard-mri-spect"]
    seen.clear()
    with pytest.raises(_Stop):
        main(["--debug", "run", "--methods", "average", "--out", str(tmp_path / "out2"), "--timeout", "2.5",
              "--split", "paper20", "--quiet"])
    assert seen[0].timeout == 2.5 and seen[0].split == "paper20" and seen[0].datasets == []


def test_a_reader_that_goes_away_is_not_an_error(tmp_path) -> None:
    """``fusionbench list weights | head -1`` printed ``fusionbench: error: [Errno 32] Broken pipe`` and exited
    1 about one time in three (the packaging audit of session 26); now it says nothing and exits 141, as a
    command killed by SIGPIPE would.  The pipe's reader is closed before the command writes (it is still
    importing), so the write always fails."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "fusionbench", "list", "methods"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_a_broken_pipe_of_another_stream_is_still_an_error(monkeypatch, capsys) -> None:
    """Only a closed standard output is the reader going away; a BrokenPipeError from elsewhere (a worker's
    pipe) stays an error line with status 1."""
    import fusionbench.cli as cli

    def broken(args, argv):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_dispatch", broken)
    assert main(["list", "methods"]) == 1
    assert capsys.readouterr().err.startswith("fusionbench: error: [Errno 32] Broken pipe")


def test_the_final_line_names_the_store_once_slashed(tmp_path, make_pairs, capsys) -> None:
    """``--out results/`` (the README's example) printed ``results//results.sqlite`` (session 32's docs audit)."""
    data = make_pairs(tmp_path / "d", 1)
    assert main(["run", "--methods", "average", "--datasets", f"folder:{data}", "--metrics", "EN", "--out",
                 f"{tmp_path / 'res'}/", "--workers", "0", "--quiet", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert f"results in {tmp_path / 'res' / 'results.sqlite'}" in out and "//" not in out


def test_the_python_listings_read_patterns_as_the_command_does(capsys) -> None:
    """Session 39's API audit: ``list_metrics('paper')``, ``list_metrics('EN,SF')`` and ``list_methods('dwt,average')``
    returned ``[]`` (and ``fusionbench list methods 'dwt,average'`` was an error), while ``--methods`` and
    ``--metrics`` take such text."""
    import fusionbench
    from fusionbench.metric_registry import PAPER_ORDER

    assert fusionbench.list_metrics("paper") == list(PAPER_ORDER)
    assert fusionbench.list_metrics("paper", exclude_filters="E*") == [m for m in PAPER_ORDER if m != "EN"]
    assert fusionbench.list_metrics("EN,SF") == ["EN", "SF"]
    assert fusionbench.list_metrics("paper,ChromaErr") == [*PAPER_ORDER, "ChromaErr"]  # a group inside a list
    assert fusionbench.list_methods("dwt,average") == ["average", "dwt"]
    assert fusionbench.list_methods(["dwt", "nsct,average"]) == ["average", "dwt", "nsct"]
    assert main(["list", "methods", "dwt,average"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["average", "dwt"]
