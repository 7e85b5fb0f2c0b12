"""Losses of Di et al. (2025), §1.5, Eq. 8-13; each term is its own function.

All images are N×1×H×W tensors in [0, 1]; every term is a mean over pixels
(the paper's 1/(HW)·Σ) and over the batch.  Where the text is silent we follow
the code §2 copies, SDNet's official medical training (``Medical/model.py``;
``../shared/notes/baselines.md`` §4), whose schedule and loss weights 10/1/1
the paper repeats.  The reading is a :class:`LossReading`; the registered
``mopa`` uses the default one:

* :func:`intensity_loss` (Eq. 11): ``mean((F - I1)²) + α·mean((F - I2)²)``
  with **I1 the functional source (PET/SPECT luma, or CT), I2 the MRI and
  α = 0.5** — SDNet's ``MSE(F, func) + 0.5·MSE(F, MRI)`` (the paper names α
  and gives no value).
* :func:`gradient_loss` (Eq. 12): ``mean(S1·‖∇F - ∇I1‖² + S2·‖∇F - ∇I2‖²)``.
  **∇** (``grad_op``): ``"sobel"`` (default) — the Sobel gradient (gx, gy),
  ``‖·‖²`` summing its two squared components (the text: "∇ is the gradient
  operator", a squared Euclidean norm, and S "computed by using Sobel's
  operator"); ``"laplacian"`` — SDNet's 4-neighbour Laplacian.  **S**
  (``weights``): ``"max"`` (default) — SDNet's 0/1 score maps: S = 1 for the
  source whose gradient is stronger at that pixel, 0 for the other (ties go
  to I1), strength measured with the same operator (Sobel magnitude, or
  SDNet's |Laplacian of the 3×3-low-passed source|); ``"soft"`` — the v1
  reading ``S_k = (g_k + ε)/(g_1 + g_2 + 2ε)``.  S depends on the sources only.
* :func:`decouple_loss` (Eq. 13): ``mean((D_mri - MRI)²) + mean((D_func - func)²)``.
* :func:`total_loss` (Eq. 8-9): ``β·L_gradient + L_intensity + γ·L_decouple``
  with the paper's proportions β = 10, 1, γ = 1.

Paddings are replicate (Sobel, Laplacian, low-pass); replicate padding's
backward is deterministic on CUDA.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
#: SDNet's 3×3 low-pass applied before the Laplacian of its score maps
_SDNET_LOWPASS = torch.tensor([[0.0947, 0.1183, 0.0947], [0.1183, 0.1478, 0.1183], [0.0947, 0.1183, 0.0947]])

GRAD_OPS = ("sobel", "laplacian")
WEIGHT_MODES = ("max", "soft")
FIRST_SOURCES = ("functional", "mri")


@dataclass(frozen=True)
class LossReading:
    """One reading of Eq. 11-12 (see the module docstring); the defaults are the registered ``mopa``'s."""

    alpha: float = 0.5
    i1: str = "functional"      # which source is I1 in Eq. 11-12: "functional" (PET/SPECT/CT) or "mri"
    weights: str = "max"        # S of Eq. 12: "max" (SDNet's 0/1 choice) or "soft" (normalised magnitudes)
    grad_op: str = "sobel"      # ∇ of Eq. 12: "sobel" or "laplacian"
    beta: float = 10.0
    gamma: float = 1.0

    def __post_init__(self) -> None:
        for value, allowed, what in ((self.i1, FIRST_SOURCES, "i1"), (self.weights, WEIGHT_MODES, "weights"),
                                     (self.grad_op, GRAD_OPS, "grad_op")):
            if value not in allowed:
                raise ValueError(f"loss {what} must be one of {allowed}, not {value!r}")
        from fusionbench.checks import number

        for value, what in ((self.alpha, "alpha"), (self.beta, "beta"), (self.gamma, "gamma")):
            # Eq. 11-13's weights: a negative one rewards moving away from a source (session 39: --set
            # loss_alpha=-3 trained to a negative loss)
            number("mopa", f"loss {what}", value, low=0)

    @classmethod
    def from_params(cls, params: dict) -> "LossReading":
        """The reading of a registered params dict (keys ``loss_alpha``, ``loss_i1``, ``loss_weights``, ``loss_grad``)."""
        keys = {"alpha": "loss_alpha", "i1": "loss_i1", "weights": "loss_weights", "grad_op": "loss_grad"}
        return cls(**{k: params[p] for k, p in keys.items() if p in params})

    def to_params(self) -> dict:
        """The reading as registered params (``loss_alpha``, ``loss_i1``, ``loss_weights``, ``loss_grad``):
        the inverse of :meth:`from_params`."""
        d = asdict(self)
        return {"loss_alpha": d["alpha"], "loss_i1": d["i1"], "loss_weights": d["weights"], "loss_grad": d["grad_op"]}


_ON_DEVICE: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}


