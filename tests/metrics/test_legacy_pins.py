"""Legacy pins: our own values on a fixed synthetic triple, so that a refactor cannot drift silently.

The triple is ``fusionbench.metrics.synthetic.triple(64, 5, 'avg')`` (and 176 px
'max' for MS-SSIM).  Values were computed by this implementation when it was
calibrated (see docs/calibration_summary.csv).  If a pin changes on purpose,
re-derive it and say why in the commit message.
"""
from __future__ import annotations

import math
import warnings

import pytest

import fusionbench.metrics as M
from fusionbench.metrics.synthetic import triple

PINS = {
    "AG": 3.9941222328198376,
    "CC": 0.6604866995360477,
    "CE": 0.9534459370209318,
    "EI": 38.311648288787026,
    "EN": 6.730760468338442,
    "FMI_dct": 0.4179857959317329,
    "FMI_edge": 0.8918708170928503,
    "FMI_pixel": 0.43112101647639467,
    "FMI_w": 0.4365109118843578,
    "MEF_SSIM": 0.8474941766965379,
    "MI": 4.720821351152402,
    "MSE": 1741.738525390625,
    "Nabf": 5.136658210445384e-08,
    "NMI": 0.7077188909407199,
    "PSNR": 15.720974027928944,
    "Q_E": 0.6232973380012491,
    "Q_S": 0.7539517264149846,
    "Q_SF": 0.484700352490534,  # added 2026-12-06 (Q_SF.liu matches metricZheng.m: test_q_sf.py)
    "Q_SF.liu": -0.484700352490534,
    "Q_W": 0.7398582661678554,
    "Qabf": 0.4852499816329766,
    "Qc": 0.7293199743233604,
    "Qcb": 0.6549361622448888,
    "Qcv": 97.69438983750459,
    "Qncie": 0.8152976210623613,
    "Qp": 0.6294356615791171,
    "Qy": 0.7232702079774852,
    "RMSE": 41.7341410045855,
    "SCD": 1.3661089190640747,
    "SD": 27.86945827526868,
    "SF": 10.553752717804763,
    "SSIM": 0.6596541309852967,
    "TE": 120.77603511526004,  # = TE.mefb since version 2 (version 1: 17.851198551052605)
    "VIFF": 0.3217410966249825,
    "VIFp_sum": 0.48112358870278926,
    "MI.vifb": 3.272224009478479,
    "MI.tang": 4.720821351152402,
    "PSNR.vifb": 49.987730173417894,
    "PSNR.cddfuse": 12.743741916633532,
    "SSIM.tang": 0.47345815452421897,
    "SSIM.cddfuse": 0.912786169178393,
    "TE.mefb": 120.77603511526004,
    "Qcb.mefb": 0.6550003641563633,
    "Nabf.tang": 0.20564888983350485,
}
# Qc decides some windows by floating-point round-off (flat patch in B, C = 2e-16), so its
# last digits may move with the numpy/scipy build; pinned loosely.
LOOSE = {"Qc": 1e-2}


@pytest.mark.parametrize("name", sorted(PINS))
def test_pinned_value(name: str) -> None:
    f, a, b = triple(64, 5, "avg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.UndefinedMetricWarning)
        v = M.compute(name, f, a, b)
    assert v == pytest.approx(PINS[name], rel=LOOSE.get(name, 1e-8), abs=1e-12)


def test_pinned_ms_ssim() -> None:
    f, a, b = triple(176, 5, "max")
    assert M.compute("MS_SSIM", f, a, b) == pytest.approx(
        0.5917062645059845, rel=1e-8)


def test_ms_ssim_small_image_is_nan_with_warning() -> None:
    f, a, b = triple(64, 5, "avg")
    with pytest.warns(M.UndefinedMetricWarning):
        assert math.isnan(M.compute("MS_SSIM", f, a, b))
