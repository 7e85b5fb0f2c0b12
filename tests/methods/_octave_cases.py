"""The six Harvard pairs of ``../shared/official/octave_runs`` (official MATLAB code run under Octave)."""
from __future__ import annotations

from pathlib import Path

OCTAVE_PAIRS = ["MRI-CT_2006", "MRI-CT_20010", "MRI-PET_25030", "MRI-PET_41052", "MRI-SPECT_3020", "MRI-SPECT_10030"]


def octave_case(shared_dir: Path, folder: str, name: str) -> tuple[Path, Path, Path]:
    """(MRI path, functional image path, Octave output path) of pair ``name`` in ``octave_runs/<folder>``."""
    task, pid = name.split("_")
    data = shared_dir / "data" / "harvard" / task
    return (data / "MRI" / f"{pid}.png", data / task.split("-")[1] / f"{pid}.png",
            shared_dir / "official" / "octave_runs" / folder / f"{name}.png")


def committed_cases(folder: str) -> list[dict[str, str]]:
    """The rows of ``tests/methods/<folder>/cases.csv``: reference runs made here, committed beside the tests
    (``scripts/reference_runs/README.md``); each row names its inputs relative to ``../shared`` and a crop."""
    import csv

    with open(Path(__file__).parent / folder / "cases.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def case_image(shared_dir: Path, rel: str, crop: str, *, grey: bool):
    """One input of a committed case as ``double(uint8)/255``, as the reference run read it: ``load_image``,
    cropped by ``"y0,x0,h,w"``, and with ``grey=True`` the 8-bit grey image (a colour image's quantised BT.601
    luma).  Skips the test when the shared file is missing."""
    import pytest

    from fusionbench import colour
    from fusionbench.io import load_image

    if not (shared_dir / rel).is_file():
        pytest.skip(f"{rel} not in shared")
    image = load_image(shared_dir / rel)
    if grey:
        image = colour.luma_uint8(image)
    if crop:
        y0, x0, h, w = (int(v) for v in crop.split(","))
        image = image[y0:y0 + h, x0:x0 + w]
    return image / 255.0


def committed_result(folder: str, name: str):
    """The reference run's uint8 result ``tests/methods/<folder>/<name>.png`` of a committed case."""
    from fusionbench.io import load_image

    return load_image(Path(__file__).parent / folder / f"{name}.png")
