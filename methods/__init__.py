"""Built-in fusion methods (installed as ``fusionbench.methods``).

Every public module here (name not starting with ``_``) registers its methods
on import; this package imports them all, so a new method is one new module.
Modules keep heavy imports (torch) inside functions or classes, so that
``fusionbench list`` stays fast.
"""
from __future__ import annotations

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
