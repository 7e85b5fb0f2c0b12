"""The registry: wildcards, natural sort, suggestions, variants, metadata, plugins."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fusionbench
from fusionbench.method_registry import METHODS, register_method
from fusionbench.registry import Registry, builtin_registrations, natural_key, registrations_from


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


def test_find_resolves_like_get_and_answers_none_for_unknown_names() -> None:
    """``find`` is ``get`` without the error: the same entry for a name or a prefix family, ``None`` otherwise."""
    from fusionbench.data import DATASETS

    assert METHODS.find("average") is METHODS.get("average")
    assert METHODS.find("no-such-method") is None
    assert DATASETS.find("folder:/tmp/x") is DATASETS.get("folder:/tmp/x")
    assert DATASETS.find("nofamily:/tmp/x") is None


def test_duplicate_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered by builtin; user"):
        register_method("average")(lambda a, b: a)


def _fresh_python(code: str, cwd) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter (nothing registered or looked up yet), outside the checkout."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_user_entry_named_like_a_builtin_before_any_lookup(tmp_path) -> None:
    # issue 14.5: in a fresh process the first registration used to come before the built-ins, so the
    # built-ins' import then failed on the clash and every later list_methods() raised, for good.
    out = _fresh_python("""
        import fusionbench
        from fusionbench.method_registry import METHODS
        try:
            fusionbench.register_method("average")(lambda a, b: a)
        except ValueError as exc:
            print("CLASH", exc)
        names = fusionbench.list_methods()
        assert len(fusionbench.list_methods()) == len(names) > 20 and "dwt" in names, names
        assert METHODS.get("average").source == "builtin"
        assert METHODS.get("average").obj.__module__ == "fusionbench.methods.basic"

        @fusionbench.register_method("my_user_method")
        def mine(a, b):
            return a
        print("SOURCE", METHODS.get("my_user_method").source)
    """, tmp_path)
    assert out.returncode == 0, out.stderr
    clash = [line for line in out.stdout.splitlines() if line.startswith("CLASH")]
    assert len(clash) == 1 and "'average'" in clash[0] and "builtin" in clash[0] and "user (" in clash[0]
    assert "SOURCE user (__main__)" in out.stdout


def test_every_registry_loads_builtins_before_a_user_entry(tmp_path) -> None:
    out = _fresh_python("""
        import numpy as np
        import fusionbench
        from fusionbench.data import DATASETS
        from fusionbench.metric_registry import METRICS
        from fusionbench.weights import WEIGHTS

        for reg, name, args in ((METRICS, "AG", ()), (DATASETS, "tno", ()), (WEIGHTS, "ifcnn_max", ())):
            try:
                reg.add(name, lambda *a: 0.0, None)
            except ValueError as exc:
                assert "already registered by builtin" in str(exc), exc
            else:
                raise AssertionError(f"{reg.kind} {name} registered over the built-in")
        assert "EN" in fusionbench.list_metrics() and "harvard-mri-ct" in fusionbench.list_datasets()
    """, tmp_path)
    assert out.returncode == 0, out.stderr


def test_plugin_source_and_builtin_reimport() -> None:
    reg: Registry = Registry("thing", "fusionbench.test_things")
    with registrations_from("plugin demo-dist"):
        reg.add("p", object, None)
    assert reg.get("p").source == "plugin demo-dist"
    with builtin_registrations():
        reg.add("b", natural_key, None)
        reg.add("b", natural_key, None)  # the same built-in object again: a re-imported module
    with pytest.raises(ValueError, match="'p' is already registered by plugin demo-dist; user"):
        reg.add("p", natural_key, None, module="my_script")
    with pytest.raises(ValueError, match="lower-case"):
        reg.add("Upper", object, None)
    assert reg.add("p", object, None, module="my_script").source == "plugin demo-dist"  # identical: a no-op
    reg.add("p", natural_key, None, override=True, module="my_script")
    assert reg.get("p").source == "user (my_script)" and reg.info("b") is None


_CELL = '''
from fusionbench import register_method, register_metric

@register_method("test_cell_rule", display_name="Cell rule", family="pixel", version=VERSION)
def cell_rule(a, b):
    return (a + b) / 2

@register_metric("TEST_CELL_MEAN", needs_sources=False, version=VERSION)
def cell_mean(fused, a=None, b=None, **kw):
    return float(fused.mean())
'''


def test_a_registration_cell_run_again_replaces_its_entries() -> None:
    """A notebook cell run twice defines new functions of the same module (``__main__``) and ``__qualname__``: the
    second run replaces the entries (it raised "already registered"; docs/plugins.md promises it works).  Another
    function of that module, or the same function name in another module, under the same name still clashes."""
    from fusionbench.metric_registry import METRICS

    def run_cell(version: str, module: str = "__main__", code: str = _CELL) -> dict:
        namespace = {"__name__": module, "VERSION": version}
        exec(compile(code, f"<cell {version}>", "exec"), namespace)
        return namespace

    try:
        first, second = run_cell("1"), run_cell("2")
        for reg, name, fn in ((METHODS, "test_cell_rule", "cell_rule"), (METRICS, "TEST_CELL_MEAN", "cell_mean")):
            entry = reg.get(name)
            assert entry.obj is second[fn] is not first[fn] and entry.info.version == "2"
            assert entry.source == "user (__main__)"
        with pytest.raises(ValueError, match=r"'test_cell_rule' is already registered by user \(__main__\); "
                                             r"user \(other_notebook\) cannot"):
            run_cell("3", module="other_notebook")
        with pytest.raises(ValueError, match="'test_cell_rule' is already registered by user"):
            run_cell("4", code=_CELL.replace("def cell_rule", "def another_rule"))
        assert METHODS.get("test_cell_rule").obj is second["cell_rule"]
    finally:
        METHODS.remove("test_cell_rule")
        METRICS.remove("TEST_CELL_MEAN")


def _exec_cell(code: str, module: str = "__main__") -> dict:
    """Run ``code`` as a notebook cell of ``module`` (its functions and classes get that ``__module__``)."""
    namespace = {"__name__": module}
    exec(compile(code, "<cell>", "exec"), namespace)
    return namespace


_UNNAMED_CELL = '''
rule = lambda a, b: a

def make_rule(k):
    def rule(a, b):
        return k * a
    return rule

class Model:
    def __init__(self, k):
        self.k = k

    def fuse(self, a, b):
        return self.k * a
'''


_FAMILY_CELL = '''
from fusionbench.data.base import register_dataset

@register_dataset("test_cell_family", prefix=True, description=DESCRIPTION)
def cell_family(arg, data_dir=None):
    raise NotImplementedError
'''


def test_a_cell_registering_a_dataset_family_run_again_replaces_it() -> None:
    """``register_dataset(..., prefix=True)`` follows the rule of every other registration: a cell run again
    replaces its family (it raised "already registered by user (__main__)"); another factory clashes, and
    ``override=True``, which the clash message suggests, replaces on purpose (``register_dataset`` had none)."""
    from fusionbench.data.base import DATASETS, register_dataset

    def run_cell(description: str, code: str = _FAMILY_CELL) -> dict:
        namespace = {"__name__": "__main__", "DESCRIPTION": description}
        exec(compile(code, "<cell>", "exec"), namespace)
        return namespace

    try:
        first, second = run_cell("one"), run_cell("two")
        entry = DATASETS.get("test_cell_family:x")
        assert entry.obj is second["cell_family"] is not first["cell_family"] and entry.info.description == "two"
        assert entry.source == "user (__main__)"
        with pytest.raises(ValueError, match=r"dataset 'test_cell_family:' is already registered by user"):
            run_cell("three", code=_FAMILY_CELL.replace("def cell_family", "def other_family"))

        def replacement(arg, data_dir=None):  # noqa: ANN001, ANN202
            raise NotImplementedError

        register_dataset("test_cell_family", prefix=True, override=True)(replacement)
        assert DATASETS.get("test_cell_family:y").obj is replacement
    finally:
        DATASETS._prefix_factories.pop("test_cell_family", None)


def test_lambdas_factory_functions_and_bound_methods_under_one_name_clash() -> None:
    """Only a ``def`` or ``class`` run again is a redefinition: a lambda, a factory's ``<locals>`` function or a bound
    method shares its qualified name with others that are not the same thing, and must clash, not replace silently."""
    reg: Registry = Registry("thing", "fusionbench.test_things")
    first, second = _exec_cell(_UNNAMED_CELL), _exec_cell(_UNNAMED_CELL)  # the cell run twice
    for name, one, other in (("lambda", first["rule"], second["rule"]),
                             ("factory", first["make_rule"](1), first["make_rule"](2)),
                             ("bound", first["Model"](1).fuse, first["Model"](2).fuse)):
        reg.add(name, one, None)
        with pytest.raises(ValueError, match=rf"'{name}' is already registered by user \(__main__\); "
                                             r"user \(__main__\) cannot"):
            reg.add(name, other, None)
        assert reg.get(name).obj is one
    reg.add("model", first["Model"], None)  # the class itself, defined again by the cell: replaced
    assert reg.add("model", second["Model"], None).obj is second["Model"]


def test_a_builtin_registration_of_a_new_object_of_the_same_qualified_name_replaces_it(tmp_path) -> None:
    """Re-importing a built-in module (``importlib.reload``) gives new objects of the same qualified names, a
    factory's too: they replace their entries; it raised "already registered by builtin; builtin cannot"."""
    import types

    reg: Registry = Registry("thing", "fusionbench.test_things")
    again = types.FunctionType(natural_key.__code__, natural_key.__globals__, natural_key.__name__)
    factory = _exec_cell(_UNNAMED_CELL, module="fusionbench.methods.made_up")["make_rule"]
    made = factory(1)
    with builtin_registrations():
        reg.add("b", natural_key, None)
        assert again is not natural_key and reg.add("b", again, None).obj is again
        reg.add("made", made, None)
        assert reg.add("made", factory(2), None).obj is not made  # any object, ``<locals>`` or not
    assert reg.get("b").source == reg.get("made").source == "builtin"
    out = _fresh_python("""
        import importlib
        import fusionbench.methods.basic as basic
        from fusionbench.method_registry import METHODS

        old = {name: METHODS.get(name).obj for name in ("average", "maximum")}
        importlib.reload(basic)
        for name in old:
            entry = METHODS.get(name)
            assert entry.obj is getattr(basic, name) is not old[name] and entry.source == "builtin", entry
    """, tmp_path)
    assert out.returncode == 0, out.stderr


