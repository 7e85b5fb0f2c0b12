"""Moved to :mod:`fusionbench.fidelity`; kept importable for tests being written against the old name."""
from fusionbench.fidelity import Agreement, agreement  # noqa: F401
