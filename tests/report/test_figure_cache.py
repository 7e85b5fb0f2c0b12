"""A figure whose stored fused image is gone re-makes it with the method as registered now, cached by its key."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

import fusionbench.api
from fusionbench.method_registry import FusionMethod
from fusionbench.report.sections import fused_figures


def test_the_re_made_image_is_keyed_by_the_method_key_not_only_its_version(tmp_path, monkeypatch) -> None:
    """Retrained weights under the same method version (the pending mopa training) change the method key: the
    figure must fuse again, not reuse the old weights' image."""
    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path))
    calls = []
    monkeypatch.setattr(fusionbench.api, "fuse", lambda m, a, b: calls.append(m) or np.zeros((8, 8), np.uint8))
    ctx = SimpleNamespace(data=SimpleNamespace(outputs=pd.DataFrame(columns=["dataset", "pair", "method", "path"]),
                                               scores=pd.DataFrame({"dataset": ["d"], "method": ["average"]})),
                          refused=set(), remade={}, missing={}, log=lambda *a: None)
    pair = SimpleNamespace(id="1", sha256="ab" * 32, a_path="a.png", b_path="b.png")
    monkeypatch.setattr(FusionMethod, "cache_key", lambda self: "old-weights")
    first = fused_figures.fused_output(ctx, "d", pair, "average")
    assert fused_figures.fused_output(ctx, "d", pair, "average") == first and len(calls) == 1  # same key: reused
    monkeypatch.setattr(FusionMethod, "cache_key", lambda self: "retrained-weights")
    second = fused_figures.fused_output(ctx, "d", pair, "average")
    assert len(calls) == 2 and second != first and ctx.refused == {"average"}


def test_a_re_made_image_is_checked_against_the_scored_ones_pixel_digest(tmp_path, make_pairs, monkeypatch) -> None:
    """The README says whether the figures' re-made images are the images the run scored (by the digests the
    store recorded), not only that they were re-made."""
    import shutil

    from fusionbench.cli import main
    from fusionbench.data import create_dataset
    from fusionbench.report.data import ReportData
    from fusionbench.report.readme import remade_note

    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "home"))
    data, out = make_pairs(tmp_path / "data", 1), tmp_path / "out"
    assert main(["run", "--methods", "average,maximum", "--datasets", f"folder:{data}", "--metrics", "EN",
                 "--out", str(out), "--workers", "0", "--quiet", "--no-report"]) == 0
    shutil.rmtree(out / "fused")  # the cache is gone: the figures re-make the images
    report = ReportData.load(out)
    dataset = report.outputs["dataset"].iloc[0]
    pair = create_dataset(dataset).pairs[0]
    report.outputs.loc[report.outputs["method"] == "maximum", "fused_sha256"] = "0" * 64  # as if another CPU made it
    ctx = SimpleNamespace(data=report, refused=set(), remade={}, missing={}, log=lambda *a: None)
    for method in ("average", "maximum"):
        assert fused_output_is_file(ctx, dataset, pair, method)
    assert ctx.remade == {("average", dataset, pair.id): "identical", ("maximum", dataset, pair.id): "different"}
    note = remade_note(ctx.remade)
    assert "`maximum` differ from the images the run scored" in note
    assert "`average` are pixel for pixel the images the run scored" in note
    report.outputs["fused_sha256"] = None  # a store from before the digests
    ctx.remade.clear()
    assert fused_output_is_file(ctx, dataset, pair, "average")
    assert ctx.remade == {("average", dataset, pair.id): "not recorded"}
    assert "cannot be checked" in remade_note(ctx.remade)
    report.outputs["method_key"] = "a-key-of-an-older-version"
    assert fused_output_is_file(ctx, dataset, pair, "average")
    assert ctx.remade[("average", dataset, pair.id)] == "other version"
    assert "`average` come from another version of the method" in remade_note(ctx.remade)  # the worst status named


def fused_output_is_file(ctx, dataset, pair, method) -> bool:
    path = fused_figures.fused_output(ctx, dataset, pair, method)
    return path is not None and path.is_file()