def test_register_decorator_is_the_same_pattern() -> None:
    reg: Registry = Registry("thing", "fusionbench.test_things")

    @reg.register(info={"k": 1})
    def Alpha():  # noqa: N802 - the registered name is lower-cased
        return 1

    @reg.register("beta")
    class Beta:
        pass

    assert reg.list() == ["alpha", "beta"] and reg.info("alpha") == {"k": 1} and reg.info("beta") is Beta
    assert reg.get("alpha").obj is Alpha and "beta" in reg and len(reg) == 2
    with pytest.raises(KeyError, match="Did you mean: alpha"):
        reg.get("alpah")


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


def test_an_unknown_parameter_is_refused_when_the_method_is_created() -> None:
    """A typo in an override (``levle=3``) fails at ``create_method``, naming the method's parameters, not later in
    every pair (functions) or never (``mopa`` takes ``**params`` and builds its network from the keys it knows)."""
    import pytest

    with pytest.raises(TypeError, match="method 'dwt' has no parameter 'levle'; its parameters: .*level"):
        fusionbench.create_method("dwt", levle=3)
    with pytest.raises(TypeError, match="method 'mopa' has no parameter 'widht'; its parameters: .*width"):
        fusionbench.create_method("mopa", widht=6)
    with pytest.raises(TypeError, match="no parameter 'a'"):  # the image arguments are not parameters
        fusionbench.create_method("dwt", a=1)
    assert fusionbench.create_method("mopa", width=4, threads=1).params["width"] == 4

    @register_method("test_open", params={})
    class Open:  # **kwargs and no registered params: nothing to check against
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def __call__(self, a, b):
            return a

    @register_method("test_images_named_otherwise", params={"k": 1.0})
    def blend(mri, pet, *, k):
        return k * mri + (1 - k) * pet

    try:
        assert fusionbench.create_method("test_open", anything=1).params == {"anything": 1}
        assert fusionbench.create_method("test_images_named_otherwise", k=0.5).params == {"k": 0.5}
        with pytest.raises(TypeError, match="no parameter 'mri'"):
            fusionbench.create_method("test_images_named_otherwise", mri=1)
    finally:
        METHODS.remove("test_open")
        METHODS.remove("test_images_named_otherwise")


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
    # the run records which release of the plugin made the results (session 37's audit: only its name)
    import json

    versions = json.loads(con.execute("SELECT versions FROM runs").fetchone()[0])
    assert versions["plugin fusionbench-demo-plugin"] == "0.1.0", versions


