"""No import cycles: every module imports alone, and the module-level import graph is acyclic (issue 15).

Two checks over every module of ``fusionbench`` (``fusionbench.methods`` and ``fusionbench.metrics``
included), found in the installed package (editable or not):

* **runtime**: each module is imported alone, in a process where no ``fusionbench`` module was
  imported before, so an ``ImportError`` that only shows when a module is imported first (a cycle,
  typically: "cannot import name ... partially initialized module") fails the test;
* **static**: the graph of module-level imports between these modules (from the AST; imports inside
  functions and under ``if TYPE_CHECKING:`` are not edges) has no cycle.  ``from pkg import name``
  is an edge to ``pkg.name`` when that is a module, else to ``pkg``; the implicit import of parent
  packages is not an edge (every submodule would otherwise close a cycle through its package).
"""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGES = ("fusionbench", "fusionbench.methods", "fusionbench.metrics")


def module_files() -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of the three installed packages."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        spec = importlib.util.find_spec(pkg)
        assert spec is not None and spec.submodule_search_locations, f"{pkg} is not installed"
        for location in spec.submodule_search_locations:
            root = Path(location)
            for path in sorted(root.rglob("*.py")):
                rel = path.relative_to(root)
                # only files inside regular packages (every folder down to it has an __init__.py)
                if any(not (root.joinpath(*rel.parts[:i]) / "__init__.py").is_file() for i in range(1, len(rel.parts))):
                    continue
                parts = list(rel.with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                name = ".".join([pkg, *parts])
                out.setdefault(name, path)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements executed when the module is imported (module body, incl. top-level if/try/with)."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            stack += node.orelse if _is_type_checking(node.test) else node.body + node.orelse
        elif isinstance(node, ast.Try):
            stack += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, (ast.With, ast.For, ast.While)):
            stack += node.body
    return found


def _all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, deferred ones (inside functions) included."""
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def module_edges(name: str, tree: ast.Module, files: dict[str, Path], *, deferred: bool = False) -> set[str]:
    """The modules of ``files`` that module ``name`` (parsed as ``tree``) imports."""
    package = name if files[name].name == "__init__.py" else name.rpartition(".")[0]
    edges: set[str] = set()
    for node in (_all_imports if deferred else _module_level_imports)(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
        edges |= {t for t in targets if t in files and t != name}
    return edges


def import_graph(files: dict[str, Path], *, deferred: bool = False) -> dict[str, set[str]]:
    """Module-level import edges between the modules of ``files`` (with ``deferred``, all imports)."""
    return {name: module_edges(name, ast.parse(path.read_text(encoding="utf-8"), str(path)), files, deferred=deferred)
            for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


FILES = module_files()
#: ``__main__`` modules run their command line on import, by design
NOT_IMPORTABLE_ALONE = {name for name in FILES if name.endswith(".__main__")}


def test_every_package_has_modules() -> None:
    for pkg in PACKAGES:
        assert pkg in FILES and sum(n.startswith(pkg + ".") for n in FILES) >= 3, pkg
    assert {"fusionbench.registry", "fusionbench.methods.basic", "fusionbench.metrics.presets"} <= set(FILES)


def test_graph_and_cycle_finder_on_a_known_case() -> None:
    files = {"p": Path("p/__init__.py"), "p.a": Path("p/a.py"), "p.b": Path("p/b.py"), "p.c": Path("p/c.py")}
    sources = {"p": "", "p.a": "from . import b\n", "p.b": "from .c import x\nif TYPE_CHECKING:\n    from . import a\n",
               "p.c": "def f():\n    from . import a\ntry:\n    from .a import y\nexcept ImportError:\n    pass\n"}
    graph = {name: module_edges(name, ast.parse(code), files) for name, code in sources.items()}
    assert graph == {"p": set(), "p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}}
    assert cycles(graph) == [["p.a", "p.b", "p.c"]]
    assert cycles({"x": {"y"}, "y": set()}) == []
    deferred = {name: module_edges(name, ast.parse(code), files, deferred=True) for name, code in sources.items()}
    assert deferred["p.b"] == {"p.a", "p.c"} and deferred["p.c"] == {"p.a"}


def test_module_level_import_graph_has_no_cycle() -> None:
    found = cycles(import_graph(FILES))
    assert not found, "module-level import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


#: dependency cycles closed only by imports inside functions (they cannot fail at import time, but
#: they tie two modules together): none is left; a new one fails the test below
KNOWN_DEFERRED_CYCLES: set[tuple[str, ...]] = set()


def test_no_new_deferred_import_cycle() -> None:
    found = {tuple(c) for c in cycles(import_graph(FILES, deferred=True))}
    new = found - KNOWN_DEFERRED_CYCLES
    assert not new, "new import cycles through function-level imports:\n" + "\n".join(" <-> ".join(c) for c in new)


_IMPORT_EACH_ALONE = textwrap.dedent("""
    import gc, importlib, json, os, sys, traceback
    packages, out_dir, libraries = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    for library in libraries:
        importlib.import_module(library)

    def record(name, message):
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(message)

    def forked(job, name):
        gc.freeze()  # the collector leaves the parent's objects alone in the child (else it visits them all)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                job()
            except BaseException as exc:  # any failure to import alone, cycles first among them
                try:
                    record(name, traceback.format_exception_only(type(exc), exc)[-1].strip())
                except BaseException:
                    code = 2
            finally:
                os._exit(code)  # never back into the parent's loop
        status = os.waitpid(pid, 0)[1]
        if status != 0:
            record(name, f"the importing process ended with exit code {os.waitstatus_to_exitcode(status)}")

    def package_and_its_modules(package, modules):
        importlib.import_module(package)  # the package alone (failing, forked() records it for the package)
        for name in modules:
            if name not in sys.modules:  # else the package's own import imported it: that was its import alone
                forked(lambda: importlib.import_module(name), name)

    for package, modules in packages.items():
        forked(lambda: package_and_its_modules(package, modules), package)
