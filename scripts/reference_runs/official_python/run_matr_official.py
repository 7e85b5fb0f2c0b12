"""Run the official MATR ``Test.py`` (tthinking/MATR @ b427644), unchanged, on CPU with torch 2.13.

    python run_matr_official.py MATR_REPO WEIGHTS.pth OUT_DIR FUNCTIONAL:MRI[@y0,x0,h,w] ...

``Test.py`` loads ``models/model_10.pth`` at import, and its ``fusion()`` reads
``./source images/SPECT_001.bmp`` (the functional image) and
``./source images/MRI_001.bmp`` with ``Image.open(path).convert('L')``, feeds
``[functional, MRI]`` and writes ``./fusion result/0.bmp`` =
``(out * 255).astype(np.uint8)``.  This script imports ``Test.py`` once from a
working directory holding ``models/model_10.pth`` (linked), then, for each case,
writes the two images under those names (BMP, cropped if asked, square crops
only: the official network needs a square), calls ``fusion()`` and keeps the
result as ``OUT_DIR/<n>.png``; ``OUT_DIR/cases.csv`` lists the cases.

Stand-ins (this project's own code, for packages fusionbench does not install):
``torchvision.transforms.ToTensor`` (an 'L' image → 1×H×W float32 / 255, what
torchvision documents), ``imageio.imwrite`` (Pillow), and ``timm.models.layers``
(``to_2tuple``; ``DropPath``, the identity in evaluation, and ``trunc_normal_``, used only to
initialise weights that are then loaded).
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cases import crop_text, parse_case, write_case, write_manifest  # noqa: E402


def _install_stand_ins() -> None:
    transforms = types.ModuleType("torchvision.transforms")

    class ToTensor:
        def __call__(self, image: Image.Image) -> torch.Tensor:
            array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
            return torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())

    transforms.ToTensor = ToTensor
    torchvision = types.ModuleType("torchvision")
    torchvision.transforms = transforms
    sys.modules.update({"torchvision": torchvision, "torchvision.transforms": transforms})

    imageio = types.ModuleType("imageio")
    imageio.imwrite = lambda path, array: Image.fromarray(np.asarray(array)).save(path)
    sys.modules["imageio"] = imageio

    class DropPath(torch.nn.Module):
        """Stochastic depth: the identity in evaluation, which is all a test script runs."""

        def __init__(self, drop_prob: float = 0.0) -> None:
            super().__init__()
            self.drop_prob = drop_prob

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training and self.drop_prob > 0:
                raise RuntimeError("DropPath stand-in: evaluation only")
            return x

    layers = types.ModuleType("timm.models.layers")
    layers.DropPath = DropPath
    layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
    layers.trunc_normal_ = lambda tensor, std=1.0, **_: torch.nn.init.trunc_normal_(tensor, std=std)
    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    timm.models, models.layers = models, layers
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers})


def main(argv: list[str]) -> None:
    repo, weights, out = Path(argv[0]).resolve(), Path(argv[1]).resolve(), Path(argv[2]).resolve()
    work = out / "work"
    (work / "models").mkdir(parents=True, exist_ok=True)
    (work / "source images").mkdir(exist_ok=True)
    (work / "fusion result").mkdir(exist_ok=True)
    model_link = work / "models" / "model_10.pth"
    if not model_link.exists():
        model_link.symlink_to(weights)
    _install_stand_ins()
    torch.set_num_threads(1)
    sys.path.insert(0, str(repo))
    os.chdir(work)
    test = importlib.import_module("Test")
    rows = []
    for n, spec in enumerate(argv[3:], start=1):
        functional, mri, crop = parse_case(spec)
        write_case(functional, work / "source images" / "SPECT_001.bmp", crop)
        write_case(mri, work / "source images" / "MRI_001.bmp", crop)
        with torch.no_grad():
            test.fusion()
        shutil.copy(work / "fusion result" / "0.bmp", out / f"{n}.bmp")
        Image.open(out / f"{n}.bmp").save(out / f"{n}.png")
        (out / f"{n}.bmp").unlink()
        rows.append({"n": str(n), "functional": str(functional), "mri": str(mri), "crop": crop_text(crop)})
    write_manifest(out / "cases.csv", rows)


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(sys.argv[1:])
