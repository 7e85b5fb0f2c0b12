"""Run the official SwinFusion ``test_swinfusion.py`` (Linfeng-Tang/SwinFusion @ ceeec3f), unchanged, on CPU
with torch 2.13 and a fusionbench-trained state dict (the official medical checkpoints are not obtainable).

    python run_swinfusion_official.py SWINFUSION_REPO WEIGHTS.pth OUT_DIR A.png:B.png[@y0,x0,h,w] ...

``test_swinfusion.py`` builds ``SwinFusion`` (``models/network_swinfusion1.py``; embed 60, depths
and heads 6×4, window 8), loads ``<model_path>/10000_E.pth`` with ``strict=True``, reads the
images of ``<root>/<dataset>/<A_dir>`` and ``<B_dir>`` (``cv2.imread(path, 0)``, /255), pads
each by flipping to a multiple of 8 plus up to one window, runs ``model(A, B)``, crops and
saves ``uint8(round(clip(out)·255))``.  This script writes each case's two images (cropped if
asked; A = MRI, B = the functional image, a colour one as its 8-bit luma) as ``<n>.png`` there,
writes ``10000_E.pth`` = the official model's own state dict (its 40 buffers: relative-position
indices and shift masks, fixed by the configuration) updated with every tensor of WEIGHTS.pth,
links ``10000_G.pth`` to it (the script only checks that it exists), sets ``sys.argv`` and runs
the script; results: ``OUT_DIR/<n>.png``, and ``OUT_DIR/cases.csv``.

Stand-ins (this project's own code; none is used to compute the network): ``cv2.imread(path, 0)``
(an 8-bit grey PNG as its array, via Pillow; any other flag or a colour file is refused),
``cv2.imwrite`` (Pillow), ``torchvision.utils.make_grid``, ``matplotlib``, ``mpl_toolkits``,
``requests`` (imported, unused) and ``timm.models.layers`` (as in ``run_matr_official.py``).
"""
from __future__ import annotations

import os
import runpy
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cases import crop_text, parse_case, write_manifest  # noqa: E402
from run_matr_official import _install_stand_ins as _install_torchvision_timm  # noqa: E402


def _refuse(name: str):
    def call(*args, **kwargs):
        raise RuntimeError(f"{name} is a stand-in: not used by the reference run")
    return call


def _install_stand_ins() -> None:
    _install_torchvision_timm()
    cv2 = types.ModuleType("cv2")

    def imread(path: str, flag: int = 1) -> np.ndarray:
        image = Image.open(path)
        if flag != 0 or image.mode != "L":
            raise ValueError(f"cv2.imread stand-in: grey 8-bit files with flag 0 only ({path}: {image.mode}, {flag})")
        return np.asarray(image)

    cv2.imread = imread
    cv2.imwrite = lambda path, image: Image.fromarray(np.asarray(image)).save(path) or True
    cv2.IMREAD_UNCHANGED, cv2.IMREAD_GRAYSCALE = -1, 0
    cv2.cvtColor = _refuse("cv2.cvtColor")
    sys.modules["cv2"] = cv2
    utils = types.ModuleType("torchvision.utils")
    utils.make_grid = _refuse("torchvision.utils.make_grid")
    sys.modules["torchvision.utils"] = utils
    sys.modules["torchvision"].utils = utils
    for name in ("matplotlib", "matplotlib.pyplot", "mpl_toolkits", "mpl_toolkits.mplot3d", "requests"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["mpl_toolkits.mplot3d"].Axes3D = object
    sys.modules["matplotlib"].pyplot = sys.modules["matplotlib.pyplot"]


def write_grey_case(source: Path, target: Path, crop: tuple[int, int, int, int] | None) -> None:
    """A grey file as is; a colour one as its 8-bit BT.601 luma (``fusionbench.colour.luma_uint8``), the grey
    image fusionbench's colour protocol gives the network (the official medical data are 'PET_Y' files)."""
    from fusionbench import colour

    image = np.asarray(Image.open(source))
    if image.ndim == 3:
        image = colour.luma_uint8(image)
    if crop is not None:
        y0, x0, h, w = crop
        image = image[y0:y0 + h, x0:x0 + w]
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image)).save(target)


def main(argv: list[str]) -> None:
    repo, weights, out = Path(argv[0]).resolve(), Path(argv[1]).resolve(), Path(argv[2]).resolve()
    work = out / "work"
    data = work / "Dataset" / "testsets" / "cases"
    rows = []
    for n, spec in enumerate(argv[3:], start=1):
        a, b, crop = parse_case(spec)
        for source, side in ((a, "A"), (b, "B")):
            write_grey_case(source, data / side / f"{n:03d}.png", crop)
        rows.append({"n": str(n), "a": str(a), "b": str(b), "crop": crop_text(crop)})
    write_manifest(out / "cases.csv", rows)
    _install_stand_ins()
    torch.set_num_threads(1)
    sys.path.insert(0, str(repo))
    network = importlib_network(repo)
    model = network.SwinFusion(upscale=1, in_chans=1, img_size=128, window_size=8, img_range=1.,
                               depths=[6, 6, 6, 6], embed_dim=60, num_heads=[6, 6, 6, 6], mlp_ratio=2,
                               upsampler=None, resi_connection='1conv')
    state = model.state_dict()
    ours = torch.load(weights, map_location="cpu", weights_only=True)
    unknown = set(ours) - set(state)
    if unknown:
        raise KeyError(f"tensors the official model does not have: {sorted(unknown)[:5]}")
    state.update(ours)
    models_dir = work / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state, models_dir / "10000_E.pth")
    shutil.copy(models_dir / "10000_E.pth", models_dir / "10000_G.pth")
    os.chdir(work)
    sys.argv = ["test_swinfusion.py", "--model_path", str(models_dir), "--iter_number", "10000",
                "--root_path", str(work / "Dataset" / "testsets"), "--dataset", "cases",
                "--A_dir", "A", "--B_dir", "B", "--in_channel", "1"]
    runpy.run_path(str(repo / "test_swinfusion.py"), run_name="__main__")
    for row in rows:
        shutil.copy(work / "results" / "SwinFusion_cases" / f"{int(row['n']):03d}.png", out / f"{row['n']}.png")


def importlib_network(repo: Path):
    import importlib

    return importlib.import_module("models.network_swinfusion1")


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(sys.argv[1:])
