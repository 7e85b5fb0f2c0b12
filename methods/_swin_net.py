"""SwinFusion's network (``swinfusion1`` variant) as a plain PyTorch module.

Written from a reading of ``models/network_swinfusion1.py`` of
``Linfeng-Tang/SwinFusion`` (commit ceeec3f), which builds on SwinIR.  Module
and parameter names, shapes and persistent buffers follow that definition, so
``SwinFusionNet().load_state_dict(official_10000_E, strict=True)`` is expected
to work for an official checkpoint (the test checks every key and shape
against an independently written list).

Structure (A = MRI, B = PET/SPECT luma or CT; images B×1×H×W in [0, 1]):

* shallow: 3×3 conv 1→30 + LeakyReLU(0.2), 3×3 conv 30→60 + LeakyReLU.
  **Official quirk:** both modalities go through the ``*_A`` convs;
  ``conv_first1_B`` and ``conv_first2_B`` (the latter 30→30) exist, are saved
  in the state dict, and are never used.
* tokens: flatten + the shared ``patch_embed.norm`` LayerNorm (applied again at
  the start of the fusion and of the reconstruction stage).
* extraction: per modality one "RSTB" (4 Swin blocks, W-MSA / SW-MSA
  alternating, shift 4; no conv and no residual around the group) + LayerNorm.
* fusion: two "CRSTB" stages, each 2 Swin blocks per modality, then 2 cross
  blocks (A queries B and B queries A, separate weights), LayerNorm per stream,
  concat, 3×3 conv 120→60 + LeakyReLU.
* reconstruction: one RSTB (4 blocks) + LayerNorm, convs 60→30→15→1 with
  LeakyReLU between and no final activation.

The blocks and their inference path (chunks of windows, compiled passes, worker threads) are in
:mod:`methods._swin_blocks`; the window geometry in :mod:`methods._swin_windows`.

Torch is imported at module level: this private module is imported lazily by
:mod:`methods.swinfusion` (``methods/__init__`` skips ``_`` modules).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import _swin_blocks as blocks
from ._band_workers import all_cores, band_workers, both, run_spans, workers
from ._row_bands import even_bands
from ._swin_blocks import CHUNK_ROWS, BasicLayer, CrossSwinTransformerBlock, SwinTransformerBlock, token_rows
from ._swin_windows import Order, gather_index

__all__ = ["SwinFusionNet", "RSTB", "CRSTB"]


class RSTB(nn.Module):
    """The ``swinfusion1`` "residual" Swin group: ``residual_group`` only (no conv, no residual)."""

    def __init__(self, **kw):
        super().__init__()
        self.residual_group = BasicLayer(SwinTransformerBlock, **kw)

    def forward(self, x: torch.Tensor, size: tuple[int, int], consume: bool = False,
                epilogue: tuple[nn.Module, ...] | None = None, order_in: Order = None,
                order_out: Order = None) -> torch.Tensor:
        """``consume``/``epilogue``/``order_*``: see :meth:`BasicLayer.forward` (one stream; inference)."""
        return self.residual_group(x, size, consume=consume, epilogue=[epilogue] if epilogue else None,
                                   order_in=order_in, order_out=order_out)


class CRSTB(nn.Module):
    """Intra-domain groups ``residual_group_A`` / ``_B``, then the cross group ``residual_group``."""

    def __init__(self, **kw):
        super().__init__()
        self.residual_group = BasicLayer(CrossSwinTransformerBlock, **kw)
        self.residual_group_A = BasicLayer(SwinTransformerBlock, **kw)
        self.residual_group_B = BasicLayer(SwinTransformerBlock, **kw)

    def forward(self, x: torch.Tensor, y: torch.Tensor, size: tuple[int, int], consume: bool = False,
                order_in: Order = None, order_out: Order = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``consume``/``order_*``: see :meth:`BasicLayer.forward` (inference); the streams pass between the
        groups in the cross group's first window order, and the cross group takes the intra groups' maps."""
        # inference: the intra groups hand their maps over in their last block's window order, and the cross
        # group's first block gathers them into its own order inside its first norm pass (no whole-map gather)
        mid = (self.residual_group_A.handover(order_in, self.residual_group.first_order)
               if self.residual_group.blocks[0]._chunked(True) else None)
        x, y = both(lambda: self.residual_group_A(x, size, consume=consume, order_in=order_in, order_out=mid),
                    lambda: self.residual_group_B(y, size, consume=consume, order_in=order_in, order_out=mid))
        return self.residual_group(x, y, size, consume=True, order_in=mid, order_out=order_out)


