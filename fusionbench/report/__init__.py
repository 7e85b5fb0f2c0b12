"""Reports: the paper's Tables 1–5 and figures from a results store, with statistics and an HTML view."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def build_report(*args: Any, **kwargs: Any) -> Path:
    """See :func:`fusionbench.report.build.build_report` (imported lazily: matplotlib is heavy)."""
    from .build import build_report as _build

    return _build(*args, **kwargs)


__all__ = ["build_report"]
