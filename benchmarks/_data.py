"""Where the asv benchmarks find the released data (Harvard, TNO)."""
from __future__ import annotations

import os
from pathlib import Path


def data_roots() -> list[Path]:
    """The folders to look in, in this order: ``$FUSIONBENCH_DATA_DIR`` (a run's ``--data-dir``, set by
    the asv stage of ``fusionbench run``), ``$FUSIONBENCH_HOME/data`` (where ``fusionbench fetch`` puts the data,
    :func:`fusionbench.config.data_dir`; before session 34 it was not searched, so a user who had fetched the
    data had built-in pairs timed), then ``../shared/data`` beside the checkout."""
    from fusionbench.config import data_dir

    roots = [os.environ.get("FUSIONBENCH_DATA_DIR"), data_dir(), Path(__file__).resolve().parents[2] / "shared" / "data"]
    return [Path(root) for root in roots if root]
