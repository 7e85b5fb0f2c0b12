"""U2Fusion (Xu, Ma, Jiang, Guo, Ling; IEEE TPAMI 44(1), 2022): the dense generator with its official weights.

What is reproduced (official code ``hanna-xu/U2Fusion`` @ 0a58821, ``Net.py``
and ``test_main.py``):

* the generator re-implemented in PyTorch and loaded from the official TF1
  checkpoint ``model/model.ckpt`` (read without TensorFlow by
  :mod:`methods._tf1_checkpoint`; HWIO → OIHW, strict key and shape match, all
  20 variables / 659,217 values used).  Every conv is 3×3 on a 1-pixel
  *reflect*-padded input ('VALID' after ``tf.pad(mode='REFLECT')``).  Encoder:
  ``conv1_1`` 2→44 + LeakyReLU 0.2, then five dense layers
  ``dense_block_conv1..5`` (44·k → 44, LeakyReLU 0.2) whose output is
  concatenated *in front of* their input (``concat([new, x])``), ending at 264
  channels.  Decoder 264→128→64→32 (LeakyReLU 0.2) →1, then tanh/2 + 0.5;
* the two inputs are the sources in [0, 1], stacked as [SOURCE1, SOURCE2].  In
  the official medical setting SOURCE1 = PET and SOURCE2 = MRI (in the IR-VIS
  setting SOURCE1 = visible, SOURCE2 = infrared): ``source1='b'`` (default)
  sends ``b`` (PET/SPECT/CT) first, ``source1='a'`` sends ``a`` first;
* colour (``colour='own'``): as ``test_main.py``, full-range (JPEG) YCbCr of the
  colour image, fused Y, then back to RGB with that image's Cb/Cr;
* ``stretch=True`` (default): ``test_main.py`` saves with
  ``scipy.misc.toimage(output, cmin=0, cmax=output.max())``, i.e. every result
  is scaled so that its maximum (over all channels) becomes 255, clipped at 0,
  rounded half up.  That is reproduced; ``stretch=False`` gives the raw output.

**Agreement with the official code** (session 16; pinned in
``tests/methods/test_u2fusion.py``).  The repository ships no fused output, so
the official ``test_main.py`` itself was run here, unchanged, under TensorFlow
2.15 (CPU; ``scripts/reference_runs/official_python``), in its medical setting (PET first)
and its IR-VIS setting (visible first), on 88 pairs: the 3 official medical
pairs, 20 MRI-PET and 20 MRI-SPECT (colour), 20 MRI-CT, and the 25 TNO pairs
whole.  The array ``test_main.py`` hands to ``toimage`` agrees within 1.5e-7;
the saved 8-bit result is ≥ 99.995 % identical (49 of 88 bit-exact), never off
by more than 1 grey level (float32 summation order).

Also checked (pinned): on the three official medical test pairs the output
lies in [0, 1] and correlates with the MRI (ρ 0.908–0.913) and the PET (ρ
0.68–0.81); the first layer equals a numpy transcription with
``np.pad(mode='reflect')``.  The 21 IR-VIS results that the VIFB benchmark made
with the authors' model (JPEG) are an unpublished affine contrast stretch of
the generator output: compared directly, our saved output is 23.5 dB away (MAD
16.1); after the best affine map per image (2 parameters) the luma agrees at
36.4–44.6 dB (mean 40.8), MAD 1.0–2.7, 41–77 % within ±1 — about what JPEG
costs — against 27.6–34.8 dB with the two sources swapped.  The VIFB intensity
mapping itself is not reproduced.

Cost: 659,217 parameters, 86.3 GFLOPs for one 256² pair.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from fusionbench import colour
from fusionbench.method_registry import register_method
from fusionbench.torch_method import TorchMethod, as_tensor

from ._tf1_checkpoint import checkpoint_index, convert_tensors, load_state_strict, read_checkpoint, register_checkpoint

_REPO = "https://raw.githubusercontent.com/hanna-xu/U2Fusion/0a5882140df67b3e0b588e1f2233e18cf944f1a4"
_PREFIX = "model.ckpt"

WEIGHTS = register_checkpoint(
    "u2fusion", base_url=f"{_REPO}/model", prefix=_PREFIX, method_dir="u2fusion",
    index_sha256="15b7d283a1de8f616cc42978346bd24d47a9c380d624370368b956beb593014e",
    data_sha256="e50cada8d4ec92f2577ad5db5d212fba521dffb35d04e00a20364b43512c64c8",
    what="U2Fusion generator (659,217 float32)",
)

_CITATION = ("Xu H., Ma J., Jiang J., Guo X., Ling H., U2Fusion: A unified unsupervised image fusion network, "
             "IEEE TPAMI 44(1), 502-518, 2022. Code: github.com/hanna-xu/U2Fusion.")

_WIDTH = 44  # channels per dense layer (Net.py: n = 44)
_DECODER = ((6 * _WIDTH, 128), (128, 64), (64, 32), (32, 1))


#: bytes of the 264-channel padded feature window per band of rows in the lean inference path (≥ 32 rows)
_BAND_BYTES = 32 * 2**20


def _band_bounds(h: int, rows: int) -> list[tuple[int, int]]:
    """[0, h) split into ceil(h / rows) consecutive bands of near-equal height (every band ≥ rows / 2 rows)."""
    count = -(-h // max(1, rows))
    edges = [h * i // count for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


class _DecoderStream:
    """The decoder (LeakyReLU 0.2 convs, then tanh/2 + 0.5) fed band by band; writes the N×1×H×W output ``out``.

    Each :meth:`push` gives the first conv a padded input window and the first output row it
    yields.  Each later layer lags its input by one row: it keeps the last two padded rows of
    its input from the band before (``carry``) and writes its output with the 1-pixel reflect
    border a whole-image layer would have (top row = output row 1 in the first band, bottom
    row = output row H-2 in the last).  Every conv therefore sees, element for element, the
    padded input of the whole-image graph; only the band heights differ.  Bands must give
    each layer ≥ 2 rows in its first and last band (the rows a reflect border reads).
    """

    def __init__(self, convs: Any, out: Any) -> None:
        self.convs, self.out = list(convs), out
        self.carry: list[Any] = [None] * len(self.convs)

    def push(self, window: Any, start: int, last: bool) -> None:
        """Padded rows ``[start, start + m + 2)`` of the first conv's input → its output rows ``[start, start + m)``."""
        import torch
        import torch.nn.functional as F

        n, wp = window.shape[0], window.shape[-1]
        for k, conv in enumerate(self.convs):
            y = F.conv2d(window, conv.weight, conv.bias)  # output rows [start, start + m)
            m = y.shape[-2]
            if k == len(self.convs) - 1:
                self.out[:, :, start:start + m] = torch.tanh(y) / 2 + 0.5
                return
            F.leaky_relu_(y, 0.2)
            top = 1 if start == 0 else 2
            window = torch.empty(n, y.shape[1], top + m + int(last), wp, dtype=y.dtype,
                                 memory_format=torch.channels_last)
            if start == 0:
                window[:, :, 0, 1:-1] = y[:, :, 1]
            else:
                window[:, :, :2] = self.carry[k]
            window[:, :, top:top + m, 1:-1] = y
            if last:
                window[:, :, -1, 1:-1] = y[:, :, -2]
            window[:, :, :, 0] = window[:, :, :, 2]
            window[:, :, :, -1] = window[:, :, :, -3]
            self.carry[k] = window[:, :, -2:].clone()
            start = 0 if start == 0 else start - 1  # the next layer's output starts one row earlier


