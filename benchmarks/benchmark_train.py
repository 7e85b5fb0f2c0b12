"""asv suite: training throughput of the generic loop's step for ``mopa`` presets.

``time_train_step``: one Adam step (forward, Eq. 8-13 loss, backward, update)
on a batch of 16 patches of 64² (the reduced schedule's batch) with one torch
thread; patches/s = 16 / time.  ``time_train_step_paper``: the paper's batch of
32 patches of 120².  Inputs are synthetic (random sources with their Otsu
masks), so the suite needs no data.

    asv run --python=same --set-commit-hash $(git rev-parse HEAD) --bench benchmark_train
"""
from __future__ import annotations

import numpy as np


class MopaTrainStep:
    params = [["mopa", "mask_only", "attention_only", "contrast_only", "decouple_only", "v1"]]
    param_names = ["preset"]
    timeout = 600
    number = 1
    repeat = 3
    warmup_time = 0

    def setup(self, preset: str) -> None:
        import torch

        from fusionbench.methods.mopa import build_model, make_loss, preset_params
        from fusionbench.methods.mopa.network import network_inputs

        torch.set_num_threads(1)
        torch.manual_seed(0)
        params = preset_params(preset)
        self.loss = make_loss(params)
        self.model = build_model(params)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        rng = np.random.default_rng(0)

        def batch(n: int, size: int):
            return torch.from_numpy(np.stack([network_inputs(rng.random((size, size), dtype=np.float32),
                                                             rng.random((size, size), dtype=np.float32))
                                              for _ in range(n)]))

        self.small, self.paper = batch(16, 64), batch(32, 120)

    def _step(self, batch) -> None:
        total, _ = self.loss(self.model, batch)
        self.opt.zero_grad()
        total.backward()
        self.opt.step()

    def time_train_step(self, preset: str) -> None:
        self._step(self.small)

    def time_train_step_paper(self, preset: str) -> None:
        self._step(self.paper)
