"""One training step (forward, backward, Adam) replayed as a captured CUDA graph (``--cuda-graph``).

The small networks trained here (``mopa``: 5-15 channels, ≈ 1,000 kernels per
step) leave a GPU mostly idle: the step's time goes to launching kernels from
Python.  A CUDA graph records those launches once and replays them with one
call.  The recipe is the one of PyTorch's CUDA-graphs notes
(``torch.cuda.graphs``, "whole network capture"):

1. the first :attr:`CudaGraphStep.warmup` full-size steps of a call run
   eagerly on a side stream (they are real training steps; cuDNN/cuBLAS
   workspaces and Adam's state are allocated there; the capture uses the
   same stream);
2. the next full-size step is captured (``optimiser.zero_grad(set_to_none=True)``
   first, so the gradients live in the graph's memory pool), then replayed:
   that replay *is* the step;
3. every later full-size step copies its batch into the static input and
   replays; the loss terms are cloned out of the static outputs (a later
   replay overwrites them);
4. a batch of another size (an epoch's short last batch) runs eagerly with
   ``zero_grad(set_to_none=False)``, so the gradients stay in the graph's
   buffers.

Adam must be created with ``capturable=True`` (its step count then lives on
the device; :func:`fusionbench.train.loop.make_optimiser`).  A graph replays
device work only: a loss that draws random numbers from torch's CPU generator
(SwinFusion's flips) or keeps other host-side state would replay one frozen
draw.  Such a loss is detected during the warm-up steps (the CPU generator's
state moved) and the graph is not captured.  Any error while capturing, or
loss terms that are not tensors, also ends in one line on stderr and eager
training for the rest of the call (the generator state is restored; the step
being captured then runs eagerly, so no step is lost or repeated).

The CUDA calls go through a small backend object so that the control flow
(warm-up count, capture, static copies, fall-backs) is tested on the CPU with
a stand-in whose "replay" runs the recorded step eagerly
(``tests/train/test_graph.py``).
"""
from __future__ import annotations

import sys
from typing import Any, Callable

#: eager full-size steps on a side stream before the capture (PyTorch's notes use 3; 11 in DDP)
WARMUP_STEPS = 3


class CudaBackend:
    """The CUDA calls of :class:`CudaGraphStep` (``torch.cuda`` streams and graphs)."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.side = torch.cuda.Stream()

    def on_side_stream(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` run on the side (warm-up) stream, ordered after the current stream's work and before its
        later work; returns what ``fn`` returns."""
        cuda = self.torch.cuda
        self.side.wait_stream(cuda.current_stream())
        with cuda.stream(self.side):
            out = fn()
        cuda.current_stream().wait_stream(self.side)
        return out

    def capture(self, fn: Callable[[], Any]) -> tuple[Any, Any]:
        """Capture ``fn()`` (not run); returns (graph, fn's outputs as static tensors)."""
        cuda = self.torch.cuda
        cuda.synchronize()
        graph = cuda.CUDAGraph()
        # captured on the warm-up stream, whose cuBLAS/cuDNN workspaces the warm-up steps allocated
        with cuda.graph(graph, stream=self.side):
            out = fn()
        return graph, out

    def replay(self, graph: Any) -> None:
        """Replay a captured CUDA graph (on the current stream)."""
        graph.replay()


class CudaGraphStep:
    """Run training steps, full-size ones through one captured CUDA graph (see the module docstring).

    ``body(batch) -> terms`` is one step without ``zero_grad``: forward, loss,
    ``backward()``, ``optimiser.step()``; it returns the loss terms (0-d
    tensors).  ``batch_size`` is the full batch size, counted along
    ``batch_dim`` (1 for the K×B×C×h×w batches of seeds trained together,
    :mod:`fusionbench.train.seeds`); ``__call__(batch, step)``
    runs one step and returns its terms.  :attr:`status` says what happened
    (``"pending"``, ``"captured at step N"``, ``"off from step N: why"``), for
    the provenance; :attr:`replays` counts graph steps.
    """

    def __init__(self, body: Callable[[Any], dict[str, Any]], optimiser: Any, batch_size: int, *,
                 warmup: int = WARMUP_STEPS, backend: Any = None, batch_dim: int = 0) -> None:
        import torch

        self.torch = torch
        self.body, self.optimiser, self.batch_size, self.warmup = body, optimiser, batch_size, warmup
        self.batch_dim = batch_dim
        self.backend = backend if backend is not None else CudaBackend()
        self.graph: Any = None
        self.static_batch: Any = None
        self.static_terms: dict[str, Any] = {}
        self.warm = 0
        self.active = True
        self.status = "pending"
        self.replays = 0

    def _eager(self, batch: Any) -> dict[str, Any]:
        # with a captured graph the gradients must stay in its buffers (zeroed, not dropped)
        self.optimiser.zero_grad(set_to_none=self.graph is None)
        return self.body(batch)

    def _give_up(self, step: int, why: str) -> None:
        self.active = False
        self.status = f"off from step {step}: {why}"
        print(f"train: --cuda-graph off from step {step}: {why}; training eagerly", file=sys.stderr, flush=True)

    def __call__(self, batch: Any, step: int) -> dict[str, Any]:
        """Run training step number ``step`` (1-based, for the status) on ``batch``; return its loss terms."""
        torch = self.torch
        if not self.active or batch.shape[self.batch_dim] != self.batch_size:
            return self._eager(batch)
        if self.graph is not None:
            self.static_batch.copy_(batch)
            self.backend.replay(self.graph)
            self.replays += 1
            return {k: v.clone() for k, v in self.static_terms.items()}
        if self.warm < self.warmup:
            rng = torch.get_rng_state()
            terms = self.backend.on_side_stream(lambda: self._eager(batch))
            self.warm += 1
            if not torch.equal(rng, torch.get_rng_state()):
                self._give_up(step, "the loss draws from torch's CPU generator (a graph would replay one draw)")
            return terms
        return self._capture(batch, step)

    def _capture(self, batch: Any, step: int) -> dict[str, Any]:
        torch = self.torch
        rng = torch.get_rng_state()
        self.static_batch = batch.clone()
        try:
            self.optimiser.zero_grad(set_to_none=True)
            graph, terms = self.backend.capture(lambda: self.body(self.static_batch))
            loose = sorted(k for k, v in terms.items() if not isinstance(v, torch.Tensor))
            if loose:
                raise RuntimeError(f"loss terms {loose} are not tensors")
            if not torch.equal(rng, torch.get_rng_state()):
                raise RuntimeError("the loss drew from torch's CPU generator while captured")
        except Exception as exc:  # noqa: BLE001 - any capture failure means: train eagerly
            torch.set_rng_state(rng)
            self.static_batch, self.graph = None, None
            self.optimiser.zero_grad(set_to_none=True)
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            self._give_up(step, f"capture failed ({type(exc).__name__}: {first})")
            return self._eager(batch)
        self.graph, self.static_terms = graph, terms
        self.status = f"captured at step {step}"
        self.backend.replay(self.graph)  # the capture ran nothing: this replay is the step
        self.replays += 1
        return {k: v.clone() for k, v in self.static_terms.items()}
