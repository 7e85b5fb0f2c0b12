"""A training checkpoint of ``mopa`` against the committed weights on the held-out test pairs.

Usage (repository root)::

    python scripts/compare_mopa_checkpoint.py device_runs/mopa/checkpoint.pt --data-dir ../shared/data

For each test pair of Harvard MRI-PET and MRI-SPECT (``test`` split, full
256² images): the training loss (Eq. 8-13, the registered reading, decoupler
included) and the paper's seven metrics of the fused luma on the uint8
scoring view (:func:`fusionbench.api.scoring_view`); printed as the mean per
task for both weight sets.  One thread; about two minutes here.
"""
from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    import pandas as pd
    import torch

    import fusionbench
    from fusionbench.api import scoring_view
    from fusionbench.io import load_image
    from fusionbench.methods.mopa import (DEFAULT_PARAMS, build_model, load_state_dict, make_loss, prepare,
                                          preset_params)
    from fusionbench.metrics import evaluate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a run's checkpoint.pt (or a state dict .pth)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--preset", default="mopa")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    states = {"committed": load_state_dict(args.preset), "checkpoint": state.get("model", state)}
    nets = {}
    for name, sd in states.items():
        net = build_model(preset_params(args.preset))
        net.load_state_dict(sd)
        nets[name] = net.eval()
    loss_fn = make_loss({**DEFAULT_PARAMS, **preset_params(args.preset)})
    rows = []
    kw = {} if args.data_dir is None else {"data_dir": args.data_dir}
    for task in ("harvard-mri-pet", "harvard-mri-spect"):
        ds = fusionbench.create_dataset(task, **kw)
        test = set(ds.splits["test"])
        for pair in (p for p in ds.pairs if p.id in test):
            a, b = load_image(pair.a_path), load_image(pair.b_path)
            x = torch.from_numpy(prepare(a, b))[None]
            for name, net in nets.items():
                with torch.no_grad():
                    loss = float(loss_fn(net, x)[0])
                    fused, _ = net(x)
                view = scoring_view(fused[0, 0].numpy(), a, b)
                scores = evaluate(view.fused, view.a, view.b, ["AG", "EN", "SF", "SD", "CC", "MI", "SCD"])
                rows.append({"weights": name, "task": task, "pair": pair.id, "loss": loss, **scores})
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 160):
        print(df.drop(columns="pair").groupby(["weights", "task"]).mean().round(4).to_string())
        print(df.groupby("weights")["loss"].mean().round(4).to_string())


if __name__ == "__main__":
    main()
