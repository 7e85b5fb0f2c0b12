"""Data-only package: the committed mopa state dicts (``<preset>.pth`` + ``<preset>.sha256``).

A package (not a plain folder) so that setuptools ships the files in wheels
(``package-data`` ``*.pth``/``*.sha256`` match files directly in a package).
"""
