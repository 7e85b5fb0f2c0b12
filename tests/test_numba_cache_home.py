"""numba's disk cache of compiled kernels lives under ``FUSIONBENCH_HOME`` (``<home>/numba``), not beside the
sources: in an installed package numba wrote 10 MB into site-packages, which ``pip uninstall`` left behind
(the packaging audit of session 26).  A ``NUMBA_CACHE_DIR`` set by the user is kept."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_KERNEL = '''
import numba

@numba.njit(cache=True)
def twice(x):
    return 2 * x
'''


def _python(code: str, tmp_path: Path, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "FUSIONBENCH_HOME", "XDG_CACHE_HOME")}
    done = subprocess.run([sys.executable, "-c", code], env={**base, "PYTHONPATH": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("numba_first", [False, True])
def test_kernels_are_cached_under_fusionbench_home(tmp_path, numba_first):
    (tmp_path / "kernel_mod.py").write_text(_KERNEL)
    home = tmp_path / "home"
    code = ("import numba\n" if numba_first else "") + (
        "import fusionbench, os, kernel_mod\n"
        "assert kernel_mod.twice(21) == 42\n"
        "print(os.environ['NUMBA_CACHE_DIR'])")
    assert _python(code, tmp_path, FUSIONBENCH_HOME=str(home)) == str(home / "numba")
    assert list((home / "numba").rglob("*.nbi")), "no kernel cached under FUSIONBENCH_HOME"
    assert not list(tmp_path.glob("__pycache__/*.nbi"))  # numba's default: beside the source


def test_a_numba_cache_dir_the_user_set_is_kept(tmp_path):
    mine = tmp_path / "mine"
    code = "import fusionbench, os; print(os.environ['NUMBA_CACHE_DIR'])"
    assert _python(code, tmp_path, FUSIONBENCH_HOME=str(tmp_path / "home"), NUMBA_CACHE_DIR=str(mine)) == str(mine)


def test_without_a_home_folder_fusionbench_still_imports(tmp_path):
    """An arbitrary uid in a container: no ``$HOME`` and no passwd entry, so ``Path.home()`` raises.  Before the
    cache moved, ``import fusionbench`` never looked for a home; it must still import (numba keeps its
    default) rather than fail in every Dask worker."""
    code = ("import pathlib\n"
            "def no_home(*a, **k):\n"
            "    raise RuntimeError('Could not determine home directory.')\n"
            "pathlib.Path.home = classmethod(no_home)\n"
            "import os, fusionbench\n"
            "print(os.environ.get('NUMBA_CACHE_DIR', 'unset'))")
    assert _python(code, tmp_path) == "unset"


def test_a_relative_home_gives_an_absolute_cache_folder(tmp_path):
    code = "import os, fusionbench; print(os.environ['NUMBA_CACHE_DIR'])"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"},
                               "FUSIONBENCH_HOME": "rel"})
    assert done.stdout.strip() == str(tmp_path / "rel" / "numba"), done.stderr
