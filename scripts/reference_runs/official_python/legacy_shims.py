"""Run 2019-2021 TensorFlow 1 research scripts, unchanged, under TensorFlow 2.15 (CPU).

Used by ``run_sdnet_tf.py`` and ``run_u2fusion_tf.py`` to make reference outputs of
the official SDNet and U2Fusion code.  Nothing here is imported by fusionbench.

What the old scripts need and what stands in for it (this project's own code):

* ``import tensorflow as tf`` with the TF1 graph API: ``tensorflow.compat.v1`` with
  v2 behaviour disabled is put in ``sys.modules['tensorflow']``.
* ``scipy.misc.imread / imsave / toimage`` (removed in SciPy 1.2/1.3): re-implemented
  from SciPy 1.1's documented ``pilutil`` behaviour, on Pillow:
  ``imread(path, flatten, mode)`` converts to ``mode`` (a palette image to RGB/RGBA)
  and then, with ``flatten``, to Pillow's ``'F'``; ``bytescale`` maps [cmin, cmax]
  linearly onto [0, 255] (cmin/cmax default to the data's min/max), clips, adds 0.5
  and truncates to uint8; ``toimage`` bytescales a float array and makes an 'L' or
  'RGB' image; ``imsave(path, arr)`` is ``toimage(arr).save(path)``.
  Every array saved is also recorded unrounded: ``<path>.raw.npy``.
* ``np.float`` (removed in NumPy 1.24) is ``float``; ``collections.Iterable`` is
  ``collections.abc.Iterable``.
* modules imported but not used on the inference path (``cv2``, ``IPython.display``,
  ``matplotlib``, ``skimage``) are empty stand-ins.
"""
from __future__ import annotations

import collections
import collections.abc
import sys
import types

import numpy as np
from PIL import Image


def bytescale(data: np.ndarray, cmin: float | None = None, cmax: float | None = None,
              high: int = 255, low: int = 0) -> np.ndarray:
    """SciPy 1.1 ``scipy.misc.bytescale``."""
    if data.dtype == np.uint8:
        return data
    cmin = data.min() if cmin is None else cmin
    cmax = data.max() if cmax is None else cmax
    cscale = cmax - cmin
    if cscale < 0:
        raise ValueError("cmax should be larger than cmin")
    if cscale == 0:
        cscale = 1
    scale = float(high - low) / cscale
    scaled = (data - cmin) * scale + low
    return (scaled.clip(low, high) + 0.5).astype(np.uint8)


class _RecordingImage:
    """What ``toimage`` returns: ``.save(path)`` writes the 8-bit image and ``<path>.raw.npy``."""

    def __init__(self, raw: np.ndarray, image: Image.Image) -> None:
        self.raw = raw
        self.image = image

    def save(self, path: str, *args, **kwargs) -> None:
        self.image.save(path, *args, **kwargs)
        np.save(str(path) + ".raw.npy", np.asarray(self.raw))


def toimage(arr: np.ndarray, high: int = 255, low: int = 0, cmin=None, cmax=None, **_ignored) -> _RecordingImage:
    """SciPy 1.1 ``scipy.misc.toimage`` for 2-D and H×W×3 float arrays (the cases the scripts use)."""
    data = np.asarray(arr)
    if data.ndim == 2:
        mode = "L"
    elif data.ndim == 3 and data.shape[2] == 3:
        mode = "RGB"
    else:
        raise ValueError(f"toimage stand-in: unsupported shape {data.shape}")
    byte = bytescale(data, cmin=cmin, cmax=cmax, high=high, low=low)
    return _RecordingImage(data, Image.fromarray(np.ascontiguousarray(byte), mode=mode))


def imsave(path: str, arr: np.ndarray, format=None) -> None:
    """SciPy 1.1 ``scipy.misc.imsave``: ``toimage(arr).save(path)``."""
    toimage(arr).save(path)


def imread(path: str, flatten: bool = False, mode: str | None = None) -> np.ndarray:
    """SciPy 1.1 ``scipy.misc.imread`` (``pilutil.fromimage`` on ``Image.open``)."""
    im = Image.open(path)
    if mode is not None:
        if mode != im.mode:
            im = im.convert(mode)
    elif im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if flatten:
        im = im.convert("F")
    elif im.mode == "1":
        im = im.convert("L")
    return np.array(im)


def _empty_module(name: str) -> types.ModuleType:
    """A module whose every attribute access fails, naming the attribute (imported, never used)."""
    module = types.ModuleType(name)

    def missing(attr: str):
        raise AttributeError(f"{name}.{attr} is a stand-in: not available to the reference run")

    module.__getattr__ = missing  # type: ignore[attr-defined]
    return module


def install() -> object:
    """Install every stand-in; returns the ``tensorflow.compat.v1`` module."""
    import scipy
    import tensorflow as real_tf

    tf1 = real_tf.compat.v1
    tf1.disable_v2_behavior()
    sys.modules["tensorflow"] = tf1

    misc = types.ModuleType("scipy.misc")
    misc.imread, misc.imsave, misc.toimage, misc.bytescale = imread, imsave, toimage, bytescale
    sys.modules["scipy.misc"] = misc
    scipy.misc = misc

    if not hasattr(np, "float"):
        np.float = float  # type: ignore[attr-defined]
    collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]

    for name in ("cv2", "IPython", "matplotlib", "matplotlib.pyplot", "matplotlib.image",
                 "skimage", "skimage.transform", "skimage.data"):
        sys.modules.setdefault(name, _empty_module(name))
    sys.modules["IPython"].display = _empty_module("IPython.display")  # type: ignore[attr-defined]
    sys.modules["IPython.display"] = sys.modules["IPython"].display
    skimage = sys.modules["skimage"]
    skimage.transform = sys.modules["skimage.transform"]  # type: ignore[attr-defined]
    skimage.data = sys.modules["skimage.data"]  # type: ignore[attr-defined]
    skimage.img_as_ubyte = lambda x: x  # type: ignore[attr-defined]
    return tf1