def test_list_weights_is_the_same_listing(capsys, tmp_path, monkeypatch) -> None:
    from fusionbench.cli import main
    from fusionbench.weights import WEIGHTS

    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path))
    assert main(["list", "weights", "ifcnn*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == WEIGHTS.list("ifcnn*") and lines
    assert all(line.split()[1] == "missing" for line in lines)


def test_unknown_names_carry_the_plugins_that_failed_to_load(capsys, monkeypatch, tmp_path) -> None:
    """A name a broken plugin would have registered: "unknown method" / "no match" say which plugin failed and
    how, one line each (they used to say nothing, the failure printed only by an unfiltered list)."""
    from fusionbench.cli import main
    from fusionbench.registry import PluginFailure

    failure = PluginFailure("fusionbench.methods", "clash", "clashplug",
                            "ValueError: method 'average' is already registered by builtin", "")
    METHODS.ensure_loaded()
    monkeypatch.setattr(METHODS, "plugin_failures", [failure])
    with pytest.raises(KeyError) as info:
        METHODS.get("clash_ok")
    assert info.value.__notes__ == [failure.line()]
    expected = ("fusionbench: plugin clash (clashplug) failed to load and was skipped: "
                "ValueError: method 'average' is already registered by builtin")
    for argv, error in ((["list", "methods", "clash*"], "no methods match 'clash*'"),
                        (["run", "--methods", "clash_ok", "--dry-run"], "unknown method 'clash_ok'"),
                        (["run", "--methods", "clash*", "--dry-run"], "no method matches 'clash*'")):
        assert main([*argv, "--out", str(tmp_path)] if argv[0] == "run" else argv) == 1
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith(f"fusionbench: error: {error}") and err[1:] == [expected], err


@pytest.mark.parametrize("dry", [True, False])
def test_a_run_names_the_plugins_that_failed_to_load(capsys, monkeypatch, tmp_path, dry) -> None:
    """``run --methods all`` (and its dry run) used to leave a broken plugin's methods out of "all" without a
    word; now the run's log names it first (the packaging audit of session 26)."""
    from fusionbench.cli import main
    from fusionbench.registry import PluginFailure

    failure = PluginFailure("fusionbench.methods", "broken", "brokenfuse.methods",
                            "ModuleNotFoundError: No module named 'nowhere'", "")
    METHODS.ensure_loaded()
    monkeypatch.setattr(METHODS, "plugin_failures", [failure])
    argv = ["run", "--methods", "average*", "--metrics", "EN", "--workers", "0", "--out", str(tmp_path),
            "--no-report", *(["--dry-run"] if dry else ["--quiet"])]
    assert main(argv) == 0
    assert (f"{failure.line()}; no method it registers is in this run") in capsys.readouterr().err.splitlines()


def test_an_unknown_name_differing_only_in_case_is_suggested() -> None:
    from fusionbench.metric_registry import create_metric

    with pytest.raises(KeyError, match=r"unknown metric 'ssim'\. Did you mean: SSIM\?"):
        create_metric("ssim")


def test_broken_entry_point_metadata_is_reported_not_silent(monkeypatch) -> None:
    from fusionbench import registry as registry_module
    from fusionbench.registry import Registry

    def broken(**kwargs):
        raise ValueError("a distribution's entry_points.txt does not parse")

    monkeypatch.setattr(registry_module.importlib_metadata, "entry_points", broken)
    reg = Registry("thing", "fusionbench.test_things")
    assert reg.names() == []
    assert [f.name for f in reg.plugin_failures] == ["(entry points)"]
    assert "does not parse" in reg.plugin_failures[0].line()


def test_spelling_variants_and_the_literature_names_of_metrics_are_answered(capsys) -> None:
    """Users ask for Q_CV, Q_Y, QAB/F, Qw, VIF (anchors A.2: TC-MoA#9, DATFuse#11): before, no suggestion, or
    Q_W for MEFB's 'Qw', which is Piella's Q_E; `list metrics 'ssim*'` matched nothing."""
    from fusionbench.cli import main
    from fusionbench.metric_registry import create_metric, list_metrics

    for asked, told in (("Q_CV", "Did you mean: Qcv?"), ("Q_Y", "Did you mean: Qy?"),
                        ("QAB/F", "Did you mean: Qabf?"), ("ms-ssim", "Did you mean: MS_SSIM?"),
                        ("Qw", "MEFB's 'Qw' is Piella's edge-dependent index: preset Q_E"),
                        ("VIF", "VIFp_sum (Sheikh-Bovik pixel VIF")):
        with pytest.raises(KeyError) as caught:
            create_metric(asked)
        assert told in str(caught.value), (asked, caught.value)
    assert list_metrics("ssim*") == list_metrics("SSIM*") == ["SSIM", "SSIM.cddfuse", "SSIM.tang", "SSIM.vifb"]
    assert main(["list", "metrics", "Qw"]) != 0
    assert "preset Q_E (Q_E.mefb reproduces MEFB)" in capsys.readouterr().err
    reg: Registry = Registry("thing", "fusionbench.test_things")
    reg.add("m1", object, None)
    assert reg.list("M*") == ["m1"] and reg.suggestion("zzz") == ""


def test_a_cache_token_enters_the_cache_key() -> None:
    import fusionbench
    from fusionbench.method_registry import METHODS, register_method

    state = {"token": "aaaa"}

    def tokened(a, b):
        return a

    tokened.cache_token = lambda **params: state["token"]
    register_method("test_tokened")(tokened)
    try:
        first = fusionbench.create_method("test_tokened").cache_key()
        state["token"] = "bbbb"  # retrained weights: another sha256
        assert fusionbench.create_method("test_tokened").cache_key() != first
    finally:
        METHODS.remove("test_tokened")


def test_cache_keys_with_function_and_set_params_are_the_same_in_every_process() -> None:
    """A parameter JSON cannot write (a function, a set) entered the key by its repr, which holds a memory address
    or follows the per-process string hash: the key changed from run to run (every resume fused again), and a
    worker refuses a task whose key is not its own (``MethodMismatch``)."""
    import subprocess
    import sys

    code = ("import numpy as np\n"
            "from fusionbench.method_registry import create_method, register_method\n"
            "register_method('test_key_params', params={'reduce': np.mean, 'bands': {'low', 'mid', 'high'}})("
            "lambda a, b, reduce=None, bands=None: a)\n"
            "print(create_method('test_key_params').cache_key())\n")
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout.strip()
            for seed in ("1", "2", "3")}
    assert len(keys) == 1 and len(next(iter(keys))) == 16


def test_objects_with_a_default_repr_enter_the_key_by_their_fields() -> None:
    """Without its address, every instance of a class with the default repr would read the same: two differently
    configured instances must not share a cache key (a cached output of one reused for the other)."""
    from fusionbench.method_registry import stable_repr

    class Rule:
        def __init__(self, weight: float) -> None:
            self.weight = weight

    assert stable_repr(Rule(0.5)) == stable_repr(Rule(0.5)) != stable_repr(Rule(0.7))
    assert "0x" not in stable_repr(Rule(0.5)) and "0x" not in stable_repr(object())


_FIRST_USE_FROM_THREADS = """
import sys, threading
import numpy as np
import fusionbench
from fusionbench.metric_registry import create_metric
rng = np.random.default_rng(0)
a, b = rng.integers(0, 256, (24, 20), dtype=np.uint8), rng.integers(0, 256, (24, 20), dtype=np.uint8)
errors, barrier = [], threading.Barrier(6)
def work(i):
    barrier.wait()
    try:
        if i < 4:
            fusionbench.fuse(["dwt", "average", "laplacian_pyramid", "maximum"][i], a, b)
        else:
            create_metric(["SSIM", "Qabf"][i - 4])
    except Exception as exc:
        errors.append(f"thread {i}: {type(exc).__name__}: {exc}")
threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
assert not errors, errors
"""


def test_the_first_lookups_from_several_threads_wait_for_the_registry_to_load() -> None:
    """Six threads of a fresh interpreter make its first registry lookups at once (four fusions, two metric
    presets).  Until session 30 a thread that asked while another was importing the built-ins found the loading
    flag set and looked the name up in a half-filled registry: ``KeyError: unknown method 'dwt'`` in 2-3 of 4
    threads, every time (a thread-safety audit; a ``dask worker --nthreads 2`` failed 11 of 16 tasks so)."""
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _FIRST_USE_FROM_THREADS], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]


