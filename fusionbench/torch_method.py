"""A small base for torch fusion methods: verified weights, tensors in and out, threads by context.

Every deep method repeats the same skeleton: build a network, load a weight file,
turn H×W float arrays into ``1×C×H×W`` tensors, run the network in eval mode
without autograd, turn the result back into an array.  This module holds that
skeleton once; it names no particular method.

* :func:`registered_state` — the state dict of a registered third-party file
  (:func:`fusionbench.weights.weights_path`: in the cache, sha256 verified).
* :func:`load_state` — ``torch.load`` of a weight file (``weights_only=True``, CPU)
  **after** its sha256 was checked by :func:`fusionbench.weights.verify_file`
  (against a pinned digest, or the ``<stem>.sha256`` sidecar beside ``<stem>.pth``).
* :func:`as_tensor` / :func:`as_array` — numpy ↔ tensor (H×W ↔ 1×1×H×W,
  H×W×C ↔ 1×C×H×W), float32 by default, no copy where none is needed.
* :func:`torch_threads` — the torch intra-op thread count **for the duration of a
  ``with`` block**, restored afterwards (never set globally by a method).
* :func:`pad_to_multiple` / :func:`crop` — reflect-pad the bottom/right of an image
  to a multiple of what a network needs and cut the result back (the pad adds rows
  *after* the image, so the top-left pixels keep their position).
* :class:`TorchMethod` — a base class with those pieces: ``self.network``,
  ``self.threads`` and :meth:`TorchMethod.inference` (threads + ``eval`` +
  ``torch.inference_mode``).

Example (a complete deep method)::

    import numpy as np
    from fusionbench.method_registry import register_method
    from fusionbench.torch_method import TorchMethod, as_array, as_tensor, crop, registered_state
    from fusionbench.weights import register_weights

    register_weights("toynet", filename="toynet.pth", sha256="…", url="https://…", method_dir="toynet")

    @register_method("toynet", family="deep", weights=("toynet",), uses_torch=True)
    class ToyNet(TorchMethod):
        pad_multiple = 8                       # the network needs H, W multiples of 8

        def __init__(self, threads: int | None = None) -> None:
            super().__init__(threads=threads)
            self.network = build_toynet()      # any torch.nn.Module
            self.network.load_state_dict(registered_state("toynet"))  # sha256 verified at load

        def torch_inputs(self, size=(256, 256)):   # for fusionbench.profile
            import torch
            return (torch.rand(1, 1, *size), torch.rand(1, 1, *size))

        def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            (pa, pb), shape = self.pad(a, b)
            with self.inference():
                out = self.network(as_tensor(pa), as_tensor(pb))
            return crop(np.clip(as_array(out), 0, 1), shape)

Committed weights (no download) are read with the sidecar instead of a pinned
digest: ``load_state(path)`` with ``path.with_suffix(".sha256")`` present.

Torch is imported inside the functions, so importing this module stays light.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from .config import worker_threads
from .weights import verify_file, weights_path

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["TorchMethod", "as_array", "as_tensor", "crop", "load_state", "pad_amounts", "pad_to_multiple",
           "registered_state", "torch_threads"]


# --------------------------------------------------------------------------- weights
def load_state(path: str | Path, sha256: str | None = None, *, fix: str | None = None, verify: bool = True) -> Any:
    """``torch.load(path, weights_only=True, map_location='cpu')`` after verifying the file's sha256.

    ``sha256``: the pinned digest; ``None`` reads the ``<stem>.sha256`` sidecar.
    ``fix``: the command that repairs a bad file, for the error message (see
    :func:`fusionbench.weights.verify_file`).  Raises
    :class:`fusionbench.weights.ChecksumError` (one line naming the file) on a mismatch.
    ``verify=False`` loads a file the caller supplied and vouches for (e.g. a path
    given on purpose to compare checkpoints).
    """
    import torch

    if verify:
        path = verify_file(path, sha256, fix=fix)
    return torch.load(path, map_location="cpu", weights_only=True)


def registered_state(name: str) -> Any:
    """The state dict of the registered weight file ``name`` (cached, verified against its pinned sha256)."""
    import torch

    return torch.load(weights_path(name), map_location="cpu", weights_only=True)  # weights_path verifies


def load_network(build: Callable[[], Any], weights: str, path: str | Path | None = None) -> Any:
    """``build()`` with its official weights loaded strictly (``strict=True``), in eval mode.

    Default: the registered weight file ``weights`` (cached, verified against its pinned sha256); ``path``:
    a file the caller supplies (loaded as is)."""
    net = build()
    net.load_state_dict(load_state(path, verify=False) if path else registered_state(weights), strict=True)
    return net.eval()


# --------------------------------------------------------------------------- tensors
def as_tensor(x: np.ndarray, dtype: Any = np.float32) -> "torch.Tensor":
    """H×W → 1×1×H×W, H×W×C → 1×C×H×W (a contiguous CPU tensor of ``dtype``)."""
    import torch

    x = np.asarray(x, dtype=dtype)
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 3:
        x = x.transpose(2, 0, 1)
    else:
        raise ValueError(f"expected an H×W or H×W×C image, got shape {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x))[None]


def as_array(t: "torch.Tensor") -> np.ndarray:
    """The first item of a batch as numpy: 1×1×H×W → H×W, 1×C×H×W → H×W×C (C > 1)."""
    x = t.detach().cpu()[0].numpy()
    return x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)


# --------------------------------------------------------------------------- threads
@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads, then restore the previous count.

    ``None`` or 0 leaves the count unchanged.  The count is a process-wide torch
    setting; setting it only for the block keeps one method from changing it for
    the others (and for the metrics) in the same process.
    """
    import torch

    old = torch.get_num_threads()
    change = bool(threads) and int(threads) != old
    if change:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)


