"""Imports every built-in dataset module so that they register."""
from . import folder, released, synthetic  # noqa: F401