def test_threads_that_first_call_a_shared_method_build_it_once() -> None:
    """Four threads that first call one shared class-based method (``create_method``, or the runner's
    per-worker cache as the threads of a Dask worker do) build one instance between them; until session 30 each
    built its own (weights read and verified four times, three instances thrown away).  The instance's lock is
    what the test pins (the cache's own race window is a few bytecodes wide; its lock is there for the rest)."""
    import threading
    import time

    from fusionbench.method_registry import create_method
    from fusionbench.worker import _method

    builds: list[int] = []

    @register_method("test_slow_build", override=True)
    class SlowBuild:
        def __init__(self) -> None:
            builds.append(threading.get_ident())
            time.sleep(0.2)

        def __call__(self, a, b):
            return np.maximum(a, b)

    try:
        a = np.zeros((4, 4), np.float32)
        shared = create_method("test_slow_build")
        key = shared.cache_key()
        for call in (lambda: shared(a, a), lambda: _method("test_slow_build", key, {})(a, a)):
            builds.clear()
            barrier = threading.Barrier(4)

            def work() -> None:
                barrier.wait()
                call()

            threads = [threading.Thread(target=work) for _ in range(4)]
            [t.start() for t in threads]
            [t.join() for t in threads]
            assert len(builds) == 1, builds
    finally:
        METHODS.remove("test_slow_build")
        from fusionbench import worker

        worker._METHOD_CACHE.pop(("test_slow_build", key), None)