class _PatchEmbed(nn.Module):
    """Patch size 1: flatten B×C×H×W to B×HW×C, then ``norm``."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.flatten(2).transpose(1, 2))


class SwinFusionNet(nn.Module):
    """SwinFusion, ``swinfusion1`` variant with the official medical configuration.

    ``forward(a, b)`` takes B×1×H×W tensors in [0, 1] and returns the fused
    B×1×H×W map (no output activation; the caller clips).  Sizes that are not a
    multiple of the window are reflect-padded inside and cropped back, as the
    official ``check_image_size``; the official *test script* additionally
    mirror-pads by at least one window before calling the network (see
    :func:`methods.swinfusion.mirror_pad`).
    """

    def __init__(self, img_size: int = 128, in_chans: int = 1, embed_dim: int = 60, window_size: int = 8,
                 ex_depths: tuple[int, ...] = (4,), fusion_depths: tuple[int, ...] = (2, 2),
                 re_depths: tuple[int, ...] = (4,), num_heads: int = 6, mlp_ratio: float = 2.0,
                 drop_path_rate: float = 0.1):
        super().__init__()
        half = embed_dim // 2
        self.window_size = window_size
        self.conv_first1_A = nn.Conv2d(in_chans, half, 3, 1, 1)
        self.conv_first1_B = nn.Conv2d(in_chans, half, 3, 1, 1)     # unused (official quirk)
        self.conv_first2_A = nn.Conv2d(half, embed_dim, 3, 1, 1)
        self.conv_first2_B = nn.Conv2d(half, half, 3, 1, 1)         # unused (official quirk)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        self.patch_embed = _PatchEmbed(embed_dim)
        res = (img_size, img_size)

        def layers(kind: type, depths: tuple[int, ...]) -> nn.ModuleList:
            rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
            starts = [sum(depths[:i]) for i in range(len(depths))]
            return nn.ModuleList(
                kind(dim=embed_dim, input_resolution=res, depth=d, heads=num_heads, ws=window_size,
                     mlp_ratio=mlp_ratio, drop_path=rates[s:s + d])
                for s, d in zip(starts, depths))

        self.layers_Ex_A = layers(RSTB, ex_depths)
        self.norm_Ex_A = nn.LayerNorm(embed_dim)
        self.layers_Ex_B = layers(RSTB, ex_depths)
        self.norm_Ex_B = nn.LayerNorm(embed_dim)
        self.layers_Fusion = layers(CRSTB, fusion_depths)
        self.norm_Fusion_A = nn.LayerNorm(embed_dim)
        self.norm_Fusion_B = nn.LayerNorm(embed_dim)
        self.layers_Re = layers(RSTB, re_depths)
        self.norm_Re = nn.LayerNorm(embed_dim)
        self.conv_after_body_Fusion = nn.Conv2d(2 * embed_dim, embed_dim, 3, 1, 1)
        self.conv_last1 = nn.Conv2d(embed_dim, half, 3, 1, 1)
        self.conv_last2 = nn.Conv2d(half, half // 2, 3, 1, 1)
        self.conv_last3 = nn.Conv2d(half // 2, in_chans, 3, 1, 1)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @staticmethod
    def _unembed(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Tokens (B, HW, C) → B×C×H×W: a free channels-last view (fast path) or the official NCHW copy."""
        if blocks.reference_mode():
            return t.transpose(1, 2).reshape(t.shape[0], -1, *size)
        return t.view(t.shape[0], *size, t.shape[-1]).permute(0, 3, 1, 2)

    def _shallow(self, x: torch.Tensor) -> torch.Tensor:
        # both modalities use the A convs, exactly as the official forward_features_Ex_B does
        x = self.lrelu(self.conv_first1_A(x))
        if not blocks.reference_mode():
            # channels-last from here on: the convs run faster on it, and the token views
            # (patch_embed, _unembed) need no copy
            x = x.contiguous(memory_format=torch.channels_last)
        return self.lrelu(self.conv_first2_A(x))

    def _extract(self, x: torch.Tensor, layers: nn.ModuleList, norm: nn.Module) -> torch.Tensor:
        size = x.shape[-2:]
        t = self.patch_embed(self._shallow(x))
        for layer in layers:
            t = layer(t, size)
        return self._unembed(norm(t), size)

    def _fuse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        tx, ty = self.patch_embed(x), self.patch_embed(y)
        for layer in self.layers_Fusion:
            tx, ty = layer(tx, ty, size)
        cat = torch.cat([self._unembed(self.norm_Fusion_A(tx), size), self._unembed(self.norm_Fusion_B(ty), size)], 1)
        return self.lrelu(self.conv_after_body_Fusion(cat))

    def _reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        t = self.patch_embed(x)
        for layer in self.layers_Re:
            t = layer(t, size)
        x = self._unembed(self.norm_Re(t), size)
        x = self.lrelu(self.conv_last1(x))
        x = self.lrelu(self.conv_last2(x))
        return self.conv_last3(x)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, w = a.shape[-2:]
        ws = self.window_size
        pad = (0, (-w) % ws, 0, (-h) % ws)
        if any(pad):
            a, b = F.pad(a, pad, mode="reflect"), F.pad(b, pad, mode="reflect")
        with band_workers():
            if self.layers_Re[0].residual_group.blocks[0]._chunked(True):
                return self._forward_lean(a, b)[..., :h, :w]
            x, y = both(lambda: self._extract(a, self.layers_Ex_A, self.norm_Ex_A),
                        lambda: self._extract(b, self.layers_Ex_B, self.norm_Ex_B))
            return self._reconstruct(self._fuse(x, y))[..., :h, :w]

    # ---- inference (no autograd, eval mode): the same operations with at most two token maps per stream
    @staticmethod
    def _tokens(x: torch.Tensor) -> torch.Tensor:
        """B×C×H×W → (B, HW, C): a view of a channels-last map (else a copy); inverse of :meth:`_unembed`."""
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1])

    def _layers_lean(self, layers: nn.ModuleList, t: torch.Tensor, size: tuple[int, int],
                     epilogue: tuple[nn.Module, ...], order_out: Order = None) -> torch.Tensor:
        """RSTB ``layers`` on image-order tokens ``t`` (handed over), then the token-wise ``epilogue``;
        the result in ``order_out``."""
        order = None
        for i, layer in enumerate(layers):
            last = i == len(layers) - 1
            nxt = order_out if last else layers[i + 1].residual_group.first_order
            t = layer(t, size, consume=True, epilogue=epilogue if last else None, order_in=order, order_out=nxt)
            order = nxt
        if not len(layers):
            index = gather_index(*size, None, order_out, str(t.device))
            out = t if index is None else torch.empty_like(t)
            token_rows([out], [epilogue], src=None if index is None else [t], index=index)
            t = out
        return t

    def _extract_lean(self, x: torch.Tensor, layers: nn.ModuleList, norm: nn.Module,
                      order_out: Order) -> torch.Tensor:
        """:meth:`_extract` followed by the fusion stage's ``patch_embed``: the fusion's input tokens."""
        size = x.shape[-2:]
        t = self._tokens(self._shallow(x))
        token_rows([t], [(self.patch_embed.norm,)])
        return self._layers_lean(layers, t, size, (norm, self.patch_embed.norm), order_out)

    def _forward_lean(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """:meth:`forward`'s inference path, in place where the maths allows.

        Each Swin group keeps two token maps per stream (:meth:`BasicLayer._forward_lean`); the LayerNorms
        between stages (``norm_Ex_*`` then ``patch_embed``, ``norm_Fusion_*`` into the concatenation,
        ``patch_embed`` and ``norm_Re``) run chunk by chunk in place, and every map is dropped as soon as
        it is used.  Same operations in the same order as the training path (same numbers: the chunks
        only cut the work into whole tokens or windows).
        """
        size = a.shape[-2:]
        # between the fusion stages the streams stay in window order (no image-order pass): each stage hands its
        # maps on in its last block's order, and the next stage's first blocks gather them inside their first
        # norm pass (no whole-map gather in between); the concatenation below gathers the last stage's tokens
        # back into image order run by run
        fusion = [layer.residual_group_A.first_order for layer in self.layers_Fusion] + [None]
        ex = self.layers_Ex_A[-1].residual_group if len(self.layers_Ex_A) else None
        orders = [fusion[0] if ex is None else ex.handover(None if len(self.layers_Ex_A) == 1 else ex.first_order, fusion[0])]
        for i, layer in enumerate(self.layers_Fusion):
            mid = layer.residual_group_A.handover(orders[i], layer.residual_group.first_order)
            orders.append(layer.residual_group.handover(mid, fusion[i + 1]))
        x, y = both(lambda: self._extract_lean(a, self.layers_Ex_A, self.norm_Ex_A, orders[0]),
                    lambda: self._extract_lean(b, self.layers_Ex_B, self.norm_Ex_B, orders[0]))
        for i, layer in enumerate(self.layers_Fusion):
            x, y = layer(x, y, size, consume=True, order_in=orders[i], order_out=orders[i + 1])
        cat = x.new_empty(x.shape[0], x.shape[1], 2 * x.shape[2])
        norm_a, norm_b = self.norm_Fusion_A, self.norm_Fusion_B
        back = gather_index(*size, orders[-1], None, str(x.device))

        def concat(span: tuple[int, int, int]) -> None:
            i, start, end = span
            if back is None:
                xs, ys = x[i, start:end], y[i, start:end]
            else:
                xs, ys = x[i].index_select(0, back[start:end]), y[i].index_select(0, back[start:end])
            torch.cat([norm_a(xs), norm_b(ys)], -1, out=cat[i, start:end])

        run_spans(concat, [(i, s, e) for i in range(x.shape[0])
                           for s, e in even_bands(0, x.shape[1], CHUNK_ROWS, multiple_of=workers())])
        del x, y
        with all_cores():
            f = self.lrelu(self.conv_after_body_Fusion(self._unembed(cat, size)))
        del cat
        t = self._tokens(f)
        del f
        token_rows([t], [(self.patch_embed.norm,)])
        x = self._unembed(self._layers_lean(self.layers_Re, t, size, (self.norm_Re,)), size)
        del t
        with all_cores():
            x = self.lrelu(self.conv_last1(x))
            x = self.lrelu(self.conv_last2(x))
            return self.conv_last3(x)