def _kernel(k: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The constant kernel ``k`` on ``like``'s device and dtype.

    On an accelerator the copy is made once and kept: a training step then
    copies nothing from the host, which a captured CUDA graph requires
    (``fusionbench.train.graph``; a host-to-device copy cannot be captured).
    """
    if like.device.type == "cpu":
        return k.to(like)
    key = (id(k), like.device, like.dtype)
    if key not in _ON_DEVICE:
        with torch.inference_mode(False):
            _ON_DEVICE[key] = k.to(like)
    return _ON_DEVICE[key]


def _pad1(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 1, 1, 1), mode="replicate")


def sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives (gx, gy) of N×1×H×W ``x`` (replicate padding, size preserved)."""
    kx = _kernel(_SOBEL_X, x)[None, None]
    ky = kx.transpose(2, 3)
    xp = _pad1(x)
    return F.conv2d(xp, kx), F.conv2d(xp, ky)


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Euclidean magnitude of the Sobel gradient."""
    gx, gy = sobel(x)
    return torch.sqrt(gx * gx + gy * gy)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """4-neighbour Laplacian of N×1×H×W ``x`` (replicate padding)."""
    return F.conv2d(_pad1(x), _kernel(_LAPLACIAN, x)[None, None])


def gradient_strength(x: torch.Tensor, grad_op: str = "sobel") -> torch.Tensor:
    """Per-pixel gradient strength used for S: Sobel magnitude, or SDNet's |∇²(low-pass x)|."""
    if grad_op == "sobel":
        return sobel_magnitude(x)
    return laplacian(F.conv2d(_pad1(x), _kernel(_SDNET_LOWPASS, x)[None, None])).abs()


def gradient_weights(i1: torch.Tensor, i2: torch.Tensor, mode: str = "max", grad_op: str = "sobel",
                     eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive weights S1, S2 of Eq. 12 (they sum to 1 at every pixel; no gradient flows through them)."""
    with torch.no_grad():
        g1, g2 = gradient_strength(i1, grad_op), gradient_strength(i2, grad_op)
        if mode == "max":
            s1 = (g1 >= g2).to(i1.dtype)
        else:
            s1 = (g1 + eps) / (g1 + g2 + 2 * eps)
    return s1, 1.0 - s1


def _grad_sq_diff(f: torch.Tensor, src: torch.Tensor, grad_op: str) -> torch.Tensor:
    if grad_op == "sobel":
        fx, fy = sobel(f)
        sx, sy = sobel(src)
        return (fx - sx) ** 2 + (fy - sy) ** 2
    return (laplacian(f) - laplacian(src)) ** 2


def intensity_loss(fused: torch.Tensor, i1: torch.Tensor, i2: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Eq. 11: ``mean((F - I1)²) + α·mean((F - I2)²)``."""
    return F.mse_loss(fused, i1) + alpha * F.mse_loss(fused, i2)


def gradient_loss(fused: torch.Tensor, i1: torch.Tensor, i2: torch.Tensor, weights: str = "max",
                  grad_op: str = "sobel") -> torch.Tensor:
    """Eq. 12: S-weighted squared difference of the gradients of F and of each source."""
    s1, s2 = gradient_weights(i1, i2, weights, grad_op)
    return (s1 * _grad_sq_diff(fused, i1, grad_op) + s2 * _grad_sq_diff(fused, i2, grad_op)).mean()


def decouple_loss(d_mri: torch.Tensor, d_func: torch.Tensor, mri: torch.Tensor, func: torch.Tensor) -> torch.Tensor:
    """Eq. 13: ``mean((D_mri - MRI)²) + mean((D_func - func)²)``."""
    return F.mse_loss(d_mri, mri) + F.mse_loss(d_func, func)


def total_loss(
    fused: torch.Tensor,
    decoupled: tuple[torch.Tensor, torch.Tensor] | None,
    mri: torch.Tensor,
    func: torch.Tensor,
    reading: LossReading = LossReading(),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 8-9: ``β·L_grad + L_int + γ·L_dec`` (L_dec = 0 without decoupler).

    ``decoupled`` is the decoupling network's (MRI estimate, functional
    estimate).  Returns the scalar loss and its terms as detached 0-d tensors (for
    logging: the training loop reads them back every few steps, so a step never waits for the device).
    """
    i1, i2 = (func, mri) if reading.i1 == "functional" else (mri, func)
    lg = gradient_loss(fused, i1, i2, reading.weights, reading.grad_op)
    li = intensity_loss(fused, i1, i2, reading.alpha)
    total = reading.beta * lg + li
    parts = [lg, li]
    if decoupled is not None:
        ld = decouple_loss(decoupled[0], decoupled[1], mri, func)
        total = total + reading.gamma * ld
        parts.append(ld)
    names = ["total", "gradient", "intensity"] + (["decouple"] if decoupled is not None else [])
    return total, {name: v.detach() for name, v in zip(names, [total, *parts])}