_PLUGIN_IMPORTED_WHILE_SCANNED = """
import sys, threading, time
import fusionbench

def import_the_plugin_directly():
    import slowplug  # holds slowplug's import lock while it registers (1 s in)

thread = threading.Thread(target=import_the_plugin_directly)
thread.start()
time.sleep(0.2)
from fusionbench.method_registry import METHODS
assert "slowplug_max" in METHODS  # the first lookup scans the plugins: it imports slowplug too, and waits for it
thread.join()
"""


def test_a_plugin_imported_by_another_thread_while_the_plugins_are_scanned_does_not_hang(tmp_path) -> None:
    """One thread imports a plugin module itself (its registrations: weights, then a method, as docs/plugins.md
    shows) while another thread's first lookup scans the entry points and imports the same module.  The scan
    waits for that import; the import's registrations must not wait for the scan (a review of session 30 found
    both threads hanging for ever when the registries' loading took one lock for plugins and registrations)."""
    (tmp_path / "slowplug.py").write_text(
        "import time\ntime.sleep(1.0)\n"
        "from fusionbench.weights import register_weights\n"
        "register_weights('slowplug_w', filename='w.txt', sha256='0' * 64, url='http://x/w.txt', method_dir='slow')\n"
        "from fusionbench import register_method\n"
        "@register_method('slowplug_max')\n"
        "def slowplug_max(a, b):\n    return a\n")
    info = tmp_path / "slowplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slowplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fusionbench.methods]\nslowplug = slowplug\n")
    import os

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", ""))
                                                      if p))
    done = subprocess.run([sys.executable, "-c", _PLUGIN_IMPORTED_WHILE_SCANNED], capture_output=True, text=True,
                          env=env, timeout=50)  # the hang: killed by the timeout, the test fails
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_registration_keeps_its_own_source_while_another_thread_loads_the_builtins() -> None:
    """The label of the registrations being made is per thread: a user's registration made while another thread
    imports the built-ins was labelled ``builtin`` (a review of session 30), so it skipped loading and
    ``definitions.py`` did not send it to Dask workers."""
    import threading

    from fusionbench.registry import current_source

    inside, leave = threading.Event(), threading.Event()

    def loader() -> None:
        with builtin_registrations():
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=loader)
    thread.start()
    try:
        assert inside.wait(30)
        assert current_source("my_notebook_cell") == "user (my_notebook_cell)"
    finally:
        leave.set()
        thread.join()


