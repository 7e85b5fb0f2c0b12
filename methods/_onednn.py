"""Convolutions that always run on oneDNN, for inference paths cut into bands of rows.

PyTorch runs a float32 ``F.conv2d`` whose kernel has 3 or fewer rows or columns on oneDNN for a batch of two or
more, or for a batch of one with more than :data:`ATEN_NATIVE_CONV_VALUES` input values; otherwise on ATen's
own im2col + MKL GEMM (``aten/src/ATen/native/ConvUtils.h``, ``use_mkldnn``).  The two round differently, and
on MKL's AVX2 and SSE4.2 kernels the GEMM rounds some pixels by their place in the map (not seen on AVX-512),
so a narrow band of rows would not give the whole image's bits there.  oneDNN's convolution rounds a pixel the
same wherever it lies on its AVX-512, AVX2 and SSE4.1 kernels (measured for CNN's and SDNet's layers, 1-row
bands, widths 3-1030; ``tests/methods/test_cnn.py``, ``tests/methods/test_sdnet.py`` under the stand-ins;
``docs/cpu_independence.md``, "torch's three kernel families").  Used by SDNet's and CNN's inference (session 11).

It imports torch only when called.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ATEN_NATIVE_CONV_VALUES", "conv2d"]

#: the batch-1 input size up to which ``F.conv2d`` leaves a small-kernel float32 conv to ATen's im2col + GEMM
ATEN_NATIVE_CONV_VALUES = 20480


def conv2d(x: Any, weight: Any, bias: Any, padding: int) -> Any:
    """A stride-1, dilation-1, ungrouped convolution with ``padding`` zeros on every side, through oneDNN
    (``torch.mkldnn_convolution``) whatever the input's size: the bits ``F.conv2d`` gives for maps above
    :data:`ATEN_NATIVE_CONV_VALUES`.  ``F.conv2d`` instead under a torch dispatch mode (a FLOP counter, which
    counts it), with autograd enabled, or on a torch built without oneDNN."""
    import torch
    import torch.nn.functional as F

    if (torch._C._len_torch_dispatch_stack() > 0 or torch.is_grad_enabled()
            or not torch.backends.mkldnn.is_available()):
        return F.conv2d(x, weight, bias, padding=padding)
    return torch.mkldnn_convolution(x, weight, bias, [padding, padding], [1, 1], [1, 1], 1)
