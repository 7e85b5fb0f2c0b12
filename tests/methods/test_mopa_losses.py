"""mopa losses (Eq. 8-13) on inputs with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from fusionbench.methods.mopa.losses import (decouple_loss, gradient_loss, gradient_weights, intensity_loss, sobel,
                                             total_loss)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def t(x):
    return torch.as_tensor(np.asarray(x, np.float32))[None, None]


def test_sobel_matches_scipy():
    rng = np.random.default_rng(0)
    img = rng.random((9, 11)).astype(np.float32)
    gx, gy = sobel(t(img))
    np.testing.assert_allclose(gx[0, 0].numpy(), ndimage.sobel(img, axis=1, mode="nearest"), atol=1e-5)
    np.testing.assert_allclose(gy[0, 0].numpy(), ndimage.sobel(img, axis=0, mode="nearest"), atol=1e-5)


def test_intensity_loss_known_values():
    f, i1, i2 = t(np.full((4, 4), 0.5)), t(np.full((4, 4), 0.25)), t(np.zeros((4, 4)))
    assert intensity_loss(f, i1, i2).item() == pytest.approx(0.0625 + 0.25)
    assert intensity_loss(f, i1, i2, alpha=0.5).item() == pytest.approx(0.0625 + 0.125)
    assert intensity_loss(i1, i1, i1).item() == 0


def test_gradient_weights_follow_edges():
    ramp = t(np.tile(np.arange(8, dtype=np.float32) / 8, (8, 1)))
    flat = t(np.zeros((8, 8)))
    s1, s2 = gradient_weights(ramp, flat)
    assert torch.allclose(s1 + s2, torch.ones_like(s1))
    assert s1.min() > 0.99  # the ramp owns every edge
    s1, s2 = gradient_weights(flat, flat)
    assert torch.allclose(s1, torch.full_like(s1, 0.5))


def test_gradient_loss_known_values():
    ramp_np = np.tile(np.arange(8, dtype=np.float32) / 8, (8, 1))
    ramp, flat = t(ramp_np), t(np.zeros((8, 8)))
    assert gradient_loss(ramp, ramp, ramp).item() == pytest.approx(0.0, abs=1e-12)
    # fused flat, I1 = ramp (all weight), I2 flat: loss = mean over pixels of S1·|∇ramp|²
    gx = ndimage.sobel(ramp_np, axis=1, mode="nearest")
    g = np.abs(gx)
    s1 = (g + 1e-3) / (g + 2e-3)
    assert gradient_loss(flat, ramp, flat).item() == pytest.approx(float(np.mean(s1 * gx**2)), rel=1e-5)
    # the loss is a difference of gradients: adding a constant to the fused image changes nothing
    assert gradient_loss(flat + 0.3, ramp, flat).item() == pytest.approx(gradient_loss(flat, ramp, flat).item())


def test_decouple_loss_known_values():
    d1, d2 = t(np.full((3, 3), 0.1)), t(np.full((3, 3), 0.6))
    i1, i2 = t(np.zeros((3, 3))), t(np.full((3, 3), 0.4))
    assert decouple_loss(d1, d2, i1, i2).item() == pytest.approx(0.01 + 0.04)


def test_total_loss_weights():
    rng = np.random.default_rng(2)
    f, i1, i2, d1, d2 = (t(rng.random((6, 6))) for _ in range(5))
    total, terms = total_loss(f, (d1, d2), i1, i2)
    expected = 10 * gradient_loss(f, i1, i2) + intensity_loss(f, i1, i2) + decouple_loss(d1, d2, i1, i2)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["total"] == pytest.approx(expected.item(), rel=1e-6)
    total2, terms2 = total_loss(f, None, i1, i2)
    assert "decouple" not in terms2
    assert total2.item() == pytest.approx((10 * gradient_loss(f, i1, i2) + intensity_loss(f, i1, i2)).item())