""")

#: third-party libraries the checking process imports once, before any module of the project: each project module
#: is still imported in a process holding no ``fusionbench`` module, without paying for torch's import again.  (So a
#: module that works only when one of these was imported before it would pass, as it did in the interpreters of the
#: check before session 36 after their first module; ``matplotlib`` without ``pyplot``, which
#: ``report/figures.py`` imports after choosing its backend.)
SHARED_LIBRARIES = ("numpy", "scipy.ndimage", "scipy.stats", "numba", "torch", "pandas", "matplotlib")


def modules_by_package(names: list[str]) -> dict[str, list[str]]:
    """``{package: the modules of names directly in it}`` for every package of ``names`` (each a key).

    Importing ``P.m`` alone first imports its package ``P`` alone (Python imports the parents first), so
    that state is shared: the check imports each package alone in a fresh process (forked from one that holds no
    project module), then each of its modules in a fork of that process.  A module the package's own import
    brought in was imported alone by it (Python returns it from ``sys.modules`` after importing the parents).
    """
    packages = {name for name in names if FILES[name].name == "__init__.py"}
    grouped: dict[str, list[str]] = {p: [] for p in sorted(packages)}
    for name in names:
        if name not in packages:
            grouped[name.rpartition(".")[0]].append(name)
    return grouped


def _check_imports(grouped: dict[str, list[str]], out: Path, libraries: tuple[str, ...], *, cwd: Path, timeout: float,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run :data:`_IMPORT_EACH_ALONE` in a process group of its own: at the timeout the whole group (its forks
    included) is killed, and ``TimeoutExpired`` raised."""
    proc = subprocess.Popen([sys.executable, "-c", _IMPORT_EACH_ALONE, json.dumps(grouped), str(out),
                             json.dumps(libraries)], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:  # the timeout (a hang), or an interrupt: no fork is left running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_every_module_imports_alone(tmp_path: Path) -> None:
    names = sorted(set(FILES) - NOT_IMPORTABLE_ALONE)
    grouped = modules_by_package(names)
    assert sorted({n for mods in grouped.values() for n in mods} | set(grouped)) == names
    out = tmp_path / "failures"
    out.mkdir()
    done = _check_imports(grouped, out, SHARED_LIBRARIES, cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    failures = {f.name: f.read_text() for f in sorted(out.iterdir())}
    assert not failures, "modules that fail to import alone:\n" + "\n".join(f"{k}: {v}" for k, v in failures.items())


def test_a_module_that_fails_only_when_imported_first_is_found(tmp_path: Path) -> None:
    """The check on a package of three modules: ``b`` imports ``c``, which takes a name from ``b`` (a cycle that
    fails only when ``b`` is imported first: ``c`` alone imports ``b`` whole); ``a`` is imported by the package
    itself."""
    pkg = tmp_path / "cyclepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("X = 1\n")
    (pkg / "b.py").write_text("from . import c\nY = 2\n")
    (pkg / "c.py").write_text("from .b import Y\n")
    out = tmp_path / "failures"
    out.mkdir()
    grouped = {"cyclepkg": ["cyclepkg.a", "cyclepkg.b", "cyclepkg.c"]}
    done = _check_imports(grouped, out, (), cwd=tmp_path, timeout=60, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    failures = {f.name: f.read_text() for f in out.iterdir()}
    assert set(failures) == {"cyclepkg.b"}, failures
    assert "partially initialized module" in failures["cyclepkg.b"]


def test_only_main_modules_are_left_out() -> None:
    assert NOT_IMPORTABLE_ALONE >= {"fusionbench.__main__"}
    assert all(name.rsplit(".", 1)[-1] == "__main__" for name in NOT_IMPORTABLE_ALONE)


def test_package_path_is_not_extended() -> None:
    # issue 15: fusionbench/__init__.py appended the checkout root to __path__, so that
    # fusionbench.tests.conftest and fusionbench.benchmarks imported from a checkout
    import fusionbench

    assert len(fusionbench.__path__) == 1
    for name in ("fusionbench.tests", "fusionbench.benchmarks", "fusionbench.scripts"):
        assert importlib.util.find_spec(name) is None, name


def test_subpackages_are_lazy_attributes_without_torch(tmp_path: Path) -> None:
    # issue 14.6: after `import fusionbench`, `fusionbench.metrics.evaluate` raised AttributeError
    code = textwrap.dedent("""
        import sys
        import fusionbench
        assert "fusionbench.metrics" not in sys.modules and "fusionbench.methods" not in sys.modules
        assert callable(fusionbench.metrics.evaluate) and fusionbench.methods.__name__ == "fusionbench.methods"
        assert {"metrics", "methods"} <= set(dir(fusionbench))
        assert "torch" not in sys.modules, "import fusionbench (and its metrics/methods) imported torch"
        try:
            fusionbench.no_such_thing
        except AttributeError as exc:
            assert "no_such_thing" in str(exc)
        else:
            raise AssertionError("unknown attribute did not raise")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]


#: what loading the registries must not import: every CLI command and every pool worker and sandbox child loads
#: them, and these cost it seconds of CPU (scipy.signal with the scipy.stats it loads took 1.3 s of a 2.2 s
#: registry load, through ``methods/mdl.py``'s module-level import, until session 35: a third of the runner's
#: process-heavy tests' CPU; numba 0.3 s, through the SSIM, phase-congruency, VIF and FMI metric modules' kernel
#: imports; scipy.fft and scipy.ndimage 0.33 s of a 0.97 s load, through eleven method, metric and dataset modules,
#: until session 36: scipy's first import costs most of it, so no part of scipy is loaded); a method or metric
#: imports them where it runs
HEAVY_MODULES = ("torch", "scipy", "pandas", "matplotlib", "dask", "skimage", "numba")


def test_loading_the_registries_imports_no_heavy_library(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        from fusionbench.method_registry import create_method, list_methods
        from fusionbench.metric_registry import list_metrics
        from fusionbench.data import list_datasets
        assert len(list_methods()) > 40 and len(list_metrics()) > 30 and list_datasets()
        create_method("average")
        heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]
        assert not heavy, f"loading the registries imported {{heavy}}"
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names a module binds at module level (defs, classes, assignments, imports, ``__all__`` entries)."""
    names: set[str] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.If):
            stack += node.body + node.orelse
        elif isinstance(node, ast.Try):
            stack += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, (ast.With, ast.For, ast.While)):
            stack += node.body
    return names


def unresolved_imports(files: dict[str, Path], sources: dict[str, str] | None = None,
                       outside: dict[str, str] | None = None) -> list[str]:
    """``module:line: what`` for each import of a package module, deferred ones included, whose target
    module does not exist or does not bind the imported name (read from the AST, nothing imported).

    ``outside``: ``{label: source}`` of files beyond the package (benchmarks, scripts) whose absolute
    imports of the package are checked the same way.
    """
    trees = {name: ast.parse(sources[name] if sources else path.read_text(encoding="utf-8"), str(path))
             for name, path in files.items()}
    roots = {name.split(".")[0] for name in files}
    problems: list[str] = []
    for name, tree in [*trees.items(), *((label, ast.parse(code)) for label, code in (outside or {}).items())]:
        package = (name if files[name].name == "__init__.py" else name.rpartition(".")[0]) if name in files else ""
        for node in _all_imports(tree):
            if isinstance(node, ast.Import):
                problems += [f"{name}:{node.lineno}: no module {a.name}" for a in node.names
                             if a.name.split(".")[0] in roots and a.name not in trees]
                continue
            if node.level and name not in files:
                continue  # a relative import of a file outside the package (benchmarks/_settings.py)
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] in roots:
                base = node.module
            else:
                continue  # a third-party import
            if base not in trees:
                problems.append(f"{name}:{node.lineno}: no module {base}")
                continue
            bound = _top_level_names(trees[base])
            problems += [f"{name}:{node.lineno}: {base} has no {a.name}" for a in node.names
                         if a.name != "*" and a.name not in bound and f"{base}.{a.name}" not in trees]
    return problems


def test_unresolved_import_finder_on_a_known_case() -> None:
    files = {"p": Path("p/__init__.py"), "p.a": Path("p/a.py"), "p.s": Path("p/s/__init__.py"), "p.s.b": Path("p/s/b.py")}
    sources = {"p": "", "p.a": "X = 1\ndef f():\n    pass\n", "p.s": "",
               "p.s.b": "def g():\n    from .a import X\n    from ..a import f, X, Y\n    from ..s import b\n    import os\n"}
    assert unresolved_imports(files, sources) == ["p.s.b:2: no module p.s.a", "p.s.b:3: p.a has no Y"]
    outside = {"bench.py": "import p.a\nimport p.gone\ndef f():\n    from p.a import X, Z\n"}
    assert unresolved_imports(files, sources, outside)[2:] == ["bench.py:2: no module p.gone", "bench.py:4: p.a has no Z"]


def test_every_import_inside_the_package_resolves() -> None:
    """Deferred imports (inside functions) run only on their code path: a moved module must not leave one behind."""
    problems = unresolved_imports(FILES)
    assert not problems, "imports that would fail when their code runs:\n" + "\n".join(problems)


def test_benchmarks_and_scripts_import_what_exists() -> None:
    """asv benchmarks and scripts run outside the test suite: their imports of the package are checked here."""
    repo = Path(__file__).resolve().parents[1]
    outside = {str(p.relative_to(repo)): p.read_text(encoding="utf-8")
               for folder in ("benchmarks", "scripts") for p in sorted((repo / folder).rglob("*.py"))}
    assert any(k.startswith("benchmarks/") for k in outside), "no asv benchmarks found beside the tests"
    problems = [p for p in unresolved_imports(FILES, outside=outside) if p.split(":")[0] in outside]
    assert not problems, "imports that would fail when the benchmark or script runs:\n" + "\n".join(problems)


def test_every_python_file_compiles_without_warnings() -> None:
    """Every ``.py`` of the package, benchmarks, scripts and tests compiles with warnings as errors: an invalid
    escape such as ``'\\.'`` in a docstring is a DeprecationWarning today and a SyntaxError in a later Python."""
    import warnings

    repo = Path(__file__).resolve().parents[1]
    files = [p for folder in ("fusionbench", "methods", "metrics", "benchmarks", "scripts", "tests")
             for p in sorted((repo / folder).rglob("*.py"))]
    assert len(files) > 100
    problems = []
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
            except (SyntaxError, SyntaxWarning, DeprecationWarning) as exc:
                problems.append(f"{path.relative_to(repo)}: {exc}")
    assert not problems, "\n".join(problems)


def test_module_calls_the_docs_show_work_after_import_fusionbench() -> None:
    """A call the README or docs show as ``fusionbench.<module>.<name>(...)`` works after a plain ``import
    fusionbench``: the module is one of the lazily imported subpackages (``fusionbench.profile.params(m)`` in
    the README raised AttributeError until session 23)."""
    import re

    import fusionbench

    repo = Path(__file__).resolve().parents[1]
    texts = [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
    shown = {m for path in texts for m in re.findall(r"`fusionbench\.([a-z_]+)\.[A-Za-z_]+\(", path.read_text())}
    assert "profile" in shown and "metrics" in shown
    missing = sorted(m for m in shown if m not in fusionbench._LAZY_SUBMODULES and m not in fusionbench.__all__)
    assert not missing, f"shown as fusionbench.<module>.<call>() but not reachable after `import fusionbench`: {missing}"