def test_a_method_can_be_pickled_and_copied() -> None:
    """A ``FusionMethod`` goes to a process pool, joblib or ``dask.delayed`` by pickle, and ``copy.deepcopy``
    copies it: its build lock (session 30) is left out and made anew (a review found both raising TypeError)."""
    import copy
    import pickle

    from fusionbench.method_registry import create_method

    a = np.arange(32 * 32, dtype=np.float32).reshape(32, 32) / 1024
    for method in (create_method("dwt"), create_method("average")):
        for clone in (pickle.loads(pickle.dumps(method)), copy.deepcopy(method)):
            assert clone.name == method.name and np.array_equal(clone(a, a[::-1]), method(a, a[::-1]))
            assert clone._build_lock is not method._build_lock


def test_a_method_name_is_lower_cased_at_registration_as_plugins_md_says() -> None:
    """docs/plugins.md: ``register_method("My_Rule")`` registers ``my_rule``; the exact name as typed is unknown,
    and its error suggests the registered one; patterns ignore case."""
    import fusionbench
    from fusionbench.method_registry import METHODS

    fusionbench.register_method("Cased_Rule_S32")(lambda a, b: a)
    try:
        assert fusionbench.list_methods("CASED_RULE_S*") == ["cased_rule_s32"]
        with pytest.raises(KeyError, match="Did you mean: cased_rule_s32"):
            fusionbench.create_method("Cased_Rule_S32")
    finally:
        METHODS.remove("cased_rule_s32")


class _FakeEntryPoint:
    """An entry point of a fake distribution ``fakedist`` whose ``load`` imports ``module``."""

    def __init__(self, name: str, module: str) -> None:
        from types import SimpleNamespace

        self.name, self.value, self.dist = name, module, SimpleNamespace(name="fakedist")

    def load(self):
        import importlib

        return importlib.import_module(self.value)


def test_a_plugin_that_fails_half_way_is_taken_out_whole_and_sys_exit_is_a_failure(monkeypatch, tmp_path) -> None:
    """Session 37's audit: a plugin module calling ``sys.exit()`` at import took every command down (only
    ``Exception`` was caught), and the entries a failing plugin module registered before its error stayed
    registered and ran, while the run said the plugin was skipped.  An entry it replaced (``override=True``)
    comes back; the package ``__init__`` imported on the way stays imported, and keeps its entries.  What the
    failed module registers counts whatever it is: a function imported from a module that stays imported, a
    ``functools.partial`` (the review of session 37: those were kept)."""
    import builtins

    from fusionbench import registry as registry_module

    reg = Registry("thing", "fusionbench.test_things")
    kept = object()
    with builtin_registrations():
        reg.add("thing_base", kept, "builtin info")
    monkeypatch.setattr(builtins, "_fb_test_registry", reg, raising=False)
    package = f"fakeplug_{tmp_path.name.replace('-', '_')}"
    (tmp_path / package).mkdir()
    modules = {
        "__init__": "import builtins\nbuiltins._fb_test_registry.add('thing_package', object(), 'info')\n",
        "helpers": "def shared(a, b):\n    return a\n",
        "half": "import builtins, functools\nfrom PKG.helpers import shared\nreg = builtins._fb_test_registry\n"
                "reg.add('thing_before', object(), 'info')\nreg.add('thing_shared', shared, 'info')\n"
                "reg.add('thing_partial', functools.partial(shared, b=1), 'info')\n"
                "reg.add('thing_base', object(), 'replaced', override=True)\nraise ValueError('then it breaks')\n",
        "exits": "import builtins, sys\nbuiltins._fb_test_registry.add('thing_exit', object(), 'info')\n"
                 "sys.exit('plugin exits at import')\n",
        "fine": "import builtins\nbuiltins._fb_test_registry.add('thing_fine', object(), 'info')\n",
    }
    for name, text in modules.items():
        (tmp_path / package / f"{name}.py").write_text(text.replace("PKG", package))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry_module.importlib_metadata, "entry_points", lambda **kwargs: [
        _FakeEntryPoint(name, f"{package}.{name}") for name in ("half", "exits", "fine")])
    try:
        assert reg.names() == ["thing_base", "thing_fine", "thing_package"]
        assert reg.get("thing_base").obj is kept and reg.get("thing_base").source == "builtin"
        assert reg.get("thing_fine").source == reg.get("thing_package").source == "plugin fakedist"
        assert [f.name for f in reg.plugin_failures] == ["half", "exits"]
        assert "SystemExit: plugin exits at import" in reg.plugin_failures[1].line()
    finally:
        for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[module]


