"""The built-in default dataset: real anatomy, simulated partners, no download.

Anatomy is the MNI152 ICBM 2009 T1 template with its grey/white-matter maps,
which nilearn's wheel ships.  For each task a handful of axial, coronal and
sagittal slices are cut, padded square and resampled to 256×256, and a partner
is simulated from the tissue maps:

* ``builtin-mri-pet``: FDG-PET-like uptake (grey matter 1.0, white matter 0.3,
  other head tissue 0.1), blurred to ~6 mm FWHM, Poisson noise at ~60 counts
  per unit uptake, shown with a blue→red→yellow pseudo-colour map (as the
  Harvard PET);
* ``builtin-mri-spect``: perfusion-like (grey 1.0, white 0.45), ~10 mm FWHM,
  noisier (~25 counts), a different pseudo-colour map (as the Harvard SPECT);
* ``builtin-mri-ct``: CT-like (a simulated skull shell ≈ 1.0 around the
  skull-stripped template's brain mask, soft tissue 0.3, CSF-like 0.2, air 0),
  mild Gaussian noise, grey.

Generation is deterministic (fixed seeds, fixed slices) and cached in
``$FUSIONBENCH_HOME/data/builtin-<GENERATOR_VERSION>``; a second call only
reads the PNGs.  These images are *simulations*: use them to exercise the
suite, never to rank methods for a paper.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fusionbench.io import save_png, sha256_file

from .base import Dataset, Pair, register_dataset

GENERATOR_VERSION = "v1"
# (axis, fractional position) of the slices: 0 = sagittal (x), 1 = coronal (y), 2 = axial (z)
SLICES = [(2, 0.42), (2, 0.55), (2, 0.66), (1, 0.45), (1, 0.60), (0, 0.40), (0, 0.50)]
AXIS_NAME = {0: "sag", 1: "cor", 2: "ax"}
TASKS = {"builtin-mri-pet": "MRI-PET", "builtin-mri-spect": "MRI-SPECT", "builtin-mri-ct": "MRI-CT"}
TITLES = {"builtin-mri-pet": "MRI-PET (built-in, simulated PET)", "builtin-mri-spect": "MRI-SPECT (built-in, simulated SPECT)",
          "builtin-mri-ct": "MRI-CT (built-in, simulated CT)"}
SIZE = 256


def _volumes() -> dict[str, np.ndarray]:
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=1).get_fdata().astype(np.float32)
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata().astype(np.float32)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata().astype(np.float32)
    brain = datasets.load_mni152_brain_mask(resolution=1).get_fdata() > 0.5
    return {"t1": t1, "gm": gm, "wm": wm, "brain": brain.astype(np.float32)}


def _slice(vol: np.ndarray, axis: int, frac: float) -> np.ndarray:
    from scipy import ndimage
    idx = int(round(frac * (vol.shape[axis] - 1)))
    sl = vol[(slice(None),) * axis + (idx,)]  # a view (np.take copied: 24 ms a slice across the volume)
    sl = np.rot90(sl)  # radiological display: superior/anterior up
    h, w = sl.shape
    side = max(h, w)
    padded = np.zeros((side, side), dtype=np.float32)
    padded[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = sl
    return ndimage.zoom(padded, SIZE / side, order=1)[:SIZE, :SIZE]


def _fwhm_px(mm: float) -> float:
    # 1 mm voxels, padded side ≈ 233 px resampled to 256
    return mm * SIZE / 233 / 2.3548


def _pseudo_colour(values: np.ndarray, cmap: str) -> np.ndarray:
    from matplotlib import colormaps

    rgb = colormaps[cmap](np.clip(values, 0, 1))[..., :3]
    rgb[values <= 0.02] = 0
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def _simulate(task: str, vols: dict[str, np.ndarray], axis: int, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    t1, gm, wm, brain = (_slice(vols[k], axis, frac) for k in ("t1", "gm", "wm", "brain"))
    head = t1 > 0.08
    mri = np.clip(t1 / max(float(t1.max()), 1e-6), 0, 1)
    mri_u8 = np.round(mri * 255).astype(np.uint8)
    if task in ("MRI-PET", "MRI-SPECT"):
        white, fwhm, counts, cmap = (0.3, 6.0, 60.0, "nipy_spectral") if task == "MRI-PET" else (0.45, 10.0, 25.0, "CMRmap")
        uptake = gm + white * wm + 0.1 * (head & (brain < 0.5))
        uptake = ndimage.gaussian_filter(uptake, _fwhm_px(fwhm))
        noisy = rng.poisson(np.clip(uptake, 0, None) * counts) / counts
        noisy = ndimage.gaussian_filter(noisy, 0.8)
        b = _pseudo_colour(noisy / max(float(np.percentile(noisy, 99.5)), 1e-6) * 0.95, cmap)
    else:
        # The template is skull-stripped: a skull (and scalp) shell is simulated around the brain mask.
        inside = brain > 0.5
        skull = ndimage.binary_dilation(inside, iterations=9) & ~ndimage.binary_dilation(inside, iterations=4)
        scalp = ndimage.binary_dilation(inside, iterations=12)
        csf = inside & (gm + wm < 0.3)
        ct = np.where(scalp, 0.3, 0.0) + np.where(csf, -0.1, 0.0) + np.where(skull, 0.7, 0.0)
        ct = ndimage.gaussian_filter(ct, 0.7) + rng.normal(0, 0.01, ct.shape) * scalp
        b = np.clip(np.round(ct * 255), 0, 255).astype(np.uint8)
    return mri_u8, b


def builtin_root() -> Path:
    """Where the built-in pairs are generated and cached: ``<data dir>/builtin-<GENERATOR_VERSION>``."""
    from fusionbench.config import data_dir as default_data_dir

    return default_data_dir() / f"builtin-{GENERATOR_VERSION}"


def generate(root: Path | None = None) -> Path:
    """Write every built-in pair under ``root`` (idempotent; skips when complete)."""
    root = root or builtin_root()
    done = root / "COMPLETE"
    if done.is_file():
        return root
    vols = _volumes()
    for t_index, (name, task) in enumerate(TASKS.items()):
        for s_index, (axis, frac) in enumerate(SLICES):
            pid = f"{AXIS_NAME[axis]}{int(frac * 100):02d}"
            a, b = _simulate(task, vols, axis, frac, seed=1000 * t_index + s_index)
            save_png(root / name / "a" / f"{pid}.png", a)
            save_png(root / name / "b" / f"{pid}.png", b)
    done.write_text(GENERATOR_VERSION + "\n")
    return root


def _builtin(name: str) -> Dataset:
    root = generate() / name
    pairs = []
    for a in sorted((root / "a").glob("*.png")):
        b = root / "b" / a.name
        pairs.append(Pair(name, a.stem, TASKS[name], a, b, sha256=sha256_file(a)[:32] + sha256_file(b)[:32]))
    ids = [p.id for p in pairs]
    task = TASKS[name]
    return Dataset(name, pairs, {"test": ids, "train": []}, f"builtin-{GENERATOR_VERSION}",
                   description="simulated partners on the MNI152 template (nilearn)", task=task, title=TITLES[name],
                   modalities={"a": "MRI", "b": task.split("-")[1]},
                   licence="simulated from the MNI152 ICBM 2009 templates as shipped in nilearn (their notice applies)",
                   citation="V. Fonov et al., NeuroImage 54 (2011) 313-327 (MNI152 ICBM 2009)",
                   group_note="simulated slices of one template; no groups")


@register_dataset("builtin-mri-pet", task="MRI-PET", title=TITLES["builtin-mri-pet"], splits=("test", "train"),
                  description="built-in: MNI152 T1 + simulated FDG-PET (no download)")
def builtin_mri_pet(data_dir: str | Path | None = None) -> Dataset:
    """The built-in MRI-PET dataset (7 MNI152 slices, simulated FDG-PET; ``test`` split only).
    ``data_dir`` is unused: the pairs live under :func:`builtin_root`."""
    return _builtin("builtin-mri-pet")


@register_dataset("builtin-mri-spect", task="MRI-SPECT", title=TITLES["builtin-mri-spect"], splits=("test", "train"),
                  description="built-in: MNI152 T1 + simulated SPECT (no download)")
def builtin_mri_spect(data_dir: str | Path | None = None) -> Dataset:
    """The built-in MRI-SPECT dataset (7 MNI152 slices, simulated perfusion SPECT; ``test`` split only).
    ``data_dir`` is unused: the pairs live under :func:`builtin_root`."""
    return _builtin("builtin-mri-spect")


@register_dataset("builtin-mri-ct", task="MRI-CT", title=TITLES["builtin-mri-ct"], splits=("test", "train"),
                  description="built-in: MNI152 T1 + simulated CT (no download)")
def builtin_mri_ct(data_dir: str | Path | None = None) -> Dataset:
    """The built-in MRI-CT dataset (7 MNI152 slices, simulated CT; ``test`` split only).
    ``data_dir`` is unused: the pairs live under :func:`builtin_root`."""
    return _builtin("builtin-mri-ct")


DEFAULT_DATASETS = tuple(TASKS)
