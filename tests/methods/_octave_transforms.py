"""Helpers to compare our transforms with the Octave coefficient dumps (read at run time from
``../shared/official/octave_runs/transforms``; nothing from there is copied into the project)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def load_case(shared_dir: Path, setting: str, input_name: str) -> tuple[dict, np.ndarray]:
    pytest.importorskip("scipy.io")
    from scipy.io import loadmat

    folder = shared_dir / "official" / "octave_runs" / "transforms"
    path = folder / f"{setting}__{input_name}.mat"
    if not path.is_file():
        pytest.skip(f"missing Octave reference {path}")
    ref = loadmat(path)
    if "x" in ref:
        x = ref["x"]
    elif "x_uint8" in ref:
        x = ref["x_uint8"].astype(np.float64) / 255.0
    else:
        x = np.load(folder / f"{input_name}_seed0.npy")
    return ref, x


def band_errors(ref: dict, lowpass: np.ndarray, bands: list[np.ndarray]) -> dict[str, float]:
    """Max |ours − Octave| per band (full arrays, or the stored 37×37 samples), and the largest
    relative error of the per-direction L2 norms when only samples are stored."""
    out: dict[str, float] = {}
    assert len(bands) == int(ref["nlevels"][0, 0])
    assert [b.shape[0] for b in bands] == [int(v) for v in ref["ndirs"].ravel()]
    if "lowpass" in ref:
        out["lowpass"] = float(np.abs(ref["lowpass"] - lowpass).max())
        for l, b in enumerate(bands):
            out[f"band_l{l + 1}"] = float(np.abs(ref[f"band_l{l + 1}"] - b.transpose(1, 2, 0)).max())
        return out
    rows = ref["sample_rows"].ravel().astype(int) - 1
    cols = ref["sample_cols"].ravel().astype(int) - 1
    ix = np.ix_(rows, cols)
    out["lowpass"] = float(np.abs(ref["lowpass_samples"] - lowpass[ix]).max())
    for l, b in enumerate(bands):
        out[f"band_l{l + 1}"] = float(np.abs(ref[f"band_l{l + 1}_samples"] - b.transpose(1, 2, 0)[ix]).max())
        l2 = np.sqrt((b ** 2).sum(axis=(1, 2)))
        ref_l2 = ref[f"band_l{l + 1}_stats"][:, 4]
        out[f"band_l{l + 1}_l2_rel"] = float(np.abs(l2 - ref_l2).max() / ref_l2.max())
    return out
