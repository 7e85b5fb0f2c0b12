"""A figure whose stored fused image is gone re-makes it with the method as registered now, cached by its key."""
from __future__ import annotations

import tempfile
from types import SimpleNamespace

import numpy as np
import pandas as pd

import fusionbench.api
from fusionbench.method_registry import FusionMethod
from fusionbench.report.sections import fused_figures


def test_the_re_made_image_is_keyed_by_the_method_key_not_only_its_version(tmp_path, monkeypatch) -> None:
    """Retrained weights under the same method version (the pending mopa training) change the method key: the
    figure must fuse again, not reuse the old weights' image."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    calls = []
    monkeypatch.setattr(fusionbench.api, "fuse", lambda m, a, b: calls.append(m) or np.zeros((8, 8), np.uint8))
    ctx = SimpleNamespace(data=SimpleNamespace(outputs=pd.DataFrame(columns=["dataset", "pair", "method", "path"]),
                                               scores=pd.DataFrame({"dataset": ["d"], "method": ["average"]})),
                          refused=set(), missing={}, log=lambda *a: None)
    pair = SimpleNamespace(id="1", sha256="ab" * 32, a_path="a.png", b_path="b.png")
    monkeypatch.setattr(FusionMethod, "cache_key", lambda self: "old-weights")
    first = fused_figures.fused_output(ctx, "d", pair, "average")
    assert fused_figures.fused_output(ctx, "d", pair, "average") == first and len(calls) == 1  # same key: reused
    monkeypatch.setattr(FusionMethod, "cache_key", lambda self: "retrained-weights")
    second = fused_figures.fused_output(ctx, "d", pair, "average")
    assert len(calls) == 2 and second != first and ctx.refused == {"average"}
