"""Build tables, statistics, figures and an HTML page from a results store."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="?", default="out", help="an OUT folder of `fusionbench run` or its results.sqlite")
    parser.add_argument("--out", default=None, help="report folder (default: the results folder)")
    parser.add_argument("--metrics", default="paper", help="metric group or names for the tables (default paper)")
    parser.add_argument("--bench", action="store_true", help="run the asv Table 5 suite first (slow)")
    parser.add_argument("--asv-results", default=None, help="asv results folder (default .asv/results)")
    parser.add_argument("--data-dir", default=None, help="data folder for the figures (default: the run's)")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from .build import build_report

    build_report(args.results, args.out, metrics=args.metrics, run_benchmarks=args.bench,
                 asv_results=args.asv_results, data_dir=args.data_dir, quiet=args.quiet)
    return 0