# --------------------------------------------------------------------------- sizes
def pad_amounts(h: int, w: int, multiple: int | tuple[int, int]) -> tuple[int, int]:
    """Rows and columns to add at the bottom/right so that H and W become multiples of ``multiple``."""
    mh, mw = (multiple, multiple) if isinstance(multiple, int) else multiple
    return (-h) % mh, (-w) % mw


def pad_to_multiple(x: np.ndarray, multiple: int | tuple[int, int], mode: str = "reflect") -> np.ndarray:
    """Pad an H×W(×C) image at the bottom/right to multiples of ``multiple`` (``numpy.pad`` ``mode``).

    ``reflect`` mirrors without repeating the edge row (``dcb|abcd|cba``);
    ``symmetric`` repeats it (``dcba|abcd|dcba``).  Pads longer than the image are
    reflected again, as ``numpy.pad`` does.  Returns ``x`` itself when nothing is needed.
    """
    ph, pw = pad_amounts(x.shape[0], x.shape[1], multiple)
    if not (ph or pw):
        return x
    if mode == "reflect" and (x.shape[0] == 1 and ph or x.shape[1] == 1 and pw):
        mode = "edge"  # a single row/column has nothing to reflect
    return np.pad(x, ((0, ph), (0, pw)) + ((0, 0),) * (x.ndim - 2), mode=mode)


def crop(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The top-left ``shape[:2]`` of an H×W(×C) array (undoes :func:`pad_to_multiple`)."""
    return x[: shape[0], : shape[1]]


# --------------------------------------------------------------------------- base class
class TorchMethod:
    """Base of a registered deep-method class.

    Subclasses set ``self.network`` (a ``torch.nn.Module``, or a list of modules
    with ``torch_forward``, see :mod:`fusionbench.profile`) and define
    ``__call__(a, b)``.  Class attributes:

    * ``pad_multiple`` — H and W the network needs are multiples of this (1 = any);
      :meth:`pad` reflect-pads the inputs and returns the original shape for :func:`crop`;
    * ``pad_mode`` — the ``numpy.pad`` mode of :meth:`pad` (``"reflect"``).

    ``threads`` (constructor): torch threads used inside :meth:`inference` only;
    ``None`` uses the runner's per-worker cap (``FUSIONBENCH_WORKER_THREADS``) in
    a worker and leaves torch's setting alone elsewhere.
    """

    pad_multiple: int | tuple[int, int] = 1
    pad_mode: str = "reflect"
    network: Any = None

    def __init__(self, threads: int | None = None) -> None:
        self.threads = int(threads) if threads else None

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        """Threads for this method, networks in eval mode, ``torch.inference_mode``."""
        import torch

        modules = self.network if isinstance(self.network, (list, tuple)) else [self.network]
        for m in modules:
            if m is not None and m.training:
                m.eval()
        with torch_threads(self.threads or worker_threads()), torch.inference_mode():
            yield

    def pad(self, *images: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[int, int]]:
        """Pad every image to ``pad_multiple`` (``pad_mode``); returns (padded images, original H, W)."""
        shape = images[0].shape[:2]
        if any(im.shape[:2] != shape for im in images):
            raise ValueError(f"images differ in size: {[im.shape for im in images]}")
        return tuple(pad_to_multiple(im, self.pad_multiple, self.pad_mode) for im in images), shape
