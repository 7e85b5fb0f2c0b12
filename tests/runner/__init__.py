"""Tests (a package, so that pytest imports them by their dotted name without --import-mode=importlib)."""
