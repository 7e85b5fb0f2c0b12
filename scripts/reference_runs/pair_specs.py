"""The pair specs the reference-run input scripts take: ``NAME=OTHER.png:MRI.png[@y0,x0,h,w]``.

OTHER is the functional, CT or infrared image, MRI the anatomical or visible one, both relative to the
shared folder; the optional box crops both.  The part after ``NAME=`` is the case spec of the official
Python runs (``official_python/_cases.py``).
"""
from __future__ import annotations

from official_python._cases import parse_case


def parse(spec: str) -> tuple[str, str, str, tuple[int, int, int, int] | None]:
    """``NAME=OTHER:MRI[@y0,x0,h,w]`` → (name, other, mri, crop)."""
    name, case = spec.split("=", 1)
    other, mri, crop = parse_case(case)
    return name, str(other), str(mri), crop
