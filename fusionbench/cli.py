"""The ``fusionbench`` command line.

``fusionbench list {methods,metrics,datasets,weights} [PATTERN]``,
``fusionbench run ...``, ``fusionbench fetch {harvard,tno,weights} ...``,
``fusionbench score --fused DIR --a DIR --b DIR``, ``fusionbench export-fused OUT DEST``,
``fusionbench compare-fused A B``, ``fusionbench train ...``, ``fusionbench report ...``, ``fusionbench --version``.
Errors are one readable line; ``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Sequence

from .interrupts import Terminated, sigterm_as_interrupt


def aligned(rows: list[list[str]]) -> list[str]:
    """Rows of cells as text lines, every column but the last padded to its widest cell (``fusionbench list``)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] if len(row) > 1 else row[0]
            for row in rows]


#: The longest ``--timeout`` (11.6 days): beyond it use 0, no limit (``setitimer`` overflows past about 2**31 s).
MAX_TIMEOUT = 1e6


def timeout_seconds(text: str) -> float:
    """``--timeout``: a finite number of seconds, 0 (no limit) up to :data:`MAX_TIMEOUT`; else an argparse error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 (no limit) to {MAX_TIMEOUT:.0f}, "
                                         f"got {text!r}")
    return value


def worker_count(text: str) -> int:
    """``--workers``: a whole number ≥ 0 (0 = inline); else an argparse error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (inline) or more, got {text!r}")
    return value


def scheduler_address(text: str) -> str:
    """``--scheduler``: an address Dask takes (``tcp://HOST:PORT``), or ``local:N`` with N ≥ 1; else an argparse
    error (``local:0`` would start a cluster with no workers and wait for ever)."""
    from .executors import local_cluster_size

    try:
        local_cluster_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _cmd_list(args: argparse.Namespace) -> int:
    from .data import DATASETS
    from .method_registry import METHODS
    from .metric_registry import METRICS, list_metrics
    from .registry import matches
    from .weights import WEIGHTS

    registry = {"methods": METHODS, "metrics": METRICS, "datasets": DATASETS, "weights": WEIGHTS}[args.what]
    pattern = args.pattern or "*"
    # a comma list as --methods/--metrics read it; for metrics a group too (`paper`: in the paper's order; session 39)
    names = list_metrics(pattern) if args.what == "metrics" else registry.list(pattern)
    # the folder:PATH family is listed like a name: where the pattern matches it (`*`, `folder*`), and no match at
    # all is the same error for every kind
    folder_row = args.what == "datasets" and matches("folder:PATH", pattern)
    if not names and not folder_row:
        raise registry.with_plugin_failures(
            KeyError(f"no {args.what} match {pattern!r}.{registry.suggestion(pattern)} (`fusionbench list "
                     f"{args.what}` lists them all)"))
    rows: list[list[str]] = []
    if args.what == "methods":
        from .method_registry import create_method

        for name in names:
            info = METHODS.get(name).info
            reason = create_method(name).unavailable_reason()
            src = METHODS.get(name).source
            notes = ([f"({src})"] if src != "builtin" else []) + ([f"[unavailable: {reason}]"] if reason else [])
            rows.append([name, info.display_name, info.family, f"v{info.version}", f"colour={info.colour}",
                         "  ".join(notes)])
    elif args.what == "metrics":
        for name in names:
            info = METRICS.get(name).info
            rows.append([name, info.arrow, f"v{info.version}",
                         f"groups={','.join(info.groups)}", info.convention])
    elif args.what == "weights":
        from .weights import ChecksumError, unusable_weights_error

        def state(name: str) -> str:
            """``cached`` (and matching its pinned sha256), ``corrupted`` (it does not: fetch it again) or ``missing``."""
            error = unusable_weights_error([name])
            return "cached" if error is None else "corrupted" if isinstance(error, ChecksumError) else "missing"

        for name in names:
            wf = WEIGHTS.get(name).info
            rows.append([name, state(name), f"{wf.method_dir}/{wf.filename}"])
    else:
        for name in names:
            info = DATASETS.get(name).info
            rows.append([name, info.task, info.description])
        if folder_row:
            rows.append(["folder:PATH", "(json)", "PATH/a and PATH/b with matching file names; "
                         "task, modalities, groups from PATH/dataset.json"])
    for line in aligned(rows):
        print(line.rstrip())
    for failure in registry.plugin_failures:
        print(failure.line(), file=sys.stderr)
    return 0


