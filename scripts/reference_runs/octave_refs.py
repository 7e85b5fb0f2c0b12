"""Inputs for run_nsct.m and run_mdl.m, and the compact NSCT sample files the tests read.

Usage::

    python scripts/reference_runs/octave_refs.py nsct-inputs DIR        # DIR/rand97x131.mat, DIR/mri200x240.mat
    python scripts/reference_runs/octave_refs.py nsct-samples FULL.mat SETTING INPUT
        # -> tests/methods/octave_nsct_nonsquare/SETTING__INPUT.mat
    python scripts/reference_runs/octave_refs.py mdl-input FILE.mat     # the 120x150 MRI-PET 25030 crop

The sample files have the layout of ``../shared/official/octave_runs/transforms`` (read by
``tests/methods/_octave_transforms.band_errors``): every band at 14-15 rows × 14-15 columns
(the borders and 8 rows/columns spread between them, 1-based ``sample_rows``/``sample_cols``)
and per-direction ``[mean std min max l2norm l1norm]`` over the whole band.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.io import loadmat, savemat

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "methods" / "octave_nsct_nonsquare"


def write_nsct_inputs(folder: Path, shared: Path = REPO.parent / "shared") -> None:
    from fusionbench.io import load_image

    folder.mkdir(parents=True, exist_ok=True)
    savemat(folder / "rand97x131.mat", {"x": np.random.RandomState(0).random_sample((97, 131))})
    mri = load_image(shared / "data" / "harvard" / "MRI-PET" / "MRI" / "25030.png")[30:230, 10:250]
    savemat(folder / "mri200x240.mat", {"x": mri.astype(np.float64) / 255.0})


def write_samples(full: Path, setting: str, name: str) -> Path:
    ref = loadmat(full)
    levels = sum(1 for key in ref if key.startswith("band_l"))
    h, w = ref["lowpass"].shape
    pick = lambda n: np.unique(np.r_[0, 1, 2, np.linspace(3, n - 4, 8).round().astype(int), n - 3, n - 2, n - 1])  # noqa: E731
    rows, cols = pick(h), pick(w)
    ix = np.ix_(rows, cols)
    out = {"sample_rows": rows + 1, "sample_cols": cols + 1, "nlevels": np.array([[levels]]),
           "setting": setting, "input_name": name, "recon_max_abs_err": ref["recon_max_abs_err"],
           "lowpass_samples": ref["lowpass"][ix]}
    ndirs = []
    for level in range(1, levels + 1):
        band = ref[f"band_l{level}"]
        band = band[..., None] if band.ndim == 2 else band
        ndirs.append(band.shape[2])
        flat = band.reshape(-1, band.shape[2])
        out[f"band_l{level}_samples"] = band[ix]
        out[f"band_l{level}_stats"] = np.stack([flat.mean(0), flat.std(0, ddof=1), flat.min(0), flat.max(0),
                                                np.sqrt((flat ** 2).sum(0)), np.abs(flat).sum(0)], axis=1)
    out["ndirs"] = np.array(ndirs)[None, :]
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{setting}__{name}.mat"
    savemat(path, out, do_compression=True)
    return path


def write_mdl_input(path: Path, shared: Path = REPO.parent / "shared") -> None:
    """``mri`` (grey) and ``pet`` (RGB), /255, of rows 40:160, cols 20:170 of Harvard MRI-PET 25030."""
    from fusionbench.io import load_image

    crop = (slice(40, 160), slice(20, 170))
    folder = shared / "data" / "harvard" / "MRI-PET"
    savemat(path, {"mri": load_image(folder / "MRI" / "25030.png")[crop] / 255.0,
                   "pet": load_image(folder / "PET" / "25030.png")[crop] / 255.0})


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    if sys.argv[1] == "nsct-inputs":
        write_nsct_inputs(Path(sys.argv[2]))
    elif sys.argv[1] == "nsct-samples":
        print(write_samples(Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
    elif sys.argv[1] == "mdl-input":
        write_mdl_input(Path(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
