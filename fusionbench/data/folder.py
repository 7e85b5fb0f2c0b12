"""``folder:PATH``: any folder with ``a/`` (anatomical or visible) and ``b/`` (the other image).

Files pair by name (the stem before the extension); a file without a partner
or a file that is not an image (by extension) is reported as one line in
``Dataset.problems`` and skipped.  Every pair is in split ``test``.
"""
from __future__ import annotations

from pathlib import Path

from .base import Dataset, Pair, register_dataset

IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".gif", ".pgm", ".ppm"}


def _index(folder: Path, problems: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(f"{p}: not an image file (extension {p.suffix or 'none'}), skipped")
            continue
        out[p.stem] = p
    return out


@register_dataset("folder", prefix=True, task="custom",
                  description="folder:PATH — PATH/a (anatomical/visible) and PATH/b (other), matching names")
def folder_dataset(arg: str, data_dir: str | Path | None = None, task: str = "custom") -> Dataset:
    root = Path(arg).expanduser()
    if not (root / "a").is_dir() or not (root / "b").is_dir():
        raise FileNotFoundError(f"{root}: a folder dataset needs sub-folders a/ and b/")
    problems: list[str] = []
    a_files, b_files = _index(root / "a", problems), _index(root / "b", problems)
    from fusionbench.io import sha256_file
    from fusionbench.registry import natural_key

    pairs = []
    for stem in sorted(set(a_files) | set(b_files), key=natural_key):
        if stem not in b_files:
            problems.append(f"{a_files[stem]}: missing partner in {root / 'b'}, skipped")
            continue
        if stem not in a_files:
            problems.append(f"{b_files[stem]}: missing partner in {root / 'a'}, skipped")
            continue
        digest = sha256_file(a_files[stem])[:32] + sha256_file(b_files[stem])[:32]
        pairs.append(Pair(f"folder:{arg}", stem, task, a_files[stem], b_files[stem], sha256=digest))
    return Dataset(f"folder:{arg}", pairs, {"test": [p.id for p in pairs]}, "folder", problems=problems)
