"""Reference-run cases: "<first>.png:<second>.png[@y0,x0,h,w]" → two 8-bit images written as PNG."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image


def parse_case(spec: str) -> tuple[Path, Path, tuple[int, int, int, int] | None]:
    """``first:second`` or ``first:second@y0,x0,h,w`` (the same crop of both images)."""
    crop = None
    if "@" in spec:
        spec, box = spec.rsplit("@", 1)
        y0, x0, h, w = (int(v) for v in box.split(","))
        crop = (y0, x0, h, w)
    first, second = spec.split(":")
    return Path(first), Path(second), crop


def write_case(source: Path, target: Path, crop: tuple[int, int, int, int] | None) -> None:
    """Copy ``source`` to ``target`` as PNG, cropped if asked (the pixels and the PIL mode unchanged)."""
    image = Image.open(source)
    if crop is not None:
        y0, x0, h, w = crop
        image = image.crop((x0, y0, x0 + w, y0 + h))
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target)


def write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def crop_text(crop: tuple[int, int, int, int] | None) -> str:
    return "" if crop is None else ",".join(str(v) for v in crop)


def as_array(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def link_files(pattern_dir: Path, pattern: str, target_dir: Path) -> None:
    """Symlink every ``pattern_dir/pattern`` file into ``target_dir`` (the checkpoint a script expects)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    for file in pattern_dir.glob(pattern):
        link = target_dir / file.name
        if not link.exists():
            link.symlink_to(file)


def write_pairs(specs: list[str], first_target: Callable[[int], Path], second_target: Callable[[int], Path],
                columns: tuple[str, str]) -> list[dict[str, str]]:
    """Write each case's two images where the script reads them; the rows of ``cases.csv``."""
    rows = []
    for n, spec in enumerate(specs, start=1):
        first, second, crop = parse_case(spec)
        write_case(first, first_target(n), crop)
        write_case(second, second_target(n), crop)
        rows.append({"n": str(n), columns[0]: str(first), columns[1]: str(second), "crop": crop_text(crop)})
    return rows
