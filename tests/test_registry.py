"""The registry: wildcards, natural sort, suggestions, variants, metadata, plugins."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fusionbench
from fusionbench.method_registry import METHODS, register_method
from fusionbench.registry import Registry, natural_key


def test_natural_sort_and_wildcards() -> None:
    reg: Registry = Registry("thing", "fusionbench.test_things")
    for name in ["m10", "m2", "m1", "other", "m2.tag"]:
        reg.add(name, object, None)
    assert reg.list() == ["m1", "m2", "m2.tag", "m10", "other"]
    assert reg.list("m*", exclude_filters="*.tag") == ["m1", "m2", "m10"]
    assert reg.list(["other", "m1"]) == ["m1", "other"]
    assert sorted(["a10", "a2"], key=natural_key) == ["a2", "a10"]


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(KeyError, match="Did you mean: average"):
        fusionbench.create_method("averag")


def test_duplicate_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_method("average")(lambda a, b: a)


def test_variant_and_overrides_change_the_cache_key() -> None:
    @register_method("test_scale", display_name="Scale", params={"k": 0.5})
    @register_method("test_scale.double", display_name="Scale x2", params={"k": 1.0})
    def scale(a, b, *, k):
        return np.clip((a + b) * k, 0, 1)

    try:
        base, double = fusionbench.create_method("test_scale"), fusionbench.create_method("test_scale.double")
        assert base.params == {"k": 0.5} and double.params == {"k": 1.0}
        assert base.cache_key() != double.cache_key()
        assert fusionbench.create_method("test_scale", k=None).params == {"k": 0.5}  # None dropped
        assert fusionbench.create_method("test_scale", k=0.25).cache_key() != base.cache_key()
        assert "test_scale.double" in fusionbench.list_methods("test_scale*")
    finally:
        METHODS.remove("test_scale")
        METHODS.remove("test_scale.double")


def test_metadata_of_builtin_methods() -> None:
    info = fusionbench.method_info("dwt")
    assert info.display_name == "DWT" and info.colour == "luma" and info.version
    assert set(fusionbench.list_methods("*")) >= {"average", "maximum", "dwt", "laplacian_pyramid"}


def test_class_methods_are_built_once() -> None:
    built = []

    @register_method("test_class_method")
    class Doubler:
        def __init__(self):
            built.append(1)

        def __call__(self, a, b):
            return np.clip(a * 2, 0, 1)

    try:
        m = fusionbench.create_method("test_class_method")
        a = np.zeros((8, 8), np.float32)
        m(a, a)
        m(a, a)
        assert built == [1]
    finally:
        METHODS.remove("test_class_method")


def test_plugin_is_listed_and_broken_plugin_is_reported(plugin_env, tmp_path) -> None:
    # cwd outside the checkout: `python -m` puts the cwd first on sys.path, and the source tree's
    # fusionbench/ (without the mapped methods/ and metrics/) must not shadow the installed package
    out = subprocess.run([sys.executable, "-m", "fusionbench", "list", "methods", "demo*"], env=plugin_env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "demo_min" in out.stdout and "plugin fusionbench-demo-plugin" in out.stdout
    assert "broken" in out.stderr and "deliberately broken" in out.stderr
    assert "Traceback" not in out.stderr


def test_plugin_method_runs(plugin_env, tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    out = subprocess.run(
        [sys.executable, "-m", "fusionbench", "run", "--methods", "demo_min", "--datasets", f"folder:{data}",
         "--metrics", "EN,SD", "--out", str(tmp_path / "out"), "--workers", "1", "--quiet", "--no-report"],
        env=plugin_env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    import sqlite3

    con = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    rows = con.execute("SELECT method, COUNT(*) FROM scores GROUP BY method").fetchall()
    assert rows == [("demo_min", 4)]
