"""Package layout for setuptools.

``methods/`` and ``metrics/`` live at the repository root (design card) but are
installed as ``fusionbench.methods`` and ``fusionbench.metrics`` through
``package_dir``; no top-level ``methods`` or ``metrics`` package is installed.
Everything else is declared in ``pyproject.toml``.
"""
from setuptools import find_packages, setup

MAPPED = {"fusionbench.methods": "methods", "fusionbench.metrics": "metrics"}

packages = find_packages(include=["fusionbench", "fusionbench.*"])
for dotted, folder in MAPPED.items():
    packages.append(dotted)
    packages += [f"{dotted}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=MAPPED)
