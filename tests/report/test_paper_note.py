"""The note above the paper's Tables 1–3 beside ours names the run's split and quotes the range of the SD means
it shows, computed from them (session 37 audit, finding 3: "means over the Harvard test split" and "between about
30 and 100" were constants, also in a paper20 run's tables)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from fusionbench.report import paper
from fusionbench.report.sections.paper import beside_section


def _scores(values: dict[tuple[str, str], float]) -> pd.DataFrame:
    return pd.DataFrame([(d, "p1", m, "SD", v) for (d, m), v in values.items()],
                        columns=["dataset", "pair", "method", "metric", "value"])


def test_the_note_names_the_split_and_the_measured_sd_range() -> None:
    frames = [paper.beside_table(_scores({("harvard-mri-spect", "sdnet"): 32.65, ("harvard-mri-spect", "mopa"): 50.0,
                                          ("harvard-mri-pet", "cnn"): 91.98}), key) for key in paper.PAPER_TABLES]
    text = paper.note("paper20", frames)
    assert "ours are means over the Harvard paper20 split" in text
    assert "lie between 32.6 and 92.0" in text and "(0.13–0.36)" in text
    assert "test split" not in text and "30 and 100" not in text


def test_without_an_sd_mean_the_note_quotes_no_range() -> None:
    frames = [paper.beside_table(_scores({("harvard-mri-spect", "sdnet"): np.nan}), key) for key in paper.PAPER_TABLES]
    text = paper.note("test", frames)
    assert "between" not in text and "no SD of ours in this run" in text
    assert "ours are means over the Harvard test split" in text


def test_the_written_tables_carry_the_note_of_the_run(tmp_path) -> None:
    empty = pd.DataFrame(columns=["dataset", "pair", "method", "path", "seconds", "run_id"])
    data = SimpleNamespace(scores=_scores({("harvard-mri-spect", "sdnet"): 40.0, ("harvard-mri-pet", "sdnet"): 60.0}),
                           outputs=empty, runs=pd.DataFrame(), methods_meta={})
    ctx = SimpleNamespace(data=data, out=tmp_path, split="paper20", names={"sdnet": "SDNet"}, written=[],
                          split_of=lambda dataset: "paper20")
    beside_section(ctx)
    for key in ("table1", "table3"):
        text = (tmp_path / "tables" / f"paper_vs_ours_{key}.md").read_text()
        assert "Harvard paper20 split" in text and "between 40.0 and 60.0" in text, text
        assert "test split" not in text


def test_the_note_of_a_run_of_every_split_says_all_pairs() -> None:
    """Session 37's review: a run without a split (or ``--split all``) read "the Harvard all split"."""
    from fusionbench.report.paper import note

    for split in ("all", None):
        assert "means over all Harvard pairs of the same task" in note(split, []) and "all split" not in note(split, [])
