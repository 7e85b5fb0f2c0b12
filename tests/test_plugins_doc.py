"""The examples of docs/plugins.md run as written: a method, a metric, a dataset and a weight file, one file each.

Each example is the fenced block after a ``<!-- plugin-example: KIND FILE -->`` marker.  The test
writes it to FILE in a temporary folder and runs a short driver in a fresh interpreter there (so
the registrations do not leak into other tests), against the installed package.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
MARKER = re.compile(r"^<!-- plugin-example: (\w+) (\S+) -->\n```\w*\n(.*?)^```$", re.S | re.M)


def examples(text: str) -> dict[str, tuple[str, str]]:
    """``{kind: (file name, code)}`` of the marked examples of a Markdown text."""
    return {kind: (name, code) for kind, name, code in MARKER.findall(text)}


EXAMPLES = examples(DOC.read_text(encoding="utf-8"))

# What each example must make work, run after writing the example file into the current folder.
DRIVERS = {
    "method": """
        import numpy as np
        import fusionbench
        import my_methods  # noqa: F401  (registers on import)
        from fusionbench.method_registry import METHODS

        assert fusionbench.list_methods("my_rule*") == ["my_rule", "my_rule.strong"]
        assert METHODS.get("my_rule").source == "user (my_methods)"
        a = np.full((16, 16), 200, np.uint8)
        b = np.full((16, 16), 100, np.uint8)
        assert int(fusionbench.fuse("my_rule", a, b)[0, 0]) == 150
        assert int(fusionbench.fuse("my_rule.strong", a, b)[0, 0]) == 180
        assert int(fusionbench.fuse("my_rule", a, b, k=1.0)[0, 0]) == 200
    """,
    "metric": """
        import numpy as np
        import fusionbench
        import my_metrics  # noqa: F401
        from fusionbench.metric_registry import METRICS

        f = np.arange(256, dtype=np.uint8).reshape(16, 16)
        scores = fusionbench.metrics.evaluate(f, f, f, "MG,EN")
        assert scores["MG"] == 127.5 and scores["EN"] == 8.0, scores
        floats = fusionbench.metrics.evaluate(f / 255.0, f / 255.0, f / 255.0, "MG,EN", data_range=1.0)
        assert floats == scores, floats  # the same on the uint8 scale (session 37: MG gave 0.5 here)
        assert METRICS.get("MG").source == "user (my_metrics)"
        assert "MG" in fusionbench.resolve_metrics("all") and "MG" not in fusionbench.resolve_metrics("paper")
    """,
    "dataset": """
        import json, shutil
        from pathlib import Path
        import numpy as np
        from PIL import Image
        import fusionbench
        from fusionbench.data import dataset_title

        root = Path("clinic")
        for side in ("a", "b"):
            (root / side).mkdir(parents=True)
        rng = np.random.default_rng(0)
        for stem in ("case01_s10", "case01_s11", "case02_s07"):
            Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(root / "a" / f"{stem}.png")
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), "RGB").save(root / "b" / f"{stem}.png")
        shutil.copy("dataset.json", root / "dataset.json")

        ds = fusionbench.create_dataset(f"folder:{root}")
        pairs = ds.pairs
        assert ds.task == "MRI-PET" and [p.group for p in pairs] == ["case01", "case01", "case02"], pairs
        assert {p.task for p in pairs} == {"MRI-PET"}
        assert dataset_title(f"folder:{root}") == "MRI-PET (my clinic)"
    """,
    "weights": """
        import os, tempfile
        from pathlib import Path
        home = Path(tempfile.mkdtemp())
        os.environ["FUSIONBENCH_HOME"] = str(home)
        import numpy as np
        import fusionbench
        import my_blend  # noqa: F401
        from fusionbench.weights import WEIGHTS, ChecksumError, cached_path, fetch_weights

        assert WEIGHTS.get("my_blend").source == "user (my_blend)"

        reason = fusionbench.create_method("my_blend").unavailable_reason()
        assert reason and "fusionbench fetch weights my_blend" in reason, reason
        official = home / "official" / "my_blend" / "weights"
        official.mkdir(parents=True)
        (official / "blend.txt").write_text("0.25\\n")
        fetch_weights("my_blend", from_dir=home / "official")
        a = np.full((8, 8), 200, np.uint8)
        b = np.full((8, 8), 100, np.uint8)
        assert int(fusionbench.fuse("my_blend", a, b)[0, 0]) == 125  # 0.25*200 + 0.75*100

        cached_path("my_blend").write_text("0.75\\n")  # changed on disk after the fetch
        try:
            fusionbench.fuse("my_blend", a, b)
        except ChecksumError as exc:
            assert "blend.txt" in str(exc) and "\\n" not in str(exc), exc
        else:
            raise AssertionError("a changed weight file was used")
    """,
}


def test_doc_has_one_example_of_each_kind() -> None:
    assert set(EXAMPLES) == set(DRIVERS), f"docs/plugins.md examples: {sorted(EXAMPLES)}"


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_plugins_doc_example_runs(kind: str, tmp_path: Path) -> None:
    name, code = EXAMPLES[kind]
    (tmp_path / name).write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}  # the example module sits in cwd
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(DRIVERS[kind])], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, f"docs/plugins.md {kind} example ({name}):\n{out.stderr[-3000:]}"