def test_a_keyboard_interrupt_in_a_plugin_import_is_not_swallowed(monkeypatch) -> None:
    from fusionbench import registry as registry_module

    def interrupted() -> None:
        raise KeyboardInterrupt

    class Interrupted(_FakeEntryPoint):
        def load(self):
            interrupted()

    reg = Registry("thing", "fusionbench.test_things")
    monkeypatch.setattr(registry_module.importlib_metadata, "entry_points",
                        lambda **kwargs: [Interrupted("ctrl_c", "nowhere")])
    with pytest.raises(KeyboardInterrupt):
        reg.names()


def test_weights_and_metrics_declared_in_a_method_plugin_module_are_found(monkeypatch, tmp_path) -> None:
    """Session 37's audit: weights declared, as docs/plugins.md shows, in the module of a method plugin were
    "unknown weights" to ``fusionbench fetch weights`` (the command the method's unavailable line names), and a
    metric registered there existed for ``run`` only.  Such registries load the methods' plugins with their own."""
    import builtins

    from fusionbench import registry as registry_module
    from fusionbench.metric_registry import METRICS
    from fusionbench.weights import WEIGHTS

    assert WEIGHTS.also_loads == METRICS.also_loads == (METHODS.entry_point_group,)
    group = f"fusionbench.test_methods_{tmp_path.name}"  # a registry per group: this test's own
    methods = Registry("thing", group)
    weights = Registry("thing weights", "fusionbench.test_weights", also_loads=(group,))
    monkeypatch.setattr(builtins, "_fb_test_registries", (methods, weights), raising=False)
    module = f"fakemethods_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        "import builtins\nmethods, weights = builtins._fb_test_registries\n"
        "methods.add('my_blend', object(), 'info')\nweights.add('my_blend', object(), 'its weights')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    asked = group
    monkeypatch.setattr(registry_module.importlib_metadata, "entry_points", lambda group: [
        _FakeEntryPoint("blend", module)] if group == asked else [])
    try:
        assert weights.names() == ["my_blend"] and weights.get("my_blend").source == "plugin fakedist"
        assert methods.names() == ["my_blend"]
    finally:
        sys.modules.pop(module, None)


def test_metadata_that_would_be_ignored_or_change_others_defaults_is_refused() -> None:
    """Session 37's audit: ``tasks="MRI-PET"`` became the tasks 'M', 'R', 'I', … (the method ran on no pair);
    ``groups=("mygroup",)`` put a metric in no group; ``colour="RGB"`` meant the luma; ``groups=("paper",)`` from a
    user changed every run's default metrics; ``ssim`` beside ``SSIM`` made ``--metrics ssim`` pick it silently."""
    from fusionbench.metric_registry import METRICS, register_metric

    def score(f, a=None, b=None, **kw):
        return 1.0

    with pytest.raises(TypeError, match=r"tasks takes several names, e\.g\. tasks=\('MRI-PET',\)"):
        register_method("test_meta_tasks", tasks="MRI-PET")
    for bad, message in ((dict(groups=("mygroup",)), "no metric group 'mygroup'"),
                         (dict(colour="RGB"), "colour must be 'y601'"),
                         (dict(groups=("all", "paper")), "only fusionbench's presets join the paper group"),
                         (dict(groups="all"), "groups takes several names")):
        with pytest.raises((TypeError, ValueError), match=message):
            register_metric("TEST_META", score, **bad)
    with pytest.raises(ValueError, match="'ssim' differs from the registered 'SSIM' only in case"):
        register_metric("ssim", score)
    assert "TEST_META" not in METRICS and "ssim" not in METRICS
    register_metric("TEST_META", score, groups=("all",))
    try:
        assert METRICS.get("TEST_META").info.groups == ("all",)
    finally:
        METRICS.remove("TEST_META")


def test_an_unknown_metric_or_weights_names_the_method_plugins_that_failed_to_load(capsys, monkeypatch,
                                                                                   tmp_path) -> None:
    """The metrics and weights registries load the methods' plugins too (session 37): a metric or weights
    declared in a method plugin that failed to load was "unknown" without the plugin's failure line, which an
    unknown method carries (:meth:`Registry.with_plugin_failures`)."""
    from fusionbench.cli import main
    from fusionbench.metric_registry import METRICS, create_metric
    from fusionbench.registry import PluginFailure
    from fusionbench.weights import WEIGHTS, weights_path

    failure = PluginFailure("fusionbench.methods", "broken", "brokenfuse.methods",
                            "ModuleNotFoundError: No module named 'nowhere'", "")
    METRICS.ensure_loaded()
    WEIGHTS.ensure_loaded()
    monkeypatch.setattr(METHODS, "plugin_failures", [failure])
    for lookup in (lambda: create_metric("broken_metric"), lambda: weights_path("broken_weights")):
        with pytest.raises(KeyError) as info:
            lookup()
        assert info.value.__notes__ == [failure.line()]
    expected = f"fusionbench: {failure.line()}"
    for argv, error in ((["run", "--methods", "average", "--metrics", "broken_metric", "--dry-run", "--out",
                          str(tmp_path)], "unknown metric 'broken_metric'"),
                        (["fetch", "weights", "broken_weights"], "unknown weights 'broken_weights'")):
        assert main(argv) == 1
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith(f"fusionbench: error: {error}") and err[1:] == [expected], err


