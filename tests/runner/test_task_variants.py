"""A method's task variant runs on that task's pairs (issue 16): ``legff`` on IR-VIS pairs runs ``legff.ivf``."""
from __future__ import annotations

import json
from pathlib import Path

from fusionbench.runner import RunConfig, run, task_variant

from _db import rows as _rows


def test_task_variant_lookup() -> None:
    assert task_variant("legff", "IR-VIS") == "legff.ivf"
    assert task_variant("legff", "MRI-PET") is None
    assert task_variant("swinfusion", "MRI-CT") == "swinfusion.ct"
    assert task_variant("u2fusion", "IR-VIS") == "u2fusion.ivf"
    assert task_variant("legff.ivf", "IR-VIS") is None and task_variant("average", "IR-VIS") is None


def test_ir_vis_pairs_run_the_ir_vis_variant(tmp_path: Path, make_pairs) -> None:
    irvis = make_pairs(tmp_path / "irvis", 2, colour=False)
    (irvis / "dataset.json").write_text(json.dumps({"task": "IR-VIS"}))
    medical = make_pairs(tmp_path / "pet", 2, seed=1)
    (medical / "dataset.json").write_text(json.dumps({"task": "MRI-PET"}))
    lines: list[str] = []
    out = tmp_path / "out"
    summary = run(RunConfig(methods=["legff"], datasets=[f"folder:{irvis}", f"folder:{medical}"], metrics="EN",
                            out=str(out), workers=0, quiet=True), log=lines.append)
    assert summary.failures == 0
    db = out / "results.sqlite"
    ran = set(_rows(db, "SELECT dataset, method FROM outputs"))
    assert ran == {(f"folder:{irvis}", "legff.ivf"), (f"folder:{medical}", "legff")}
    skipped = _rows(db, "SELECT dataset, method, reason FROM skipped")
    assert (f"folder:{irvis}", "legff", "on IR-VIS pairs its IR-VIS variant legff.ivf runs instead") in skipped
    assert any("legff.ivf runs instead" in line for line in lines)
    assert ("legff.ivf", "LEGFF (IR/VIS)") in _rows(db, "SELECT method, display_name FROM methods")
    assert "LEGFF (IR/VIS)" in (out / "summary.md").read_text()
