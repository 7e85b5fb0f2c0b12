"""SwinFusion (Ma, Tang, Fan, Huang, Mei, Ma; IEEE/CAA JAS 9(7), 2022), re-trained here.

What this reproduces
--------------------
* **Network**: the ``swinfusion1`` variant of the official code
  (``Linfeng-Tang/SwinFusion`` @ ceeec3f, ``models/network_swinfusion1.py``) with
  the medical configuration of its options and test script (embed 60, window 8,
  6 heads, MLP ratio 2, patch size 1, ``img_size`` 128, extraction depth 4,
  fusion depths 2+2, reconstruction depth 4).  See :mod:`methods._swin_net` (network) and
  :mod:`methods._swin_blocks` (blocks and their inference path).
  Parameter and buffer names and shapes match the official state dict, so an
  official ``10000_E.pth`` loads with ``strict=True`` (``weights=PATH``).
  Measured against the official module itself (same weights), before issue 23's
  fused attention: bit-identical outputs (max |Δ| = 0) at 64², 128² and 61×77;
  the inference path now differs from the official formulation
  (``reference_attention()``) by float32 round-off, 1.0–1.3e-6 on the float map
  at those sizes (session 33; pinned ≤ 1e-5 and ≤ 1 grey level).  Since session 16
  the official ``test_swinfusion.py`` runs unchanged with the committed weights
  (``scripts/reference_runs/official_python``): its saved uint8 results equal
  ours on 99.9982 % of the values of 30 Harvard pairs (36 of 1,966,080 differ,
  by 1), and the 4 committed cases' 161,682 values on all but 1 (the measuring
  AVX-512 host) or 2 (an AVX2 host, session 33), pinned at ≥ 99.99 % per case in
  ``tests/methods/test_swinfusion.py`` (``docs/fidelity.md``).
  Official quirk kept: both modalities go through the A-branch shallow convs.
* **Inference**: as ``test_swinfusion.py``: mirror padding at the bottom/right
  by ``(h // 8 + 1)·8 − h`` rows (always at least one window, 256 → 264) with the
  edge row repeated, the network, crop back, clip to [0, 1].
* **Colour**: fused on the BT.601 luma of PET/SPECT, recoloured by luma
  replacement (fusionbench's shared protocol; the official code fuses a
  "PET_Y" channel and recombines the PET CbCr, which is the same operation).
* **Loss** (``models/loss_med.py``): 20·L1(F, max(A,B)) + 100·L1(|∇F|,
  max(|∇A|,|∇B|)) with |∇| = |Sobel_x| + |Sobel_y| (zero padding) + 50·(1 −
  ½SSIM(A,F) − ½SSIM(B,F)) with the 11×11, σ = 1.5 Gaussian SSIM (zero padding,
  C1 = 0.01², C2 = 0.03²); equal to the official ``loss_med.py`` to float32
  precision on a random batch (value pinned in the test).  See
  :mod:`methods._swinfusion_train`.

What does not match
-------------------
* **Weights**: the official medical checkpoints could not be obtained, so the
  committed weights (``methods/swinfusion_weights/``) were trained here on the
  Harvard *training* split with a **reduced schedule** (see the README there and
  ``docs/swinfusion.md``).  The outputs are therefore not the published
  SwinFusion's; no official medical outputs exist to compare with.

Two registered names, because a method does not see the task: ``swinfusion``
uses the MRI-PET/SPECT model, ``swinfusion.ct`` the MRI-CT model (the official
release also has one model per pair type).

Torch is imported lazily (inside functions and methods).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionbench.method_registry import register_method
from fusionbench.torch_method import TorchMethod, as_tensor
from fusionbench.weights import COMMITTED_FIX, sidecar_token, verify_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

WEIGHTS_DIR = Path(__file__).resolve().parent / "swinfusion_weights"
#: committed models: name → file in :data:`WEIGHTS_DIR`
MODELS = {"mri_pet_spect": "mri_pet_spect.pth", "mri_ct": "mri_ct.pth"}
WINDOW = 8

CITATION = ("J. Ma, L. Tang, F. Fan, J. Huang, X. Mei, Y. Ma, \"SwinFusion: Cross-domain long-range learning for "
            "general image fusion via Swin Transformer\", IEEE/CAA J. Autom. Sinica 9(7):1200-1217, 2022. "
            "Re-trained here (reduced schedule).")


# --------------------------------------------------------------------------- network / weights
def build_network(**kwargs: Any) -> "torch.nn.Module":
    """A fresh :class:`methods._swin_net.SwinFusionNet` (official medical configuration by default)."""
    from ._swin_net import SwinFusionNet

    return SwinFusionNet(**kwargs)


def compact_state_dict(net: "torch.nn.Module") -> dict[str, "torch.Tensor"]:
    """The state dict without the derived buffers (``relative_position_index``, ``attn_mask``).

    The buffers are functions of the configuration (and 48 MB of masks), so the
    committed files hold parameters only; :func:`load_weights` rebuilds them.
    """
    from ._swin_blocks import DERIVED_BUFFERS

    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()
            if not k.endswith(DERIVED_BUFFERS)}


def load_weights(net: "torch.nn.Module", path: str | Path) -> None:
    """Load a SwinFusion state dict into ``net``.

    A training run's ``final.pth`` (network + EMA) gives its EMA network.  A
    full state dict (an official ``*_E.pth``/``*_G.pth``, optionally under the
    KAIR ``'params'`` key) is loaded with ``strict=True``.  A compact one (no
    derived buffers, as committed here) must have every parameter and nothing
    else; the missing keys may only be the derived buffers.
    """
    import torch

    from ._swin_blocks import DERIVED_BUFFERS

    state = torch.load(path, map_location="cpu", weights_only=True)  # verified by the caller (sidecar) if committed
    if isinstance(state, dict) and "params" in state and isinstance(state["params"], dict):
        state = state["params"]
    if any(k.startswith("ema.") for k in state):      # a training run's final.pth: take the EMA network
        state = {k[4:]: v for k, v in state.items() if k.startswith("ema.")}
    if any(k.endswith(DERIVED_BUFFERS) for k in state):
        net.load_state_dict(state, strict=True)
        return
    result = net.load_state_dict(state, strict=False)
    bad_missing = [k for k in result.missing_keys if not k.endswith(DERIVED_BUFFERS)]
    if bad_missing or result.unexpected_keys:
        raise RuntimeError(f"{path}: not a SwinFusion state dict (missing {bad_missing[:5]}, "
                           f"unexpected {result.unexpected_keys[:5]})")


def committed_weights(model: str) -> Path:
    """Path of a committed model file, verified against its sidecar ``<stem>.sha256`` (memoised).

    Raises :class:`fusionbench.weights.ChecksumError` (one line naming the file) on a
    mismatch and ``FileNotFoundError`` when the file is absent.
    """
    if model not in MODELS:
        raise KeyError(f"unknown SwinFusion model {model!r}; known: {', '.join(MODELS)}")
    return verify_file(WEIGHTS_DIR / MODELS[model], fix=COMMITTED_FIX.replace("NAME", "swinfusion"))


# --------------------------------------------------------------------------- inference
def mirror_pad(x: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Pad H×W at the bottom/right as the official test script does.

    Adds ``(n // window + 1)·window − n`` rows/columns (1…window, never 0) that
    mirror the image *including* its edge row (``numpy`` 'symmetric').
    """
    h, w = x.shape[:2]
    ph = (h // window + 1) * window - h
    pw = (w // window + 1) * window - w
    return np.pad(x, ((0, ph), (0, pw)) + ((0, 0),) * (x.ndim - 2), mode="symmetric")




@register_method("swinfusion", display_name="SwinFusion", family="deep", citation=CITATION, colour="luma",
                 deterministic=True, version="1", params={"model": "mri_pet_spect", "weights": None},
                 uses_torch=True, trainable=True, tasks=("MRI-PET", "MRI-SPECT"),
                 description="SwinFusion (swinfusion1), re-trained here on Harvard train, reduced schedule; "
                             "MRI-PET/SPECT model")
@register_method("swinfusion.ct", display_name="SwinFusion", family="deep", citation=CITATION, colour="luma",
                 deterministic=True, version="1", params={"model": "mri_ct", "weights": None},
                 uses_torch=True, trainable=True, tasks=("MRI-CT",),
                 description="SwinFusion (swinfusion1), re-trained here on Harvard train, reduced schedule; "
                             "MRI-CT model")
class SwinFusion(TorchMethod):
    """SwinFusion inference: ``SwinFusion(model)(a, b)`` with ``a`` MRI, ``b`` PET/SPECT luma or CT.

    ``a``, ``b``: H×W float32 in [0, 1], any size and aspect (the official mirror
    pad of :func:`mirror_pad` makes H, W multiples of the 8-pixel window, at least
    one window more; the result is cropped back).  Returns H×W float32 in [0, 1].
    ``model``: ``'mri_pet_spect'`` or ``'mri_ct'`` (committed weights);
    ``weights``: a path that overrides them (e.g. an official ``10000_E.pth``).
    ``threads``: torch threads while fusing (restored after; default: unchanged,
    or the runner's per-worker cap).
    ``self.network`` is the torch module (eval mode, CPU);
    ``torch_inputs(size)`` gives example inputs for profiling.
    """

    @staticmethod
    def cache_token(model: str = "mri_pet_spect", weights: str | Path | None = None, **_: object) -> str:
        """The sha256 of the weights in use, so retrained weights never reuse cached outputs."""
        from fusionbench.io import sha256_file

        if not weights:
            return sidecar_token(WEIGHTS_DIR / MODELS[model])
        path = Path(weights)
        return sha256_file(path)[:16] if path.is_file() else "missing"

    @staticmethod
    def unavailable_error(model: str = "mri_pet_spect", weights: str | Path | None = None,
                          **_: object) -> Exception | None:
        """Why the model cannot load, as the exception loading it would raise (a committed file absent or not
        matching its sidecar, an unknown model, a ``weights`` path that is not a file), or ``None``; the committed
        file's check is :func:`committed_weights`' (memoised), so a corrupted file makes the method unavailable
        with one line instead of failing every pair (session 32)."""
        from fusionbench.weights import ChecksumError

        if weights:
            return None if Path(weights).is_file() else FileNotFoundError(f"{weights}: weights file not found")
        try:
            committed_weights(model)
        except (ChecksumError, FileNotFoundError) as exc:
            return exc
        except KeyError as exc:  # an unknown model: its message, not KeyError's quoted repr
            return ValueError(exc.args[0] if exc.args else str(exc))
        return None

    def __init__(self, model: str = "mri_pet_spect", weights: str | Path | None = None, threads: int | None = None):
        super().__init__(threads=threads)
        self.model = model
        self.weights_file = Path(weights) if weights else committed_weights(model)
        self.network = build_network().eval()
        load_weights(self.network, self.weights_file)

    def torch_inputs(self, size: int | tuple[int, int] = (256, 256)) -> tuple["torch.Tensor", "torch.Tensor"]:
        """(A, B) tensors of one forward pass fusing an H×W pair: 1×1×H'×W', mirror-padded as at inference."""
        import torch

        h, w = (size, size) if isinstance(size, int) else size
        g = torch.Generator().manual_seed(0)
        a = torch.from_numpy(mirror_pad(torch.rand(h, w, generator=g).numpy()))[None, None]
        b = torch.from_numpy(mirror_pad(torch.rand(h, w, generator=g).numpy()))[None, None]
        return a, b

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape
        with self.inference():
            out = self.network(as_tensor(mirror_pad(a)), as_tensor(mirror_pad(b)))[0, 0, :h, :w]
        return np.clip(out.numpy(), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- memory (issue 23)
_PEAK_SCRIPT = """
import resource, sys
import numpy as np
import torch
torch.set_num_threads({threads})
from fusionbench.api import fuse_arrays
from fusionbench.method_registry import create_method
rng = np.random.default_rng(0)
a = (rng.random(({size}, {size})) * 255).astype(np.uint8)
b = (rng.random(({size}, {size}, 3)) * 255).astype(np.uint8)
fuse_arrays(create_method("swinfusion"), a, b)
with open("/proc/self/status") as f:
    hwm = [line.split()[1] for line in f if line.startswith("VmHWM:")]
print(hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(size: int = 1024, threads: int = 1) -> float:
    """Peak resident memory (MB = 2**20 bytes) of a fresh Python process that fuses one size² MRI-PET pair.

    The process imports fusionbench, loads the committed ``swinfusion`` model and fuses a random uint8 pair
    through the runner's path (``fuse_arrays``) with ``threads`` torch threads; the figure is its
    ``VmHWM`` (peak resident set of its own address space, KiB), so it includes the interpreter, torch and
    the weights (≈ 0.4 GB), as a runner worker would.  Not ``ru_maxrss``: Linux carries the peak of the
    address space replaced by ``exec`` into it, i.e. the *parent's* when the child was spawned by vfork
    (used only where ``/proc`` is absent).  Torch allocations are invisible to ``tracemalloc``, hence a
    whole process.
    """
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT.format(size=int(size), threads=int(threads))],
                         check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 1024


# Training: `fusionbench train swinfusion[.ct]`, registered by methods._swinfusion_train (which imports this
# module; this module never imports it).
