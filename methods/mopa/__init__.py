"""Di et al. (2025): mask optimisation + parallel attention fusion network (``mopa``) and its variants.

The founding paper's own method (no official code): the network is built from
§1 of the paper (see :mod:`.network` for every design choice), trained here
with the losses of §1.5 (:mod:`.losses`) by fusionbench's generic loop
(``fusionbench train mopa[.<preset>]``), and its weights are committed in
``weights/<preset>.pth`` (fp32 state dicts, ``<preset>.sha256`` sidecar
verified at load by :func:`fusionbench.torch_method.load_state`).

Configuration (version 2, ``docs/paper_network.md`` gives the evidence for
each): width 5 (the paper's 2.531 GFLOPs in its own FLOP convention),
cascade attention, CEM weights on the module's input, Eq. 11-12 read as
SDNet's (I1 = PET/SPECT, α = 0.5, 0/1 S from the stronger Sobel gradient),
180 training pairs from MRI-PET and MRI-SPECT (:mod:`.data`).  Presets
(:mod:`.presets`): the Table 4 ablations ``mopa.<component>_only`` and
``mopa.no_<component>``, other readings (``mopa.width4``, ``mopa.width6``,
``mopa.parallel``, ``mopa.cem_multiscale``, ``mopa.soft_weights``,
``mopa.laplacian``, ``mopa.all_tasks``) and ``mopa.v1`` (the first
configuration, with its committed weights).  A preset without committed
weights is registered and trainable, and reports why it cannot run.

Seeds (issue 19): every preset takes ``seed`` (default 0):
``create_method("mopa.no_mask", seed=1)`` loads ``weights/no_mask.seed1.pth``
(+ ``.sha256``, ``.json``), the file ``fusionbench train mopa.no_mask --seed 1
--export DIR`` writes.  The nine Table 4 presets are also registered per
extra seed as ``mopa[.<preset>].seed<N>`` (N = 1, 2), because the runner
selects methods by name; ``fusionbench train mopa.no_mask.seed1`` trains
seed 1.

Fidelity: there is nothing to compare with (no official code, weights or
outputs).  The committed ``mopa`` weights come from a REDUCED CPU schedule
awaiting the device run of the paper's §2 schedule (``weights/README.md``,
``docs/training.md``), so scores are not expected to reach Tables 1-4.

Inference: luma convention; ``a`` the MRI, ``b`` the PET/SPECT luma or CT,
full image at once (fully convolutional), masks by Otsu on the full images,
the decoupling network is not run.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from fusionbench.method_registry import register_method
from fusionbench.torch_method import TorchMethod, as_array, load_state
from fusionbench.train import TrainConfig, TrainSpec, register_trainer

from .data import TRAINED_FOR
from .presets import EXTRA_SEEDS, LEAVE_ONE_OUT, PRESETS, SEEDED, TABLE4, registered_name, seeded_name, split_seed

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from .network import MopaNet

WEIGHTS_DIR = Path(__file__).parent / "weights"
#: "2": width 5, cascade attention, SDNet's reading of Eq. 11-12, PET+SPECT training pairs ("1": docs/paper_network.md)
VERSION = "2"
CITATION = ("DI J., LIANG C., GUO W., LIAN J. Multimodal medical image fusion based on mask optimization and "
            "parallel attention mechanism. J. Meas. Sci. Instrum. 16(1):26-36, 2025. "
            "doi:10.62756/jmsi.1674-8042.2025003")
#: The registered ``mopa``: network (MopaNet arguments), component switches, loss reading, training pairs.
DEFAULT_PARAMS: dict[str, Any] = {
    "width": 5, "attention": "cascade", "cem_apply": "input", "mask_mode": "concat", "contrast_r": 3,
    "spatial_kernel": 7, "slope": 0.2,
    "use_mask": True, "use_attention": True, "use_contrast": True, "use_decouple": True,
    "loss_alpha": 0.5, "loss_i1": "functional", "loss_weights": "max", "loss_grad": "sobel",
    "train_tasks": "pet_spect",
}
#: The paper's training schedule (§2): 120×120 patches at stride 10 of 180 pairs, 30 epochs, batch 32, Adam 1e-4.
PAPER_SCHEDULE = TrainConfig(epochs=30, batch_size=32, lr=1e-4, patch_size=120, stride=10)
MODEL_KEYS = ("width", "mask_mode", "attention", "cem_apply", "contrast_r", "spatial_kernel", "slope",
              "use_mask", "use_attention", "use_contrast", "use_decouple")


def preset_params(preset: str) -> dict[str, Any]:
    """The full params dict of ``preset`` (``DEFAULT_PARAMS`` with its overrides)."""
    return {"preset": preset, **DEFAULT_PARAMS, **PRESETS[preset]}


def trained_dir() -> Path:
    """``$FUSIONBENCH_HOME/trained/mopa``: where weights you train yourself go (``--export``), outside the package
    (an installed package's folder may be read-only, and a reinstall or ``pip uninstall`` would lose them)."""
    from fusionbench.config import home

    return home() / "trained" / "mopa"


def weights_file(preset: str, seed: int = 0) -> Path:
    """``<preset>.pth`` (seed 0) or ``<preset>.seed<N>.pth`` (the stem ``--export`` writes): the committed file in
    :data:`WEIGHTS_DIR` when there is one, else yours in :func:`trained_dir` (committed weights are never shadowed:
    a run of ``mopa`` is the committed ``mopa``); the committed path when neither exists."""
    from fusionbench.train.cli import weights_stem

    committed = WEIGHTS_DIR / f"{weights_stem(preset, seed)}.pth"
    if committed.is_file():
        return committed
    yours = trained_dir() / committed.name
    return yours if yours.is_file() else committed


def _train_command(preset: str, seed: int) -> str:
    return f"fusionbench train {registered_name(preset)}{f' --seed {seed}' if seed else ''} --export {trained_dir()}"


def load_state_dict(preset: str, seed: int = 0) -> dict[str, Any]:
    """The state dict of ``preset`` (trained with ``seed``; committed, or yours: :func:`weights_file`), verified
    against its ``.sha256`` sidecar."""
    error = weights_problem(preset, seed)  # the one check: absent, or not matching the sidecar (memoised)
    if error is not None:
        raise error
    return load_state(weights_file(preset, seed), verify=False)  # verified just above


def _repair_command(preset: str, seed: int) -> str:
    """What repairs a weight file of ``preset`` whose sha256 no longer matches its sidecar (the error's last words)."""
    return f"re-export with `{_train_command(preset, seed)}`"


def weights_problem(preset: str, seed: int = 0) -> Exception | None:
    """Why ``preset`` (trained with ``seed``) cannot load its weights, as the exception :func:`load_state_dict`
    would raise, or ``None``: none committed or yours (``FileNotFoundError`` of :func:`unavailable_message`), or a
    file that no longer matches its ``.sha256`` sidecar (:class:`~fusionbench.weights.ChecksumError`; the check
    :func:`load_state_dict` makes, memoised by size and modification time, so it can be asked for every pair)."""
    from fusionbench.weights import ChecksumError, verify_file

    path = weights_file(preset, seed)
    if not path.is_file():
        return FileNotFoundError(unavailable_message(preset, seed))
    try:
        verify_file(path, fix=_repair_command(preset, seed))
    except (ChecksumError, FileNotFoundError) as exc:  # FileNotFoundError: removed since the look above
        return exc
    return None


def unavailable_message(preset: str, seed: int = 0) -> str:
    """Why ``preset`` (trained with ``seed``) has no weights, and the command that makes them."""
    why = ("its architecture changed in version 2 (width 5); the version-1 weights no longer load"
           if preset in TABLE4 and seed == 0 else "no weights were trained for it yet")
    which = f"mopa preset {preset!r}" + (f" with training seed {seed}" if seed else "")
    return (f"weights of {which} ({weights_file(preset, seed).name}) are not committed ({why}); they await the "
            f"device run (docs/training.md in the fusionbench repository), or train them with "
            f"`{_train_command(preset, seed)}`")


def build_model(params: dict[str, Any]) -> MopaNet:
    """The :class:`~.network.MopaNet` of a registered params dict (extra keys ignored)."""
    from .network import MopaNet

    return MopaNet(**{k: params[k] for k in MODEL_KEYS if k in params})


def prepare(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Training inputs of one loaded pair: ``[MRI, luma(b), otsu(MRI), otsu(luma(b))]``, 4×H×W."""
    from fusionbench.colour import luma

    from .network import network_inputs

    return network_inputs(luma(a), luma(b))


def make_loss(params: dict[str, Any]) -> Callable[[nn.Module, torch.Tensor],
                                                  tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """The training loss (Eq. 8-13) of the variant with ``params`` (its loss reading)."""
    from .losses import LossReading, total_loss

    reading = LossReading.from_params(params)

    def loss(model, batch):
        fused, decoupled = model(batch)
        return total_loss(fused, decoupled, batch[:, 0:1], batch[:, 1:2], reading)

    return loss


def loss(model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 8-13 with the registered ``mopa`` reading on a batch of prepared patches."""
    return make_loss(DEFAULT_PARAMS)(model, batch)


def _pairs_for(params: dict[str, Any], data_dir):
    from .data import training_pairs

    return training_pairs(params.get("train_tasks", "pet_spect"), data_dir)


def _default_pairs(data_dir):
    return _pairs_for(DEFAULT_PARAMS, data_dir)


register_trainer(TrainSpec(
    method="mopa", build_model=build_model, prepare=prepare, loss=loss, default_pairs=_default_pairs,
    defaults=PAPER_SCHEDULE, weights_name=lambda params: params["preset"], weights_dir=WEIGHTS_DIR,
    description="Di et al. 2025 network, losses Eq. 8-13, paper schedule §2",
    pairs_for=_pairs_for, make_loss=make_loss,
))


class MOPA(TorchMethod):
    """Fuse with a trained ``mopa`` preset (weights loaded once, CPU, full image).

    ``self.network`` is the inference module (the decoupling network, used in
    training only, is loaded and then dropped), as :mod:`fusionbench.profile`
    expects; ``torch_inputs(size)`` gives the tensor of one forward pass.
    """

    @staticmethod
    def cache_token(preset: str = "mopa", seed: int = 0, **_: Any) -> str:
        """The recorded sha256 of the preset's weights (:func:`weights_file`), so retrained weights never reuse
        cached outputs."""
        from fusionbench.weights import sidecar_token

        return sidecar_token(weights_file(preset, seed))

    def __init__(self, preset: str = "mopa", threads: int | None = None, seed: int = 0, **params: Any):
        super().__init__(threads=threads)
        net = build_model({**preset_params(preset), **params})
        net.load_state_dict(load_state_dict(preset, seed))
        net.decoupler = None  # inference: fused image only
        self.preset, self.seed = preset, seed
        self.network = net.eval()

    @staticmethod
    def unavailable_error(preset: str = "mopa", seed: int = 0, **_: Any) -> Exception | None:
        """Why the preset (trained with ``seed``) cannot run (no weights, committed or yours, or a file that does
        not match its sidecar: :func:`weights_problem`), or ``None``."""
        return weights_problem(preset, seed)

    @staticmethod
    def torch_inputs(size: tuple[int, int] = (256, 256)) -> tuple[torch.Tensor]:
        """One forward pass's input: 1×4×H×W ``[a, b, mask_a, mask_b]`` (a smooth synthetic pair)."""
        import torch

        from .network import network_inputs

        yy, xx = np.mgrid[0:size[0], 0:size[1]].astype(np.float32)
        a = 0.5 + 0.5 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
        b = np.clip(1.0 - np.hypot(yy - size[0] / 2, xx - size[1] / 2) / max(size), 0, 1)
        return (torch.from_numpy(network_inputs(a, b))[None],)

    @property
    def min_side(self) -> int:
        """The smallest image side the network reads as the paper defines it: the contrast module's reflect
        padding of ``contrast_r`` needs ``contrast_r + 1`` pixels (4 for the registered r = 3)."""
        contrast = self.network.contrast
        return getattr(contrast, "r", 0) + 1

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The fused luma of ``a`` and ``b`` (H×W float32 in [0, 1]).

        A side shorter than :attr:`min_side` is first mirrored out to it (``np.pad(mode='symmetric')``, as
        SwinFusion and MATR pad) and the result cropped back: a 2-pixel side failed in the reflect padding,
        and a 3-pixel one gave a 1-pixel window map that broadcast over the image."""
        import torch

        from .network import network_inputs

        h, w = a.shape
        need = self.min_side
        ph, pw = max(need - h, 0), max(need - w, 0)
        if ph or pw:
            a, b = (np.pad(x, ((0, ph), (0, pw)), mode="symmetric") for x in (a, b))
        with self.inference():
            fused, _ = self.network(torch.from_numpy(network_inputs(a, b))[None])
        return as_array(fused).astype(np.float32)[:h, :w]


_DISPLAY = {"mopa": "Ours (Di et al. 2025)"}


def _register(preset: str, seed: int = 0) -> None:
    label = _DISPLAY.get(preset, f"Ours ({preset.replace('_', ' ')})")
    what = ("Di et al. 2025 mask optimisation + parallel attention network" if preset == "mopa"
            else f"Di et al. 2025 network, preset '{preset}'")
    register_method(
        seeded_name(preset, seed),
        display_name=label if seed == 0 else f"{label} [seed {seed}]",
        family="deep",
        citation=CITATION,
        colour="luma",
        deterministic=True,
        version=VERSION,
        # seed 0 keeps the params it always had (no "seed" key: the method keys of stored results stay valid)
        params=preset_params(preset) if seed == 0 else {**preset_params(preset), "seed": seed},
        description=what if seed == 0 else f"{what}, training seed {seed}",
        uses_torch=True,
        trainable=True,
        trained_for=TRAINED_FOR[preset_params(preset)["train_tasks"]],
    )(MOPA)


for _preset in PRESETS:
    _register(_preset)
for _preset in SEEDED:
    for _seed in EXTRA_SEEDS:
        _register(_preset, _seed)

__all__ = ["DEFAULT_PARAMS", "EXTRA_SEEDS", "LEAVE_ONE_OUT", "MOPA", "PAPER_SCHEDULE", "PRESETS", "SEEDED", "TABLE4",
           "build_model", "load_state_dict", "loss", "make_loss", "prepare", "preset_params", "seeded_name",
           "split_seed", "weights_file"]
