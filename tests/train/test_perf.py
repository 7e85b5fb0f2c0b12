"""The loop's performance options (--channels-last, --cudnn-benchmark, --cuda-graph) and the probe, on the CPU."""
from __future__ import annotations

import argparse
import json
import math

import pytest
import torch

from fusionbench.train import TrainConfig, cli, probe
from fusionbench.train.checkpoint import to_cpu
from fusionbench.train.loop import load_optimiser_state, make_optimiser

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ("--epochs", "1", "--patch-size", "32", "--stride", "64", "--batch-size", "4", "--no-progress")


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


def _ckpt(path):
    return torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=False)


def test_perf_options_are_resumable_config_fields():
    assert set(TrainConfig.PERF_OPTIONS) <= set(TrainConfig.RESUMABLE_CHANGES)
    assert not any(getattr(TrainConfig(), k) for k in TrainConfig.PERF_OPTIONS)
    assert "precision" not in TrainConfig.RESUMABLE_CHANGES and "batch_size" not in TrainConfig.RESUMABLE_CHANGES


def test_channels_last_trains_mopa_like_the_default(small_pack, tmp_path):
    """The paper network in channels-last memory: the same losses and weights to float tolerance; flags recorded."""
    common = ("mopa", "--pack", str(small_pack), *TINY)  # one epoch of 8 steps
    assert _run_cli(*common, "--out", str(tmp_path / "default")) == 0
    assert _run_cli(*common, "--out", str(tmp_path / "cl"), "--channels-last") == 0
    a, b = _ckpt(tmp_path / "default"), _ckpt(tmp_path / "cl")
    la, lb = [r["loss_total"] for r in a["rows"]], [r["loss_total"] for r in b["rows"]]
    assert len(la) == len(lb) > 0 and la[-1] == pytest.approx(lb[-1], rel=1e-4)
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-6)
        assert b["model"][k].is_contiguous()  # checkpoints hold plain contiguous tensors either way
    assert b["config"]["channels_last"] is True and a["config"]["channels_last"] is False
    prov = json.loads((tmp_path / "cl" / "provenance.json").read_text())
    assert prov["call"]["perf"] == {"channels_last": True, "cudnn_benchmark": False, "cuda_graph": False,
                                    "cuda_graph_status": "off", "cuda_graph_steps": 0}
    assert json.loads((tmp_path / "cl" / "config.json").read_text())["config"]["channels_last"] is True


def test_resume_may_change_perf_options_but_not_the_schedule(small_pack, tmp_path, capsys):
    common = ("mopa", "--pack", str(small_pack), *TINY, "--out", str(tmp_path / "r"))
    assert _run_cli(*common, "--stop-after-steps", "2", "--channels-last", "--cudnn-benchmark") == 0
    assert _run_cli(*common, "--stop-after-steps", "4", "--resume", "--cuda-graph") == 0  # a no-op on the CPU
    prov = json.loads((tmp_path / "r" / "provenance.json").read_text())
    assert prov["steps_done"] == 4 and prov["call"]["steps"] == 2
    assert prov["call"]["perf"]["cuda_graph"] is True and prov["call"]["perf"]["channels_last"] is False
    assert prov["call"]["perf"]["cuda_graph_status"].startswith("not used: CUDA graphs need a CUDA device")
    assert "train: --cuda-graph not used" in capsys.readouterr().err
    with pytest.raises(ValueError, match="schedule differs.*batch_size"):
        _run_cli(*common, "--stop-after-steps", "6", "--resume", "--batch-size", "2", "--channels-last")
    with pytest.raises(ValueError, match="schedule differs.*precision"):
        _run_cli(*common, "--stop-after-steps", "6", "--resume", "--precision", "tf32")


