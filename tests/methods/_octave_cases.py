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
