"""Di et al. (2025): mask optimisation + parallel attention fusion network (``mopa``) and its ablations.

The founding paper's own method (no official code): the network is built from
§1 of the paper (see :mod:`.network` for every design choice), trained here
with the losses of §1.5 (:mod:`.losses`) by fusionbench's generic loop
(``fusionbench train mopa[.<preset>]``), and its weights are committed in
``weights/<preset>.pth`` (fp32 state dicts; the commands in
``weights/README.md``; sha256 checked on load).

Registered names: ``mopa`` (all components) and the Table 4 ablations
``mopa.mask_only``, ``mopa.attention_only``, ``mopa.contrast_only``,
``mopa.decouple_only`` (rows 1-4 as printed) and ``mopa.no_mask``,
``mopa.no_attention``, ``mopa.no_contrast``, ``mopa.no_decouple`` (the text's
"each omitting one component"; trainable, no weights committed).

Fidelity: there is nothing to compare with (no official code, weights or
outputs); the committed weights come from a REDUCED schedule on a shared
2-core CPU (1 epoch of 8,820 64² patches, Adam 1e-3; ``weights/README.md``),
not the paper's 30 epochs of 35,280 120² patches, so scores are not expected to
reach Tables 1-4.  Measured (``docs/paper_network.md``): 17,467 inference
parameters and 2.207 GFLOPs at 256² (paper: "0.5×10⁷" and 2.531); on the
paper's 20 test pairs `mopa` ranks 2nd of 16 methods on SCD, 3rd on CC, 4th on
EN but 11th on AG and 13th on SF, and the five Table 4 presets are within a
few per cent of each other (the paper's ordering is not reproduced).

Inference: luma convention; ``a`` the MRI, ``b`` the PET/SPECT luma or CT,
full image at once (fully convolutional), masks by Otsu on the full images,
the decoupling network is not run.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from fusionbench.method_registry import register_method
from fusionbench.train import TrainConfig, TrainSpec, register_trainer

from .presets import PRESETS, TABLE4, registered_name

WEIGHTS_DIR = Path(__file__).parent / "weights"
VERSION = "1"
CITATION = ("DI J., LIANG C., GUO W., LIAN J. Multimodal medical image fusion based on mask optimization and "
            "parallel attention mechanism. J. Meas. Sci. Instrum. 16(1):26-36, 2025. "
            "doi:10.62756/jmsi.1674-8042.2025003")
#: Model parameters that are not component switches (constructor arguments of MopaNet).
DEFAULT_MODEL = {"width": 4, "mask_mode": "concat", "contrast_r": 3, "spatial_kernel": 7, "slope": 0.2}
#: The paper's training schedule (§2): 120×120 patches at stride 10 of 180 pairs, 30 epochs, batch 32, Adam 1e-4.
PAPER_SCHEDULE = TrainConfig(epochs=30, batch_size=32, lr=1e-4, patch_size=120, stride=10)
MODEL_KEYS = ("width", "mask_mode", "contrast_r", "spatial_kernel", "slope",
              "use_mask", "use_attention", "use_contrast", "use_decouple")


def weights_file(preset: str) -> Path:
    return WEIGHTS_DIR / f"{preset}.pth"


def load_state_dict(preset: str) -> dict[str, Any]:
    """The committed state dict of ``preset``, checked against ``<preset>.sha256``."""
    import torch

    path = weights_file(preset)
    sha_path = path.with_suffix(".sha256")
    if not path.is_file() or not sha_path.is_file():
        raise FileNotFoundError(f"no committed weights for mopa preset {preset!r} ({path}); train them with "
                                f"`fusionbench train {registered_name(preset)} --export {WEIGHTS_DIR}`")
    expected = sha_path.read_text().split()[0]
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise RuntimeError(f"{path}: sha256 {actual} does not match {sha_path} ({expected})")
    return torch.load(path, map_location="cpu", weights_only=True)


def build_model(params: dict[str, Any]):
    """The :class:`~.network.MopaNet` of a registered params dict (extra keys ignored)."""
    from .network import MopaNet

    kw = {k: params[k] for k in MODEL_KEYS if k in params}
    return MopaNet(**kw)


def prepare(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Training inputs of one loaded pair: ``[MRI, luma(b), otsu(MRI), otsu(luma(b))]``, 4×H×W."""
    from fusionbench.colour import luma

    from .network import network_inputs

    return network_inputs(luma(a), luma(b))


