"""What the registered ``mopa`` loss reading weighs: the numbers behind ``docs/paper_network.md``,
"What these readings weigh".

For the Harvard MRI-PET and MRI-SPECT pairs of one split (``test`` by default; whole 256² images, the
network's inputs as ``mopa`` prepares them) and the committed ``mopa`` weights, prints per task:

* ``10·L_gradient``, ``L_intensity`` and ``L_decouple`` of Eq. 8-13 in the registered reading (I₁ = the
  functional source, α = 0.5, 0/1 S from the Sobel magnitude, Sobel ∇), over all pairs at once;
* the decoupling loss with the fused image replaced by a constant 0.5, and with the feature paths' outputs
  zeroed, as multiples of ``L_decouple`` (how much the decoupler leans on each input);
* the Sobel gradient term over SDNet's 4-neighbour Laplacian term (each with its own S), for the average of
  the two sources, their maximum, and the ``mopa`` output.

Run: ``python scripts/mopa_loss_balance.py [--split test] [--data-dir ../shared/data]`` (about half a minute
on 2 cores; one thread, so the sums do not depend on the thread count).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import fusionbench
from fusionbench.io import load_image
from fusionbench.methods.mopa import build_model, load_state_dict, prepare, preset_params
from fusionbench.methods.mopa.losses import decouple_loss, gradient_loss, intensity_loss

TASKS = ("harvard-mri-pet", "harvard-mri-spect")


def balance(task: str, split: str, data_dir: str, net: torch.nn.Module) -> dict[str, float]:
    """The printed quantities of one task (see the module docstring)."""
    ds = fusionbench.create_dataset(task, data_dir=data_dir)
    pairs = ds.select(split)
    xs = torch.from_numpy(np.stack([prepare(load_image(p.a_path), load_image(p.b_path)) for p in pairs]))
    mri, func = xs[:, 0:1], xs[:, 1:2]
    with torch.no_grad():
        fused, (d_mri, d_func) = net(xs)
        feats = torch.cat([net.path_a(torch.cat([mri, xs[:, 2:3]], 1)), net.path_b(torch.cat([func, xs[:, 3:4]], 1))], 1)
        l_dec = decouple_loss(d_mri, d_func, mri, func)
        const = decouple_loss(*net.decoupler(torch.full_like(fused, 0.5), feats), mri, func)
        zeroed = decouple_loss(*net.decoupler(fused, torch.zeros_like(feats)), mri, func)

        def sobel_over_laplacian(f: torch.Tensor) -> float:
            return float(gradient_loss(f, func, mri) / gradient_loss(f, func, mri, grad_op="laplacian"))

        return {"pairs": len(pairs), "10*L_gradient": 10 * float(gradient_loss(fused, func, mri)),
                "L_intensity": float(intensity_loss(fused, func, mri)), "L_decouple": float(l_dec),
                "decouple, constant F (x)": float(const / l_dec), "decouple, zeroed features (x)": float(zeroed / l_dec),
                "Sobel/Laplacian, average": sobel_over_laplacian((mri + func) / 2),
                "Sobel/Laplacian, maximum": sobel_over_laplacian(torch.maximum(mri, func)),
                "Sobel/Laplacian, mopa output": sobel_over_laplacian(fused)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test")
    ap.add_argument("--data-dir", default="../shared/data")
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = build_model(preset_params("mopa"))
    net.load_state_dict(load_state_dict("mopa"))
    net.eval()
    rows = {task: balance(task, args.split, args.data_dir, net) for task in TASKS}
    print(f"split: {args.split}; committed mopa weights")
    print("quantity".ljust(32) + "".join(t.ljust(20) for t in TASKS))
    for key in rows[TASKS[0]]:
        print(key.ljust(32) + "".join(f"{rows[t][key]:<20.4g}" for t in TASKS))


if __name__ == "__main__":
    main()