def _cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .runner import RunConfig, run

    config = RunConfig(
        methods=[args.methods], datasets=[d.strip() for d in args.datasets.split(",")] if args.datasets else [],
        split=None if args.split == "all" else args.split, metrics=args.metrics, workers=args.workers,
        scheduler=args.scheduler, out=args.out, data_dir=args.data_dir, cache=args.cache,
        timeout=args.timeout or None, quiet=args.quiet,
    )
    if args.dry_run:
        from .runner import dry_run

        plan, estimate = dry_run(config)
        print(f"dry run: {len(plan.tasks)} (method, pair) tasks to do, {plan.already_done} already done")
        for source in sorted(set(plan.cost_sources.values())):
            names = sorted(m for m, s in plan.cost_sources.items() if s == source)
            print(f"  expected fusion times from {source}: {', '.join(names)}")
        print(f"estimate: {estimate.summary()}")
        if estimate.by_method:
            print(f"  most expected work: {estimate.top_methods()}")
        return 0
    summary = run(config, command="fusionbench " + " ".join(shlex.quote(a) for a in argv))
    print(f"run {summary.run_id}: {summary.completed} tasks done, {summary.skipped_done} already done, "
          f"{_failures(summary.failures, summary.input_failures)}, {len(summary.unavailable)} methods unavailable, "
          f"{summary.seconds:.1f} s; results in {Path(args.out) / 'results.sqlite'}"
          + (f", summary in {summary.summary_path}" if summary.summary_path else ""))
    if not args.no_report:
        from .report import build_report

        # Table 5 is defined on the paper's 20 Harvard pairs: benchmark only when Harvard data is in the run.
        from .data import dataset_info

        bench = not args.no_bench and any("paper20" in dataset_info(d).splits for d in config.datasets)
        build_report(args.out, args.out, metrics=args.metrics, run_benchmarks=bench, data_dir=args.data_dir,
                     quiet=args.quiet, order=args.order, highlight=args.highlight,
                     exclude_variants=args.exclude_variants)
    return 0


def _failures(tasks: int, inputs: int) -> str:
    """The summary line's failure count: the tasks' failures and the input files that formed no pair."""
    total = f"{tasks + inputs} failures"
    return total + (f" ({inputs} of them unusable input files)" if inputs else "")


