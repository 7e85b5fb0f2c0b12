"""Where fusionbench keeps its caches: ``$FUSIONBENCH_HOME``, else ``$XDG_CACHE_HOME/fusionbench``, else
``~/.cache/fusionbench`` (an empty ``FUSIONBENCH_HOME`` used to mean the current folder)."""
from __future__ import annotations

from pathlib import Path

from fusionbench.config import home


def test_the_home_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "fb"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert home() == tmp_path / "fb"
    monkeypatch.delenv("FUSIONBENCH_HOME")
    assert home() == tmp_path / "xdg" / "fusionbench"
    monkeypatch.setenv("FUSIONBENCH_HOME", "")  # empty: as if unset, not the current folder
    assert home() == tmp_path / "xdg" / "fusionbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert home() == Path.home() / ".cache" / "fusionbench"
