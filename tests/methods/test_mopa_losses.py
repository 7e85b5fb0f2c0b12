"""mopa losses (Eq. 8-13) on inputs with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from fusionbench.methods.mopa.losses import (LossReading, decouple_loss, gradient_loss, gradient_weights,
                                             intensity_loss, laplacian, sobel, total_loss)


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
    assert intensity_loss(f, i1, i2).item() == pytest.approx(0.0625 + 0.125)  # α = 0.5 (SDNet's)
    assert intensity_loss(f, i1, i2, alpha=1.0).item() == pytest.approx(0.0625 + 0.25)
    assert intensity_loss(i1, i1, i1).item() == 0


def test_gradient_weights_follow_edges():
    ramp = t(np.tile(np.arange(8, dtype=np.float32) / 8, (8, 1)))
    flat = t(np.zeros((8, 8)))
    s1, s2 = gradient_weights(ramp, flat, "soft")
    assert torch.allclose(s1 + s2, torch.ones_like(s1))
    assert s1.min() > 0.99  # the ramp owns every edge
    s1, s2 = gradient_weights(flat, flat, "soft")
    assert torch.allclose(s1, torch.full_like(s1, 0.5))


def test_max_weights_are_sdnets_zero_one_choice():
    """S = 1 for the source with the stronger gradient, 0 for the other, ties to I1 (SDNet's score maps)."""
    rng = np.random.default_rng(4)
    a, b = t(rng.random((10, 12))), t(rng.random((10, 12)) * 0.5)
    for op in ("sobel", "laplacian"):
        s1, s2 = gradient_weights(a, b, "max", op)
        assert set(torch.unique(s1).tolist()) <= {0.0, 1.0} and torch.equal(s1 + s2, torch.ones_like(s1))
        ga = sobel(a)[0] ** 2 + sobel(a)[1] ** 2 if op == "sobel" else None
        if ga is not None:
            gb = sobel(b)[0] ** 2 + sobel(b)[1] ** 2
            assert torch.equal(s1.bool(), ga.sqrt() >= gb.sqrt())
    s1, _ = gradient_weights(a, a, "max")
    assert s1.min() == 1  # ties go to I1


def test_laplacian_matches_scipy():
    img = np.random.default_rng(5).random((9, 11)).astype(np.float32)
    np.testing.assert_allclose(laplacian(t(img))[0, 0].numpy(), ndimage.laplace(img, mode="nearest"), atol=1e-5)


def test_loss_reading_validates_and_round_trips():
    r = LossReading()
    assert (r.alpha, r.i1, r.weights, r.grad_op, r.beta, r.gamma) == (0.5, "functional", "max", "sobel", 10.0, 1.0)
    assert LossReading.from_params(r.to_params()) == r
    with pytest.raises(ValueError, match="grad_op"):
        LossReading(grad_op="prewitt")


def test_gradient_loss_known_values():
    ramp_np = np.tile(np.arange(8, dtype=np.float32) / 8, (8, 1))
    ramp, flat = t(ramp_np), t(np.zeros((8, 8)))
    assert gradient_loss(ramp, ramp, ramp).item() == pytest.approx(0.0, abs=1e-12)
    # fused flat, I1 = ramp (all weight), I2 flat: loss = mean over pixels of S1·|∇ramp|²
    gx = ndimage.sobel(ramp_np, axis=1, mode="nearest")
    g = np.abs(gx)
    s1 = (g + 1e-3) / (g + 2e-3)
    assert gradient_loss(flat, ramp, flat, "soft").item() == pytest.approx(float(np.mean(s1 * gx**2)), rel=1e-5)
    # 0/1 weights: S1 = 1 wherever the ramp's gradient is at least the flat image's (everywhere)
    assert gradient_loss(flat, ramp, flat).item() == pytest.approx(float(np.mean(gx**2)), rel=1e-5)
    # the loss is a difference of gradients: adding a constant to the fused image changes nothing
    assert gradient_loss(flat + 0.3, ramp, flat).item() == pytest.approx(gradient_loss(flat, ramp, flat).item())


def test_decouple_loss_known_values():
    d1, d2 = t(np.full((3, 3), 0.1)), t(np.full((3, 3), 0.6))
    i1, i2 = t(np.zeros((3, 3))), t(np.full((3, 3), 0.4))
    assert decouple_loss(d1, d2, i1, i2).item() == pytest.approx(0.01 + 0.04)


def test_total_loss_weights():
    """Eq. 8-9 with I1 = functional source, I2 = MRI (SDNet's reading); the decoupled pair is (MRI, functional)."""
    rng = np.random.default_rng(2)
    f, mri, func, d_mri, d_func = (t(rng.random((6, 6))) for _ in range(5))
    total, terms = total_loss(f, (d_mri, d_func), mri, func)
    expected = (10 * gradient_loss(f, func, mri) + intensity_loss(f, func, mri, 0.5)
                + decouple_loss(d_mri, d_func, mri, func))
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["total"] == pytest.approx(expected.item(), rel=1e-6)
    total2, terms2 = total_loss(f, None, mri, func)
    assert "decouple" not in terms2
    assert total2.item() == pytest.approx((10 * gradient_loss(f, func, mri) + intensity_loss(f, func, mri, 0.5)).item())
    v1 = LossReading(alpha=1.0, i1="mri", weights="soft")
    total3, _ = total_loss(f, None, mri, func, v1)
    assert total3.item() == pytest.approx((10 * gradient_loss(f, mri, func, "soft")
                                           + intensity_loss(f, mri, func, 1.0)).item(), rel=1e-6)


_LOWPASS = np.array([[0.0947, 0.1183, 0.0947], [0.1183, 0.1478, 0.1183], [0.0947, 0.1183, 0.0947]])


def test_laplacian_weights_low_pass_the_sources_first():
    """LO1: with grad_op="laplacian", S compares SDNet's |∇²(3×3 low-pass of the source)|, replicate borders."""
    rng = np.random.default_rng(7)
    a, b = rng.random((10, 12)).astype(np.float32), rng.random((10, 12)).astype(np.float32)

    def strength(x):
        return np.abs(ndimage.laplace(ndimage.correlate(x.astype(np.float64), _LOWPASS, mode="nearest"), mode="nearest"))

    s1, s2 = gradient_weights(t(a), t(b), "max", "laplacian")
    expected = strength(a) >= strength(b)
    margin = np.abs(strength(a) - strength(b)) > 1e-4  # away from float32 ties
    assert margin.mean() > 0.9
    np.testing.assert_array_equal(s1[0, 0].numpy().astype(bool)[margin], expected[margin])
    assert torch.equal(s1 + s2, torch.ones_like(s1))


def test_laplacian_gradient_loss_known_value():
    """LO3: Eq. 12 with ∇ = the Laplacian is a *squared* difference: flat F, flat I2, I1 random → mean(∇²I1²)."""
    img = np.random.default_rng(8).random((9, 11)).astype(np.float32)
    flat = t(np.zeros((9, 11)))
    lap = ndimage.laplace(img.astype(np.float64), mode="nearest")
    got = gradient_loss(flat, t(img), flat, "max", "laplacian").item()  # S1 = 1 everywhere (ties go to I1)
    assert got == pytest.approx(float(np.mean(lap ** 2)), rel=1e-5)


def test_total_loss_applies_beta_and_gamma():
    """LO2: Eq. 8-9 with non-default weights: β·L_grad + L_int + γ·L_dec."""
    rng = np.random.default_rng(3)
    f, mri, func, d_mri, d_func = (t(rng.random((6, 6))) for _ in range(5))
    reading = LossReading(beta=3.0, gamma=2.5)
    total, terms = total_loss(f, (d_mri, d_func), mri, func, reading)
    expected = (3.0 * gradient_loss(f, func, mri) + intensity_loss(f, func, mri, 0.5)
                + 2.5 * decouple_loss(d_mri, d_func, mri, func))
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["decouple"].item() == pytest.approx(decouple_loss(d_mri, d_func, mri, func).item(), rel=1e-6)
