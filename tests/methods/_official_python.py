"""Results of official Python code run here (``scripts/reference_runs/official_python``): SDNet and U2Fusion
(TF1 code under TensorFlow 2.15), MATR (its ``Test.py`` under torch 2.13).

Each folder ``tests/methods/<folder>/`` (``tf_sdnet``, ``tf_sdnet_colour``, ``tf_u2fusion``, ``torch_matr``) holds ``cases.csv`` (n, two inputs relative
to ``../shared``, an optional crop ``y0,x0,h,w``), the official result ``<n>.png``
and, for small grey crops, the unrounded result ``<n>.raw.npy``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HERE = Path(__file__).parent


@dataclass(frozen=True)
class OfficialCase:
    folder: Path
    n: str
    first: str
    second: str
    crop: tuple[int, int, int, int] | None

    @property
    def id(self) -> str:
        crop = "" if self.crop is None else "@" + "x".join(str(v) for v in self.crop[2:])
        return f"{Path(self.first).stem}{crop}"

    def inputs(self, shared_dir: Path) -> tuple[np.ndarray, np.ndarray]:
        """The two inputs as the drivers wrote them (uint8, the PNG's own mode), cropped; skips if absent."""
        images = []
        for rel in (self.first, self.second):
            path = shared_dir / rel
            if not path.is_file():
                pytest.skip(f"{rel} not in shared")
            opened = Image.open(path)
            assert opened.mode in ("L", "RGB"), f"{rel}: mode {opened.mode} (the drivers copy the file's own mode)"
            image = np.asarray(opened)
            if self.crop is not None:
                y0, x0, h, w = self.crop
                image = image[y0:y0 + h, x0:x0 + w]
            images.append(image)
        return images[0], images[1]

    def official(self) -> np.ndarray:
        return np.asarray(Image.open(self.folder / f"{self.n}.png"))

    def official_raw(self) -> np.ndarray | None:
        path = self.folder / f"{self.n}.raw.npy"
        return np.load(path) if path.is_file() else None


def official_cases(folder_name: str) -> list[OfficialCase]:
    folder = HERE / folder_name
    cases = []
    for row in csv.DictReader(open(folder / "cases.csv")):
        crop = tuple(int(v) for v in row["crop"].split(",")) if row["crop"] else None
        cases.append(OfficialCase(folder, row["n"], row["first"], row["second"], crop))
    return cases


def grey_as_test_py_reads(image: np.ndarray) -> np.ndarray:
    """``scipy.misc.imread(path, flatten=True, mode='YCbCr')`` of SDNet's ``test.py``: Pillow's YCbCr, then 'F'.

    For a grey ('L') image that is the image itself; an RGB file (TNO stores grey
    images as R = G = B) goes through Pillow's fixed-point YCbCr and back to RGB,
    which moves some values by one grey level; the official run saw those values.
    """
    return np.asarray(Image.fromarray(image).convert("YCbCr").convert("F"), dtype=np.float64)
