"""Reference cases shared by the CNP and DTNP fidelity tests (read from ``../shared`` at run time)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

import fusionbench
from ._fidelity import Agreement, agreement
from fusionbench.io import load_image

from ._octave_cases import OCTAVE_PAIRS  # noqa: F401  (re-exported for the CNP/DTNP tests)
# results/<k>.tif of the official repositories, fused from DTNP-MIF's images/c<kk>_{1,2}.tif
# (c10 is withheld from ../shared).
OFFICIAL_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12]


def octave_inputs(shared_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(MRI, grey functional image) exactly as the Octave driver fed them.

    CT is used as is; PET/SPECT is MATLAB's ``rgb2gray`` luma saved by the driver.
    """
    task, pid = name.split("_")
    data = shared_dir / "data" / "harvard" / task
    mri = load_image(data / "MRI" / f"{pid}.png")
    if task == "MRI-CT":
        functional = load_image(data / "CT" / f"{pid}.png")
    else:
        functional = load_image(shared_dir / "official" / "octave_runs" / "cnp_dtnp_inputs" / f"{name}_luma.png")
    return mri, functional


def octave_rgb(shared_dir: Path, name: str) -> np.ndarray:
    task, pid = name.split("_")
    return load_image(shared_dir / "data" / "harvard" / task / task.split("-")[1] / f"{pid}.png")


def octave_reference(shared_dir: Path, folder: str, name: str) -> np.ndarray:
    return load_image(shared_dir / "official" / "octave_runs" / folder / f"{name}.png")


def fuse_official_pair(method: str, official_dir: Path, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(port output, official output) for ``results/<k>.tif``.

    The official ``main.m`` takes ``c<kk>_1`` as image 1 and ``c<kk>_2`` as image 2;
    the registered methods take (MRI, functional) and pass the functional image
    first, so ``c<kk>_2`` goes in as ``a`` and ``c<kk>_1`` as ``b``.
    """
    inputs = official_dir / "dtnp" / "inputs"
    img1 = load_image(inputs / f"c{k:02d}_1.tif")
    img2 = load_image(inputs / f"c{k:02d}_2.tif")
    out = fusionbench.fuse(method, img2, img1)
    return out, load_image(official_dir / method / "outputs" / f"{k}.tif")


def octave_agreement(shared_dir: Path, method: str, folder: str, names) -> Agreement:
    """Agreement of ``method`` with the Octave runs in ``octave_runs/<folder>/`` on the named pairs."""
    outs, refs = [], []
    for name in names:
        mri, functional = octave_inputs(shared_dir, name)
        outs.append(fusionbench.fuse(method, mri, functional))
        refs.append(octave_reference(shared_dir, folder, name))
    return agreement(outs, refs)


def official_agreement(method: str, official_dir: Path, ids: Sequence[int] = tuple(OFFICIAL_IDS)) -> Agreement:
    """Agreement of ``method`` with the authors' ``results/<k>.tif`` for every k in ``ids`` (default all)."""
    outs, refs = zip(*(fuse_official_pair(method, official_dir, k) for k in ids))
    return agreement(list(outs), list(refs))


def check_luma_path(shared_dir: Path, method: str, folder: str, name: str, exact: float, within1: float,
                    psnr: float) -> None:
    """The runner's path for a colour PET (BT.601 luma instead of MATLAB's ``rgb2gray``): the grey fused luma
    against the Octave run within the measured ``exact`` share, ``within1`` share and ``psnr`` (small margins;
    the same on every CPU), and the colour output's shape (PET chroma put back by the runner)."""
    from fusionbench import colour

    mri, _ = octave_inputs(shared_dir, name)
    rgb = octave_rgb(shared_dir, name)
    agr = agreement([fusionbench.fuse(method, mri, colour.luma(rgb))], [octave_reference(shared_dir, folder, name)])
    assert agr.exact >= exact - 0.001 and agr.within1 >= within1 - 0.0001 and agr.psnr >= psnr - 0.1, str(agr)
    out = fusionbench.fuse(method, mri, rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