def _cmd_fetch(args: argparse.Namespace) -> int:
    if args.what == "weights":
        from .weights import all_weight_names, expand_weight_names, fetch_weights

        if not args.name:
            raise SystemExit("fusionbench fetch weights: name a weight file or `all` "
                             f"(known: {', '.join(all_weight_names())})")
        names = expand_weight_names(args.name)
        failed = []
        for name in names:  # one line per file that cannot be fetched; the others are fetched all the same
            try:
                path = fetch_weights(name, from_dir=args.from_dir)
            except Exception as exc:  # noqa: BLE001 - reported in one line, the next name goes on
                if args.debug:
                    raise
                failed.append(name)
                print(f"fusionbench: {name}: not fetched: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                      file=sys.stderr)
                continue
            print(f"{name}: {path} (sha256 verified)")
        if failed:
            print(f"fusionbench: error: {len(failed)} of {len(names)} weight files not fetched: {', '.join(failed)}",
                  file=sys.stderr)
            return 1
        return 0
    from .fetch import fetch_dataset

    root = fetch_dataset(args.what, args.data_dir, base_url=args.base_url)
    print(f"{args.what}: complete and verified in {root}")
    return 0


def _check_csv_path(csv: Path) -> None:
    """``ValueError`` (one line) unless ``csv`` can be written: not a folder, its folder creatable and writable."""
    if csv.is_dir():
        raise ValueError(f"--csv {csv}: is a folder; give a file name")
    try:
        csv.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--csv {csv}: cannot make its folder ({exc.strerror})") from None
    if not os.access(csv.parent, os.W_OK) or (csv.exists() and not os.access(csv, os.W_OK)):
        raise ValueError(f"--csv {csv}: not writable")


def _cmd_score(args: argparse.Namespace) -> int:
    from .score_folder import evaluate_folder, format_table

    if args.csv:  # refused before any scoring (until session 38 a bad path failed after it, with a bare errno)
        _check_csv_path(Path(args.csv))
    result = evaluate_folder(args.fused, args.a, args.b, args.metrics)
    for problem in result.problems:
        print(problem, file=sys.stderr)
    table = result.table()
    scored_images = len(result.images())
    if scored_images:
        print(format_table(table))
    elif not result.problems:
        print(f"fusionbench: no fused image in {args.fused} has sources of the same name in {args.a} and {args.b}",
              file=sys.stderr)
    for metric, images in result.undefined().items():
        rest = ("no mean" if len(images) == scored_images else "its mean is over the others")
        print(f"{metric}: undefined (NaN) on {len(images)} of {scored_images} images ({', '.join(images)}); {rest}",
              file=sys.stderr)
    coverage = result.coverage_note()
    if coverage:
        print(coverage, file=sys.stderr)
    if args.csv:  # its folder made by _check_csv_path
        table.to_csv(args.csv, index_label="image")
        print(f"wrote {args.csv}", file=sys.stderr)
    print(f"{scored_images} images scored, {len(result.problems)} problems", file=sys.stderr)
    return 0 if scored_images else 1


def _cmd_export_fused(args: argparse.Namespace) -> int:
    from .export_fused import export_fused

    result = export_fused(args.results, args.dest, methods=args.methods, datasets=args.datasets,
                          log=lambda line: print(line, file=sys.stderr))
    print(f"{result.written} fused images written to {args.dest}"
          + (f" (manifest: {result.manifest})" if result.manifest else "")
          + f", {len(result.problems)} problems", file=sys.stderr)
    return 0 if result.written and not result.problems else 1


#: ``compare-fused``'s exit status when it cannot compare (``cmp`` and ``diff`` say 2): 1 means "images differ"
COMPARE_TROUBLE = 2


def _cmd_compare_fused(args: argparse.Namespace) -> int:
    from .compare_fused import STATUSES, compare_fused

    try:  # trouble is 2, never 1 ("images differ"); a bad --csv is said before the comparison (session 39)
        if args.csv:
            _check_csv_path(Path(args.csv))
        comparison = compare_fused(args.a, args.b, methods=args.methods, datasets=args.datasets)
    except Exception as exc:  # noqa: BLE001 - any trouble (an unreadable store is a StoreError) is 2, never 1
        _error_status(exc, args)
        return COMPARE_TROUBLE
    summary = comparison.summary()
    print("\n".join(aligned([list(summary.columns)] + [[str(v) for v in row] for row in summary.itertuples(index=False)])))
    if args.csv:
        try:
            comparison.images.to_csv(args.csv, index=False)
        except OSError as exc:  # a full disk after the check
            print(f"fusionbench: error: --csv {args.csv}: {exc.strerror or exc}", file=sys.stderr)
            return COMPARE_TROUBLE
        print(f"wrote {args.csv}", file=sys.stderr)
    left_out = {status: n for status, n in summary[list(STATUSES[2:])].sum().items() if n}  # not compared
    print(f"{comparison.compared} images compared: {comparison.compared - comparison.different} identical, "
          f"{comparison.different} different"
          + ("; not compared: " + ", ".join(f"{n} {status}" for status, n in left_out.items()) if left_out else ""),
          file=sys.stderr)
    return 0 if comparison.agrees else 1


def _cmd_delegate(module: str, args: argparse.Namespace) -> int:
    mod = importlib.import_module(module)
    return int(mod.run(args) or 0)


#: what ``export-fused`` and ``compare-fused`` read
RESULTS_HELP = "a run's out folder (results.sqlite) or a report's results/ export"


def _add_output_selection(p: argparse.ArgumentParser) -> None:
    """``--methods`` and ``--datasets``: the fnmatch patterns that pick a run's outputs (export, comparison)."""
    p.add_argument("--methods", default=None, help="names or fnmatch patterns, comma-separated (default all)")
    p.add_argument("--datasets", default=None, help="names or fnmatch patterns, comma-separated (default all)")


def build_parser() -> argparse.ArgumentParser:
    """The ``fusionbench`` argument parser: ``list``, ``run``, ``fetch``, ``score``, ``export-fused`` and
    ``compare-fused``, plus
    ``train`` and ``report``, whose arguments their own modules add (``add_arguments``; a command whose module
    needs a missing optional dependency is left out)."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="fusionbench",
                                     description="Benchmark suite for multimodal medical image fusion.")
    parser.add_argument("--version", action="version", version=f"fusionbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered methods, metrics, datasets or weight files")
    p.add_argument("what", choices=["methods", "metrics", "datasets", "weights"])
    p.add_argument("pattern", nargs="?", help="fnmatch pattern, e.g. 'nsct*'")

    p = sub.add_parser("run", help="fuse and score: methods × datasets → OUT/results.sqlite")
    p.add_argument("--methods", default="all", help="'all', or names/patterns separated by commas (default all)")
    p.add_argument("--datasets", default="", help="comma list (default: the built-in datasets)")
    p.add_argument("--split", default="test", help="train, test, paper20, ... or all (default test)")
    p.add_argument("--metrics", default="paper", help="paper, standard, all, or preset names (default paper)")
    p.add_argument("--workers", type=worker_count, default=None,
                   help="local worker processes (default: one per core; 0 = inline)")
    p.add_argument("--scheduler", type=scheduler_address, default=None, help="Dask scheduler address tcp://HOST:PORT, or local:N for a "
                   "new LocalCluster of N worker processes (docs/cluster.md)")
    p.add_argument("--out", default="out", help="output folder (default ./out)")
    p.add_argument("--data-dir", default=None, help="existing data folder, e.g. ../shared/data")
    p.add_argument("--cache", default=None, help="fused-image cache folder (default OUT/fused)")
    p.add_argument("--timeout", type=timeout_seconds, default=600.0,
                   help="per-pair time limit in seconds (0 = none; default 600)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--dry-run", action="store_true", help="plan only: print the tasks to do and the estimated wall "
                   "time (docs/runner.md); runs nothing and writes nothing under OUT")
    p.add_argument("--no-report", action="store_true", help="skip the report stage")
    p.add_argument("--no-bench", action="store_true", help="report without running the asv benchmarks")
    from .report.cli import add_selection_arguments

    add_selection_arguments(p, methods_flag=False)  # --order, --highlight, --exclude-variants for the report

    p = sub.add_parser("fetch", help="download data or weights into the cache")
    from .fetch import bundle_names

    p.add_argument("what", choices=[*bundle_names(), "weights"])
    p.add_argument("name", nargs="?", help="weights: a name or 'all'")
    p.add_argument("--from", dest="from_dir", default=None, help="weights: copy from a folder laid out like shared/official")
    p.add_argument("--data-dir", default=None, help="data: target folder (default $FUSIONBENCH_HOME/data)")
    p.add_argument("--base-url", default=None, help="data: download from this mirror instead")

    p = sub.add_parser("score", help="score a folder of fused images against source folders (no dataset, no run)")
    p.add_argument("--fused", required=True, help="folder of fused images, named like their sources")
    p.add_argument("--a", required=True, help="folder of MRI / visible images")
    p.add_argument("--b", required=True, help="folder of PET / SPECT / CT / infrared images")
    p.add_argument("--metrics", default="paper", help="paper, standard, all, or preset names (default paper)")
    p.add_argument("--csv", default=None, help="also write the table (one row per image, then the mean) as CSV")

    p = sub.add_parser("export-fused", help="copy a run's fused images to DEST/<method>/<dataset>/<pair>.png "
                                            "with a manifest (to publish them)")
    p.add_argument("results", help=RESULTS_HELP)
    p.add_argument("dest", help="folder to write the images and manifest.csv into")
    _add_output_selection(p)

    p = sub.add_parser("compare-fused", help="compare two runs' fused images pixel for pixel, by the digests their "
                                             "stores record (docs/runner.md); exit 0 identical, 1 different, 2 "
                                             "trouble")
    p.add_argument("a", help=RESULTS_HELP)
    p.add_argument("b", help="another out folder, store or results/ export")
    _add_output_selection(p)
    p.add_argument("--csv", default=None, help="also write one row per image (both digests, its status) as CSV")

    for name, module in (("train", "fusionbench.train.cli"), ("report", "fusionbench.report.cli")):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # an optional dependency missing (a bare device image): no such command
            if (exc.name or "").split(".")[0] == "fusionbench":
                raise  # a module of ours missing is a bug, not a missing extra
            continue
        p = sub.add_parser(name, help=_help_line(mod.__doc__ or "", name))
        mod.add_arguments(p)
        p.set_defaults(_delegate=module)
    return parser


def _help_line(doc: str, command: str) -> str:
    """A sub-command's ``--help`` line from its module docstring's first line, without the reST
    literals and the leading ``fusionbench COMMAND ...:`` that names it."""
    line = doc.strip().split("\n")[0].replace("``", "")
    head, sep, rest = line.partition(": ")
    return rest if sep and head.startswith(f"fusionbench {command}") else line


def _resume_hint(args: argparse.Namespace) -> str:
    """What an interrupted command kept, and how to go on."""
    if getattr(args, "command", None) == "train" and getattr(args, "method", None) != "pack":
        out = f" --out {args.out}" if getattr(args, "out", None) else ""
        return (f"the run keeps its last checkpoint (a first Ctrl-C or SIGTERM while it trains writes one at the "
                f"step it stops at); continue it with "
                f"`fusionbench train {args.method} --resume-or-start{out}` and the same options (it starts "
                "afresh if the run was stopped before its first checkpoint)")
    return "everything committed so far is kept (run the same command to resume)"


def main(argv: Sequence[str] | None = None) -> int:
    """The ``fusionbench`` command (the console entry point): parse ``argv`` (default ``sys.argv[1:]``), run the
    command and return its exit status.

    An exception becomes one ``fusionbench: error: ...`` line on stderr and status 1 (``--debug`` re-raises it);
    Ctrl-C returns 130 and SIGTERM 128 + 15, keeping what the command committed.  Bad arguments exit through
    argparse (``SystemExit`` with status 2).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigterm_as_interrupt():
            status = _dispatch(args, argv)
            sys.stdout.flush()  # a reader that went away (`| head`) shows here, not at the interpreter's exit
            return status
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"fusionbench: {'terminated' if terminated else 'interrupted'}; {_resume_hint(args)}", file=sys.stderr)
        return 128 + int(signal.SIGTERM) if terminated else 130
    except BrokenPipeError as exc:
        if args.debug or not _stdout_reader_gone():  # another pipe (a worker's): an error like any other
            return _error_status(exc, args)
        # `fusionbench list methods | head -1`: the reader has what it wanted; say nothing, as a command killed
        # by SIGPIPE would (Python ignores SIGPIPE), and keep the interpreter's last flush from failing too
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), sys.stdout.fileno())
        return 128 + int(signal.SIGPIPE)
    except Exception as exc:
        return _error_status(exc, args)


