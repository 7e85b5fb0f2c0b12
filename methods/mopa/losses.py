"""Losses of Di et al. (2025), §1.5, Eq. 8-13; each term is its own function.

All images are N×1×H×W tensors in [0, 1]; every term is a mean over pixels
(the paper's 1/(HW)·Σ) and over the batch.

* :func:`intensity_loss` (Eq. 11): ``mean((F - I1)²) + α·mean((F - I2)²)``;
  ``α = 1`` by default (the paper names α but gives no value; 1 treats the two
  sources alike).
* :func:`gradient_loss` (Eq. 12): ``mean(S1·|∇F - ∇I1|² + S2·|∇F - ∇I2|²)``
  where ∇ is the Sobel gradient (gx, gy) and ``|·|²`` sums its two squared
  components.  The adaptive weights ("usually computed by using Sobel's
  operator") are our choice: ``S_k = (g_k + ε) / (g_1 + g_2 + 2ε)`` with
  ``g_k`` the Sobel gradient magnitude of source k, so the source with the
  stronger local edge dominates and flat regions weigh both sources 1/2.  S
  depends on the sources only (no gradient flows through it).
* :func:`decouple_loss` (Eq. 13): ``mean((D1 - I1)²) + mean((D2 - I2)²)``.
* :func:`total_loss` (Eq. 8-9): ``β·L_gradient + L_intensity + γ·L_decouple``
  with the paper's proportions β = 10, 1, γ = 1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives (gx, gy) of N×1×H×W ``x`` (replicate padding, size preserved)."""
    kx = _SOBEL_X.to(x)[None, None]
    ky = kx.transpose(2, 3)
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(xp, kx), F.conv2d(xp, ky)


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Euclidean magnitude of the Sobel gradient."""
    gx, gy = sobel(x)
    return torch.sqrt(gx * gx + gy * gy)


def gradient_weights(i1: torch.Tensor, i2: torch.Tensor, eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive weights S1, S2 of Eq. 12 from the sources' Sobel magnitudes (sum to 1)."""
    with torch.no_grad():
        g1, g2 = sobel_magnitude(i1), sobel_magnitude(i2)
        s1 = (g1 + eps) / (g1 + g2 + 2 * eps)
    return s1, 1.0 - s1


def intensity_loss(fused: torch.Tensor, i1: torch.Tensor, i2: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Eq. 11: ``mean((F - I1)²) + α·mean((F - I2)²)``."""
    return F.mse_loss(fused, i1) + alpha * F.mse_loss(fused, i2)


def gradient_loss(fused: torch.Tensor, i1: torch.Tensor, i2: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Eq. 12: Sobel-weighted squared difference of Sobel gradients."""
    s1, s2 = gradient_weights(i1, i2, eps)
    fx, fy = sobel(fused)
    ax, ay = sobel(i1)
    bx, by = sobel(i2)
    d1 = (fx - ax) ** 2 + (fy - ay) ** 2
    d2 = (fx - bx) ** 2 + (fy - by) ** 2
    return (s1 * d1 + s2 * d2).mean()


def decouple_loss(d1: torch.Tensor, d2: torch.Tensor, i1: torch.Tensor, i2: torch.Tensor) -> torch.Tensor:
    """Eq. 13: ``mean((D1 - I1)²) + mean((D2 - I2)²)``."""
    return F.mse_loss(d1, i1) + F.mse_loss(d2, i2)


def total_loss(
    fused: torch.Tensor,
    decoupled: tuple[torch.Tensor, torch.Tensor] | None,
    i1: torch.Tensor,
    i2: torch.Tensor,
    *,
    beta: float = 10.0,
    gamma: float = 1.0,
    alpha: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 8-9 with the paper's weights: ``β·L_grad + L_int + γ·L_dec`` (L_dec = 0 without decoupler).

    Returns the scalar loss and its terms as floats (for logging).
    """
    lg = gradient_loss(fused, i1, i2)
    li = intensity_loss(fused, i1, i2, alpha)
    total = beta * lg + li
    terms = {"gradient": lg.item(), "intensity": li.item()}
    if decoupled is not None:
        ld = decouple_loss(decoupled[0], decoupled[1], i1, i2)
        total = total + gamma * ld
        terms["decouple"] = ld.item()
    terms["total"] = total.item()
    return total, terms
