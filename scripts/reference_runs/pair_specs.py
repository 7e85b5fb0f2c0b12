"""The pair specs the reference-run input scripts take: ``NAME=OTHER.png:MRI.png[@y0,x0,h,w]``.

OTHER is the functional, CT or infrared image, MRI the anatomical or visible one, both relative to the
shared folder; the optional box crops both.
"""
from __future__ import annotations


def parse(spec: str) -> tuple[str, str, str, tuple[int, int, int, int] | None]:
    """``NAME=OTHER:MRI[@y0,x0,h,w]`` → (name, other, mri, crop)."""
    name, pair = spec.split("=", 1)
    crop = None
    if "@" in pair:
        pair, box = pair.rsplit("@", 1)
        y0, x0, h, w = (int(v) for v in box.split(","))
        crop = (y0, x0, h, w)
    other, mri = pair.split(":")
    return name, other, mri, crop
