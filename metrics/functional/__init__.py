"""Functional core: ``fn(fused, a=None, b=None, *, options) -> float``.

One module per family.  Every function validates its inputs (2-D grey,
same shapes; uint8, or float with an explicit ``data_range``), works on
float64 grey levels 0–255 and states its convention and source in its
docstring; ``colour.chroma_error`` alone reads H×W×3 RGB images (its
preset's ``colour`` is ``"rgb"``).  The presets in ``fusionbench.metrics.presets`` freeze options.

Every enumerated option (``variant``, ``kind``, ``normalise``, ``base``, ``feature``,
``dtype``, ``rounding``, ``mode`` and the True/False flags) is checked before any work: an
unknown value raises ``ValueError`` naming the function, the parameter, the value and the
accepted values (``ssim: unknown variant 'VIFB' (accepted: 'standard', 'vifb', 'tang',
'cddfuse')``).  Spellings are exact: no case folding.  Before the session 37 audit (F6) an
unknown value silently meant the default.
"""
from .colour import chroma_error
from .feature import fmi
from .gradient import average_gradient, edge_intensity, nabf, q_sf, qabf, spatial_frequency
from .information import (
    cross_entropy,
    entropy,
    mutual_information,
    nonlinear_correlation_information_entropy,
    normalized_mutual_information,
    tsallis_entropy,
)
from .perceptual import phase_congruency, qp
from .statistics import (
    correlation_coefficient,
    mean_squared_error,
    peak_signal_to_noise_ratio,
    root_mean_squared_error,
    standard_deviation,
    sum_of_correlation_differences,
)
from .structural import mef_ssim, ms_ssim, piella, qc, qy, ssim
from .visual import qcb, qcv, viff, vifp_sum

__all__ = [
    "average_gradient", "edge_intensity", "nabf", "q_sf", "qabf", "spatial_frequency",
    "cross_entropy", "entropy", "mutual_information", "nonlinear_correlation_information_entropy",
    "normalized_mutual_information", "tsallis_entropy",
    "correlation_coefficient", "mean_squared_error", "peak_signal_to_noise_ratio",
    "root_mean_squared_error", "standard_deviation", "sum_of_correlation_differences",
    "fmi", "phase_congruency", "qp", "mef_ssim", "ms_ssim", "piella", "qc", "qy", "ssim",
    "qcb", "qcv", "viff", "vifp_sum", "chroma_error",
]
