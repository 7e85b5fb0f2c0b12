"""``fusionbench report``: build tables, statistics, claims check, figures and an HTML page from results."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_selection_arguments(parser: argparse.ArgumentParser, *, methods_flag: bool = True) -> None:
    """The method-selection options shared by ``report`` and ``run`` (``run`` has its own ``--methods``)."""
    if methods_flag:
        parser.add_argument("--methods", default=None,
                            help="methods for the main tables: names or fnmatch patterns, comma-separated "
                                 "(default: the paper's ten when mopa was run, else every non-ablation method)")
    parser.add_argument("--order", default=None, help="main-table methods in this order (comma list)")
    parser.add_argument("--highlight", default=None,
                        help="the method under study: highlighted, tested against each other (default mopa)")
    parser.add_argument("--exclude-variants", action="store_true",
                        help="leave registry presets (names with a dot, e.g. mdl.fast) out of the main tables")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``fusionbench report`` options: results folder, ``--out``, metrics, method selection, asv,
    figures, ROI, profiling."""
    parser.add_argument("results", nargs="?", default="out",
                        help="an OUT folder of `fusionbench run`, its results.sqlite, or a report's results/ folder")
    parser.add_argument("--out", default=None, help="report folder (default: the results folder)")
    parser.add_argument("--metrics", default="paper", help="metric group or names for the tables (default paper)")
    add_selection_arguments(parser)
    parser.add_argument("--bench", action=argparse.BooleanOptionalAction, default=False,
                        help="run the asv Table 5 suite first (slow); Table 5 times then come from asv instead of "
                             "the run's own seconds")
    parser.add_argument("--asv-results", default=None, help="asv results folder to take Table 5 times from")
    parser.add_argument("--data-dir", default=None, help="data folder for the figures (default: the run's)")
    parser.add_argument("--full", action="store_true",
                        help="full resolution: 200 dpi figures with PDF twins, embedded in a single-file page")
    parser.add_argument("--mean-only", action="store_true", help="LaTeX tables with means only (no std columns)")
    parser.add_argument("--roi", default=None, help="zoom-inset window ROW,COL,SIZE in pixels (default: the "
                        "functional image's highest-activity region)")
    parser.add_argument("--no-profile", action="store_true", help="Table 5 without parameters/GFLOPs profiling")
    parser.add_argument("--quiet", action="store_true")


def parse_roi(text: str | None) -> tuple[int, int, int] | None:
    """``--roi ROW,COL,SIZE`` (pixels, SIZE > 0) as a tuple; ``None`` when not given; ``ValueError`` when malformed."""
    if not text:
        return None
    try:
        parts = [int(x) for x in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or parts[2] <= 0 or parts[0] < 0 or parts[1] < 0:
        raise ValueError(f"--roi {text!r}: expected ROW,COL,SIZE (three integers, ROW and COL >= 0, SIZE > 0)")
    return parts[0], parts[1], parts[2]


def run(args: argparse.Namespace) -> int:
    """Build the report from parsed ``fusionbench report`` arguments (:func:`fusionbench.report.build.build_report`).
    Returns 0."""
    if args.asv_results and not Path(args.asv_results).is_dir():  # before: ignored without a word
        raise ValueError(f"--asv-results {args.asv_results}: no such folder (asv writes its results under "
                         ".asv/results of the checkout)")
    from .build import build_report

    build_report(args.results, args.out, metrics=args.metrics, run_benchmarks=args.bench,
                 asv_results=args.asv_results, data_dir=args.data_dir, quiet=args.quiet, methods=args.methods,
                 order=args.order, highlight=args.highlight, exclude_variants=args.exclude_variants, full=args.full,
                 mean_only=args.mean_only, roi=parse_roi(args.roi), profile=not args.no_profile)
    return 0