def test_a_group_in_another_case_and_mi_in_nats_get_their_hints() -> None:
    """Session 38's metrics audit (F5): ``--metrics Paper`` got no hint, ``Standard`` was offered SF.tang and
    ``MI.nats`` MI.tang, which is in bits."""
    from fusionbench.metric_registry import resolve_metrics

    for given, hint in (("Paper", "'paper' (lower case) is a group of presets"),
                        ("STANDARD", "'standard' (lower case) is a group of presets"),
                        ("MI.nats", "MI in nats: MI.vifb (after VIFB's min-max stretch) or MI.cddfuse")):
        with pytest.raises(KeyError, match=re.escape(hint)):
            resolve_metrics(given)
    assert resolve_metrics("standard") and "SSIM" in resolve_metrics("all")


def test_a_metric_pattern_that_matches_nothing_is_an_error() -> None:
    """Session 38's metrics audit: ``--metrics paper,MS-SSIM*`` ran the paper metrics alone without a word."""
    from fusionbench.metric_registry import resolve_metrics

    with pytest.raises(KeyError, match=re.escape("no metric matches 'MS-SSIM*'")):
        resolve_metrics("paper,MS-SSIM*")
    assert resolve_metrics("MS_SSIM*") == [m for m in resolve_metrics("all") if m.startswith("MS_SSIM")]


def test_an_override_of_a_paper_metric_keeps_its_groups() -> None:
    """Session 39's API audit: ``register_metric("EN", fn, override=True)`` took the default groups (``all``), so EN
    fell out of ``paper`` (every run's default metrics) and ``standard`` without a word, and naming the groups was
    refused. An override now keeps the replaced preset's groups, or takes those it names."""
    from fusionbench.metric_registry import METRICS, register_metric, resolve_metrics

    builtin = METRICS.get("EN")
    paper = resolve_metrics("paper")
    try:
        register_metric("EN", lambda f, a=None, b=None, **k: 1.0, override=True, needs_sources=False)
        assert resolve_metrics("paper") == paper and "EN" in resolve_metrics("standard")
        assert METRICS.get("EN").obj is not builtin.obj
        register_metric("EN", lambda f, a=None, b=None, **k: 2.0, override=True, needs_sources=False,
                        groups=("all",))
        assert "EN" not in resolve_metrics("paper")  # named groups win
        register_metric("EN", lambda f, a=None, b=None, **k: 3.0, override=True, needs_sources=False,
                        groups=("paper", "standard", "all"))
        assert resolve_metrics("paper") == paper
        from fusionbench.metric_registry import MetricInfo

        register_metric("EN", lambda f, a=None, b=None, **k: 4.0, override=True,  # an info with default groups
                        info=MetricInfo(name="EN", needs_sources=False))
        assert resolve_metrics("paper") == paper
        with pytest.raises(ValueError, match="only fusionbench's presets join the paper group"):
            register_metric("TEST_NEW_PAPER", lambda f, a=None, b=None, **k: 1.0, groups=("paper", "all"))
        chroma = METRICS.get("ChromaErr")
        with pytest.raises(ValueError, match="only fusionbench's presets join the paper group"):  # not in it
            register_metric("ChromaErr", lambda f, a=None, b=None, **k: 1.0, override=True, groups=("paper", "all"))
        assert METRICS.get("ChromaErr") is chroma
    finally:
        METRICS._entries["EN"] = builtin


def test_registration_refuses_what_would_fail_on_every_pair() -> None:
    """Session 39's API audit: registered ``params`` the function does not take, a metric class (called as
    ``Cls(fused, a, b)``) and a ``MetricInfo`` of another name were accepted, and failed on every pair or score."""
    from fusionbench.method_registry import register_method
    from fusionbench.metric_registry import MetricInfo, register_metric

    def pv(a, b):
        return a

    with pytest.raises(ValueError, match=r"method 'test_reg_pv': params 'zz' are not parameters of 'test_registr.*pv'"):
        register_method("test_reg_pv", params={"zz": 1})(pv)

    class Scorer:
        def __call__(self, fused, a=None, b=None, **kw):
            return 1.0

    with pytest.raises(TypeError, match="register a function, or an instance of Scorer"):
        register_metric("TEST_REG_CLS")(Scorer)
    with pytest.raises(ValueError, match="its MetricInfo is named 'OTHER'"):
        register_metric("TEST_REG_Y2", Scorer(), info=MetricInfo(name="OTHER"))
    assert "test_reg_pv" not in fusionbench.list_methods("test_reg*")
    assert not fusionbench.list_metrics("TEST_REG*")