def test_optimiser_state_moves_between_plain_and_capturable_adam(small_pack, tmp_path):
    """The loading path of a checkpoint written without the graph into a graph's (capturable) Adam and back."""
    from fusionbench.methods.mopa import build_model, preset_params

    common = ("mopa", "--pack", str(small_pack), *TINY)
    assert _run_cli(*common, "--out", str(tmp_path / "full"), "--stop-after-steps", "6") == 0
    assert _run_cli(*common, "--out", str(tmp_path / "half"), "--stop-after-steps", "3") == 0
    saved = _ckpt(tmp_path / "half")["optimiser"]
    model = build_model(preset_params("mopa"))
    graph_adam = make_optimiser(model, 1e-4, capturable=True)
    load_optimiser_state(graph_adam, saved)  # plain checkpoint -> capturable Adam: stays capturable
    assert all(g["capturable"] for g in graph_adam.param_groups)
    steps = [st["step"] for st in graph_adam.state.values()]
    assert steps and all(s.dtype == torch.float32 and s.device == next(model.parameters()).device and float(s) == 3
                         for s in steps)
    again = to_cpu(graph_adam.state_dict())  # what a --cuda-graph call checkpoints
    assert again["param_groups"][0]["capturable"] is True
    for p, st in saved["state"].items():
        for k, v in st.items():
            assert torch.equal(again["state"][p][k], v), (p, k)
    plain = make_optimiser(model, 1e-4)
    load_optimiser_state(plain, again)  # capturable checkpoint -> plain Adam: stays plain, can step on the CPU
    assert not any(g["capturable"] for g in plain.param_groups)
    # and the run continues from such a checkpoint exactly as from its own
    ck = _ckpt(tmp_path / "half")
    ck["optimiser"] = again
    torch.save(ck, tmp_path / "half" / "checkpoint.pt")
    assert _run_cli(*common, "--out", str(tmp_path / "half"), "--stop-after-steps", "6", "--resume") == 0
    a, b = _ckpt(tmp_path / "full"), _ckpt(tmp_path / "half")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_perf_flags_parse():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["mopa", "--channels-last", "--cudnn-benchmark", "--cuda-graph"])
    _, _, _, config = cli.resolve(args)
    assert config.channels_last and config.cudnn_benchmark and config.cuda_graph
    _, _, _, default = cli.resolve(parser.parse_args(["mopa"]))
    assert not (default.channels_last or default.cudnn_benchmark or default.cuda_graph)


# --------------------------------------------------------------------------- the probe
def test_probe_variants_and_flags():
    assert probe.parse_variant("plain") == {"channels_last": False, "cudnn_benchmark": False, "cuda_graph": False}
    assert probe.variant_flags("graph+channels_last") == "--channels-last --cuda-graph"
    assert probe.variant_flags("plain") == ""
    for v in probe.DEFAULT_VARIANTS.split(","):
        probe.parse_variant(v)
    with pytest.raises(ValueError, match="unknown probe option"):
        probe.parse_variant("graph+fast")
    assert probe.variant_seeds("graph+seeds3") == 3 and probe.variant_seeds("graph") == 1
    assert probe.parse_variant("graph+seeds3")["cuda_graph"] and probe.variant_flags("seeds3") == ""
    with pytest.raises(ValueError, match="bad seeds word"):
        probe.parse_variant("seedsx")


def _rec(variant, rate, loss, ok=True, graph_steps=0):
    return {"variant": variant, "flags": probe.variant_flags(variant), "ok": ok, "steps_per_s": rate,
            "final_loss": loss, "rel_loss_diff": math.nan, "perf": {"cuda_graph_steps": graph_steps}, "error": ""}


def test_probe_chooses_the_fastest_acceptable_variant():
    records = [_rec("plain", 26.0, 1.00), _rec("channels_last", 30.0, 1.01),
               _rec("graph", 90.0, 1.00, graph_steps=0),                 # fell back to eager: not chosen
               _rec("graph+channels_last", 80.0, 1.30, graph_steps=50),  # loss drifted 30 %: not chosen
               _rec("benchmark", math.nan, math.nan, ok=False),          # failed
               _rec("graph+benchmark", 60.0, 1.02, graph_steps=50)]
    best = probe.choose(records, tolerance=0.05)
    assert best["variant"] == "graph+benchmark"
    assert [r["acceptable"] for r in records] == [True, True, False, False, False, True]
    assert records[3]["rel_loss_diff"] == pytest.approx(0.30)
    assert probe.choose([_rec("plain", 1.0, 1.0, ok=False)]) is None
    # seeds trained together are measured, acceptable, but never the flags of a single run
    records = [_rec("plain", 26.0, 1.00), _rec("seeds3", 40.0, 1.00)]
    assert probe.choose(records)["variant"] == "plain" and records[1]["acceptable"]


def test_a_probe_that_timed_no_step_chooses_nothing_and_still_writes_its_table(tmp_path):
    """A schedule shorter than the probe's untimed warm-up (a CPU rehearsal) gives rates of 0: before, plain was
    'acceptable' at 0 steps/s and writing the results divided 0 by 0, so no table and no flags were written."""
    records = [_rec("plain", 0.0, 1.00), _rec("channels_last", 0.0, 1.00)]
    best = probe.choose(records)
    assert best is None and not any(r["acceptable"] for r in records)
    probe.write_results(records, best, {"device": "cpu"}, tmp_path / "probe.json")
    assert (tmp_path / "probe.csv").read_text().count("\n") == 3
    assert json.loads((tmp_path / "probe.json").read_text())["best"] is None