def console_main() -> None:
    """The ``fusionbench`` console script and ``python -m fusionbench``: :func:`main`, then exit with its status.

    After an interrupt (status 130 or 143) a further Ctrl-C while the interpreter exits ends it at once, quietly:
    ``timeout -s INT`` signals the process and its group, and the second SIGINT used to land in the process pool's
    exit hook (``concurrent.futures``' thread join), printing a traceback after the one-line message (session 39's
    CLI audit).
    Not in :func:`main` itself, which a test or a notebook may call."""
    status = main()
    if status in (130, 128 + int(signal.SIGTERM)):
        # a further Ctrl-C while the interpreter exits ends the process at once, with the same status and no
        # traceback (ignoring it would leave a hung exit hook no way to be stopped; session 39's second review)
        signal.signal(signal.SIGINT, lambda *_: os._exit(status))
    raise SystemExit(status)


def _error_status(exc: Exception, args: argparse.Namespace) -> int:
    """One ``fusionbench: error: ...`` line (and the exception's notes) on stderr; status 1 (``--debug``
    re-raises)."""
    if args.debug:
        raise exc
    # a KeyError's str() is the repr of its message: take the message itself (stripping quotes from str()
    # cut a quote off messages that end in one)
    text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else exc
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    # the first line that says something (matplotlib's parse errors start with a newline: the line was empty)
    print(f"fusionbench: error: {lines[0] if lines else type(exc).__name__}", file=sys.stderr)
    for note in getattr(exc, "__notes__", ()):  # e.g. plugins that failed to load, for an unknown name
        print(f"fusionbench: {note}", file=sys.stderr)
    return 1


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (``poll`` reports an error on its end)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no fileno (a captured stream), no poll on this platform
        return False


def _dispatch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the parsed command; its exit status."""
    if getattr(args, "_delegate", None):
        return _cmd_delegate(args._delegate, args)
    if args.command == "list":
        return _cmd_list(args)
    if args.command == "run":
        return _cmd_run(args, argv)
    if args.command == "fetch":
        return _cmd_fetch(args)
    if args.command == "score":
        return _cmd_score(args)
    if args.command == "export-fused":
        return _cmd_export_fused(args)
    if args.command == "compare-fused":
        return _cmd_compare_fused(args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