def loss(model, batch):
    """Eq. 8-13 on a batch of prepared patches."""
    from .losses import total_loss

    fused, decoupled = model(batch)
    return total_loss(fused, decoupled, batch[:, 0:1], batch[:, 1:2])


def _paper_pairs(data_dir):
    from fusionbench.data import paper_training_pairs

    return paper_training_pairs(data_dir)


register_trainer(TrainSpec(
    method="mopa", build_model=build_model, prepare=prepare, loss=loss, default_pairs=_paper_pairs,
    defaults=PAPER_SCHEDULE, weights_name=lambda params: params["preset"], weights_dir=WEIGHTS_DIR,
    description="Di et al. 2025 network, losses Eq. 8-13, paper schedule §2",
))


class MOPA:
    """Fuse with a trained ``mopa`` preset (weights loaded once, CPU, full image).

    ``self.network`` is the inference module (the decoupling network, used in
    training only, is loaded and then dropped), as :mod:`fusionbench.profile`
    expects; ``torch_inputs(size)`` gives the tensor of one forward pass.
    """

    @staticmethod
    def cache_token(preset: str = "mopa", **_: Any) -> str:
        """The committed sha256 of the preset's weights, so retrained weights never reuse cached outputs."""
        sha = weights_file(preset).with_suffix(".sha256")
        return sha.read_text().split()[0][:16] if sha.is_file() else "missing"

    def __init__(self, preset: str = "mopa", threads: int | None = None, **model: Any):
        net = build_model({**DEFAULT_MODEL, **PRESETS[preset], **model})
        net.load_state_dict(load_state_dict(preset))
        net.decoupler = None  # inference: fused image only
        self.preset, self.threads = preset, threads
        self.network = net.eval()

    @staticmethod
    def unavailable_reason(preset: str = "mopa", **_: Any) -> str | None:
        """Why the preset cannot run (its committed weights are absent), or ``None``."""
        if weights_file(preset).is_file():
            return None
        return (f"weights of mopa preset {preset!r} are not committed; train them with "
                f"`fusionbench train {registered_name(preset)} --export {WEIGHTS_DIR}`")

    @staticmethod
    def torch_inputs(size: tuple[int, int] = (256, 256)):
        """One forward pass's input: 1×4×H×W ``[a, b, mask_a, mask_b]`` (a smooth synthetic pair)."""
        import torch

        from .network import network_inputs

        yy, xx = np.mgrid[0:size[0], 0:size[1]].astype(np.float32)
        a = 0.5 + 0.5 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
        b = np.clip(1.0 - np.hypot(yy - size[0] / 2, xx - size[1] / 2) / max(size), 0, 1)
        return (torch.from_numpy(network_inputs(a, b))[None],)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import torch

        from .network import network_inputs

        x = torch.from_numpy(network_inputs(a, b))[None]
        old = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                fused, _ = self.network(x)
        finally:
            torch.set_num_threads(old)
        return fused[0, 0].numpy().astype(np.float32)


_DISPLAY = {"mopa": "Ours (Di et al. 2025)"}
for _preset, _switches in PRESETS.items():
    _name = registered_name(_preset)
    register_method(
        _name,
        display_name=_DISPLAY.get(_preset, f"Ours ({_preset.replace('_', ' ')})"),
        family="deep",
        citation=CITATION,
        colour="luma",
        deterministic=True,
        version=VERSION,
        params={"preset": _preset, **DEFAULT_MODEL, **_switches},
        description=("Di et al. 2025 mask optimisation + parallel attention network" if _preset == "mopa"
                     else f"Di et al. 2025 network, Table 4 ablation '{_preset}'"),
        uses_torch=True,
        trainable=True,
    )(MOPA)

__all__ = ["MOPA", "PAPER_SCHEDULE", "PRESETS", "TABLE4", "build_model", "load_state_dict", "loss", "prepare"]