def test_probe_runs_variants_in_one_process(small_pack, tmp_path, capsys):
    out = tmp_path / "p" / "probe.json"
    rc = probe.main(["mopa", "--pack", str(small_pack), "--patch-size", "32", "--stride", "32", "--max-patches", "80",
                     "--batch-size", "4", "--steps", "8", "--variants", "plain,channels_last,graph,seeds2", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    recs = {r["variant"]: r for r in res["variants"]}
    assert set(recs) == {"plain", "channels_last", "graph", "seeds2"} and res["steps"] == 8 and res["precision"] == "fp32"
    seeds2 = recs["seeds2"]  # two seeds in one process: seed 0's loss is plain's to float round-off
    assert seeds2["ok"] and seeds2["models"] == 2 and seeds2["model_steps_per_s"] == 2 * seeds2["steps_per_s"]
    assert seeds2["acceptable"] and seeds2["rel_loss_diff"] < 1e-4
    assert recs["plain"]["ok"] and recs["plain"]["steps"] == 8 and recs["plain"]["steps_per_s"] > 0
    assert recs["channels_last"]["acceptable"] and recs["channels_last"]["rel_loss_diff"] < 1e-4
    assert not recs["graph"]["acceptable"]  # on the CPU the graph is not used, so it is never chosen
    assert recs["plain"]["host_syncs"] is None  # counted on CUDA only
    assert res["best"]["variant"] in ("plain", "channels_last")
    assert out.with_suffix(".flags").read_text().strip() == res["best"]["flags"]
    assert out.with_suffix(".csv").read_text().startswith("variant,flags,ok,acceptable,steps,steps_per_s,models,")
    assert not list(tmp_path.glob("**/checkpoint.pt"))  # throwaway runs only
    err = capsys.readouterr().err
    assert "probe best:" in err


def test_probe_budget_skips_the_rest(small_pack, tmp_path):
    out = tmp_path / "probe.json"
    assert probe.main(["mopa", "--pack", str(small_pack), "--patch-size", "32", "--stride", "32", "--max-patches",
                       "40", "--batch-size", "4", "--steps", "4", "--variants", "plain,channels_last",
                       "--max-seconds", "0", "--out", str(out)]) == 1
    recs = json.loads(out.read_text())["variants"]
    assert all(r["error"].startswith("skipped: 0 s budget") for r in recs)
    assert out.with_suffix(".flags").read_text() == "\n"


def test_batch_tensor_from_numpy_rows_or_device_rows_equals_the_numpy_batch():
    """The loop hands batch_tensor an epoch order already on the device; the values are the numpy gather's."""
    import numpy as np

    from fusionbench.train.patches import PatchSet

    images = np.random.default_rng(0).random((3, 4, 40, 40), dtype=np.float32)
    ps = PatchSet(images, 16, 8).to("cpu")
    rows = np.array([0, 7, 30, 47, 5])
    want = ps.batch(rows)
    assert np.array_equal(ps.batch_tensor(rows).numpy(), want)
    order = torch.from_numpy(np.array([9, 0, 7, 30, 47, 5], dtype=np.int64))
    assert np.array_equal(ps.batch_tensor(order[1:]).numpy(), want)
    cl = ps.batch_tensor(order[1:]).contiguous(memory_format=torch.channels_last)
    assert np.array_equal(cl.numpy(), want) and cl.is_contiguous(memory_format=torch.channels_last)


def test_sync_watch_counts_torchs_synchronisation_warnings(monkeypatch):
    """The probe's host_syncs: warnings torch raises in sync-debug mode inside the steps (CUDA; here a stand-in)."""
    import warnings

    from fusionbench.train.loop import _SyncWatch

    modes = []
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    watch = _SyncWatch(True)
    for n in (0, 2, 1):
        with watch:
            for _ in range(n):
                warnings.warn("called a synchronizing CUDA operation")
            warnings.warn("something else")
    assert watch.count == 3 and modes == ["warn", "default"] * 3
    off = _SyncWatch(False)
    with off, pytest.warns(UserWarning, match="synchronizing"):  # not collected: it reaches the caller
        warnings.warn("called a synchronizing CUDA operation")
    assert off.count == 0