def _fuse_in_bands(padded: Any, encoder_convs: Any, decoder_convs: Any, width: int) -> Any:
    """The whole generator on the reflect-padded N×2×(H+2)×(W+2) input, streamed by bands of rows.

    The encoder's dense layers write their ``width`` channels into a band-sized window of
    the padded feature stack (newest layer in front, as ``concat([new, x])``).  Encoder layer
    ``j`` runs ``j`` rows behind the first one, the decoder's first conv 6 rows behind: every
    input row a layer reads was written earlier in the band or in the band before.  The
    window covers padded rows ``[r0 - 6, r1 + 1)``; the 7 rows still needed are carried into
    the next band's window.  Border rows and columns are the reflect copies a whole-image
    layer pads with, so every conv sees element for element the official graph's input.
    """
    import torch
    import torch.nn.functional as F

    n, _, hp, wp = padded.shape
    h, depth = hp - 2, len(encoder_convs)
    channels = width * depth
    out = padded.new_empty(n, 1, h, wp - 2)
    decoder = _DecoderStream(decoder_convs, out)
    rows = max(32, _BAND_BYTES // max(1, channels * wp * padded.element_size()))
    stack, p0 = None, 0
    for r0, r1 in _band_bounds(h, rows):
        last = r1 == h
        q0, q1 = max(0, r0 - depth), h + 2 if last else r1 + 1  # padded rows held in this band's window
        window = torch.empty(n, channels, q1 - q0, wp, dtype=padded.dtype, memory_format=torch.channels_last)
        if stack is not None:
            window[:, :, :stack.shape[-2] - (q0 - p0)] = stack[:, :, q0 - p0:]
        stack, p0 = window, q0
        for j, conv in enumerate(encoder_convs):
            a, e = max(0, r0 - j), h if last else r1 - j  # this layer's output rows in this band
            src = padded[:, :, a:e + 2] if j == 0 else stack[:, channels - width * j:, a - q0:e + 2 - q0]
            y = F.leaky_relu_(F.conv2d(src, conv.weight, conv.bias), 0.2)
            group = stack[:, channels - width * (j + 1):channels - width * j]
            group[:, :, a + 1 - q0:e + 1 - q0, 1:-1] = y
            lo, hi = a + 1 - q0, e + 1 - q0
            if a == 0:
                group[:, :, 0, 1:-1] = y[:, :, 1]
                lo = 0
            if last:
                group[:, :, hi, 1:-1] = y[:, :, h - 2 - a]
                hi += 1
            group[:, :, lo:hi, 0] = group[:, :, lo:hi, 2]
            group[:, :, lo:hi, -1] = group[:, :, lo:hi, -3]
        a, e = max(0, r0 - depth), h if last else r1 - depth
        decoder.push(stack[:, :, a - q0:e + 2 - q0], a, last)
    return out


def _build_generator() -> Any:
    """The U2Fusion generator (untrained): forward(source1, source2) → fused in [0, 1]."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def conv(cin: int, cout: int) -> nn.Conv2d:
        return nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1_1 = conv(2, _WIDTH)
            for k in range(1, 6):
                setattr(self, f"dense_block_conv{k}", conv(_WIDTH * k, _WIDTH))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.contiguous(memory_format=torch.channels_last)  # channels-last maps, as the inference path
            x = F.leaky_relu(self.conv1_1(x), 0.2)
            for k in range(1, 6):
                x = torch.cat([F.leaky_relu(getattr(self, f"dense_block_conv{k}")(x), 0.2), x], 1)
            return x

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for k, (cin, cout) in enumerate(_DECODER, start=1):
                setattr(self, f"conv2_{k}", conv(cin, cout))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for k in range(1, len(_DECODER)):
                x = F.leaky_relu(getattr(self, f"conv2_{k}")(x), 0.2)
            return torch.tanh(getattr(self, f"conv2_{len(_DECODER)}")(x)) / 2 + 0.5

    class U2FusionGenerator(nn.Module):
        """Inputs: two N×1×H×W tensors in [0, 1] (SOURCE1, SOURCE2); output N×1×H×W in [0, 1]."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = Encoder()
            self.decoder = Decoder()

        def forward(self, source1: torch.Tensor, source2: torch.Tensor) -> torch.Tensor:
            x = torch.cat([source1, source2], 1).contiguous(memory_format=torch.channels_last)
            if torch.is_grad_enabled() or min(x.shape[-2:]) < 2:
                return self.decoder(self.encoder(x))
            return self._forward_lean(x)

        def _forward_lean(self, x: torch.Tensor) -> torch.Tensor:
            """Inference streamed by bands of rows (same numbers, a fraction of the memory).

            The official graph concatenates (``concat([new, x])``) and each 3x3 conv
            reflect-pads its whole input, and oneDNN copies each input into its
            blocked layout: at 1024² that is 4.1 GB.  Here (:func:`_fuse_in_bands`) each
            feature map is written once, with its 1-pixel reflect border, into a
            band-sized window of the padded 264-channel stack; every conv reads its
            input unpadded ('VALID'); each layer runs a row behind the one before, so a
            band goes through the whole network and no full-size feature map exists.
            A 1024² pair peaks at ~0.65 GB resident (0.31 GB of it torch and weights).
            Each conv sees element for element the padded input of the official graph,
            and with the default bands the output is bit-identical (tested).
            """
            enc, dec = self.encoder, self.decoder
            encoder_convs = [enc.conv1_1] + [getattr(enc, f"dense_block_conv{k}") for k in range(1, 6)]
            decoder_convs = [getattr(dec, f"conv2_{k}") for k in range(1, len(_DECODER) + 1)]
            return _fuse_in_bands(F.pad(x, (1, 1, 1, 1), mode="reflect"), encoder_convs, decoder_convs, _WIDTH)

    return U2FusionGenerator()


def _tf_to_torch_name(tf_name: str) -> str:
    """``Generator/encoder/conv1_1/kernel`` → ``encoder.conv1_1.weight``; ``Generator_1/decoder/…`` likewise."""
    scope, part, layer, var = tf_name.split("/")
    if scope not in ("Generator", "Generator_1") or part not in ("encoder", "decoder"):
        raise KeyError(f"unexpected U2Fusion variable {tf_name!r}")
    kind = {"kernel": "weight", "bias": "bias"}[var]
    return f"{part}.{layer}.{kind}"


def load_u2fusion(prefix: str | Path) -> Any:
    """Build the generator and load the TF1 checkpoint ``prefix`` strictly; eval mode."""
    net = _build_generator()
    tensors = read_checkpoint(prefix)
    load_state_strict(net, convert_tensors(tensors, {k: _tf_to_torch_name(k) for k in tensors}))
    return net.eval()


def rgb_to_ycbcr_jpeg(rgb: np.ndarray) -> np.ndarray:
    """Full-range (JPEG/JFIF) YCbCr of RGB in [0, 1], as ``test_main.py`` computes it (Cb/Cr offset 128/255)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack([
        0.299 * r + 0.587 * g + 0.114 * b,
        -0.1687 * r - 0.3313 * g + 0.5 * b + 128 / 255,
        0.5 * r - 0.4187 * g - 0.0813 * b + 128 / 255,
    ], axis=-1)


def ycbcr_jpeg_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr_jpeg` with the coefficients of ``test_main.py`` (unclipped)."""
    y, cb, cr = (np.asarray(ycc, dtype=np.float64)[..., i] for i in range(3))
    cb, cr = cb - 128 / 255, cr - 128 / 255
    return np.stack([y + 1.402 * cr, y - 0.34414 * cb - 0.71414 * cr, y + 1.772 * cb], axis=-1)


def stretch_to_max(image: np.ndarray) -> np.ndarray:
    """``scipy.misc.toimage(x, cmin=0, cmax=x.max())``: x·255/max, clip to [0, 255], round half up → uint8."""
    image = np.asarray(image, dtype=np.float64)
    top = float(image.max()) or 1.0
    return np.floor(np.clip(image * (255.0 / top), 0, 255) + 0.5).astype(np.uint8)


@register_method(
    "u2fusion.ivf", display_name="U2Fusion (IR/VIS)", family="deep", citation=_CITATION, colour="own",
    weights=WEIGHTS, deterministic=True, version="1",
    params={"source1": "a", "stretch": True}, uses_torch=True, trainable=False, tasks=("IR-VIS",),
    description="U2Fusion, the official IR-VIS setting of test_main.py: SOURCE1 = visible (a), SOURCE2 = infrared",
)
@register_method(
    "u2fusion", display_name="U2Fusion", family="deep", citation=_CITATION, colour="own",
    weights=WEIGHTS, deterministic=True, version="1",
    params={"source1": "b", "stretch": True}, uses_torch=True, trainable=False,
)
class U2Fusion(TorchMethod):
    """U2Fusion dense generator (official TF1 weights); colour and saving as the official ``test_main.py``.

    Any size and aspect as is: the generator is fully convolutional with reflect
    padding inside, as the official graph, so no outer padding is added.
    ``threads``: torch threads while fusing (see :class:`fusionbench.torch_method.TorchMethod`).
    The checkpoint files are verified against their pinned sha256 at every load.
    """

    def __init__(self, source1: Literal["a", "b"] = "b", stretch: bool = True, threads: int | None = None) -> None:
        super().__init__(threads=threads)
        if source1 not in ("a", "b"):
            raise ValueError(f"source1 must be 'a' or 'b', not {source1!r}")
        index = checkpoint_index("u2fusion")
        self.source1 = source1
        self.stretch = bool(stretch)
        self.network = load_u2fusion(index.with_name(_PREFIX))

    def torch_inputs(self, size: tuple[int, int] = (256, 256)) -> tuple[Any, Any]:
        """Example inputs of one forward pass: (source1, source2), each 1×1×H×W in [0, 1]."""
        import torch

        gen = torch.Generator().manual_seed(0)
        return tuple(torch.rand(1, 1, *size, generator=gen) for _ in range(2))

    def fuse_grey(self, source1: np.ndarray, source2: np.ndarray) -> np.ndarray:
        """Raw generator output (float32 in [0, 1]) for two grey images in [0, 1]."""
        with self.inference():
            return self.network(as_tensor(source1), as_tensor(source2))[0, 0].numpy()

    def fuse_official(self, source1: np.ndarray, source2: np.ndarray) -> np.ndarray:
        """``test_main.py`` on two images in [0, 1] (either may be H×W×3); returns its saved image.

        uint8 (H×W, or H×W×3 when exactly one source is colour) with ``stretch``;
        float in [0, 1] otherwise.
        """
        chroma = None
        grey = []
        for img in (source1, source2):
            if colour.is_colour(img):
                ycc = rgb_to_ycbcr_jpeg(img)
                grey.append(ycc[..., 0])
                chroma = ycc if chroma is None else None  # both colour: official output stays grey
            else:
                grey.append(np.asarray(img, dtype=np.float64))
        both_colour = colour.is_colour(source1) and colour.is_colour(source2)
        out = self.fuse_grey(*grey).astype(np.float64)
        if chroma is not None and not both_colour:
            chroma[..., 0] = out
            out = ycbcr_jpeg_to_rgb(chroma)
        if self.stretch:
            return stretch_to_max(out)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a`` MRI/visible H×W, ``b`` PET/SPECT (H×W×3) or grey CT/IR (H×W), floats in [0, 1]."""
        return self.fuse_official(b, a) if self.source1 == "b" else self.fuse_official(a, b)
