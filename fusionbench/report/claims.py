"""The founding paper's claims beside what the run measured, each with a verdict.

Claims (Di et al., JMSI 2025; transcribed in :mod:`fusionbench.report.paper`):

* the per-metric winner of each column of Tables 1–3 (one case each) — compared
  with the winner of our means over the same task's pairs, among the paper's ten
  methods;
* "the seven objective evaluation indicators of our method have improved by
  6 %–31 %" (abstract) and the per-metric averages of the conclusion (AG 18.78 %,
  EN 29.46 %, SF 19.08 %, MI 8.65 %, CC 17.91 %, SD 6.55 %, SCD 30.76 % "compared
  with nine classical methods") — compared with the mean over the nine of
  ``(ours − theirs) / |theirs|`` of the dataset means (MRI-PET and MRI-SPECT pairs
  pooled);
* Table 4 / Fig. 10: the full model has the best value of all seven metrics among
  the five networks;
* Table 5 and §2.4: SDNet has the smallest computation and running time; "the
  method in this study performs best in terms of average running time"; 2.5314
  GFLOPs (compared in the paper's convention, GMAC × 1.318, calibrated on its SDNet and MATR rows:
  ``fusionbench.profile.gflops_conventions``); "the number of parameters used in the testing phase is
  only 0.5×10^7".

Verdicts: ``holds``, ``partly holds: …``, ``does not hold``, or
``not comparable: why``.  The training state of the weights used comes from
``methods/mopa/weights`` (a ``*.json`` provenance file if present, else its README).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .data import higher_is_better
from fusionbench.profile import PAPER_FLOPS_PER_MAC

from .paper import PAPER_COLUMNS, PAPER_METHODS, PAPER_PARAMS_OURS, PAPER_TABLE5, PAPER_TABLES, paper_convention_gflops

CLAIMED_GAIN = {"AG": 18.78, "EN": 29.46, "SF": 19.08, "MI": 8.65, "CC": 17.91, "SD": 6.55, "SCD": 30.76}
ABLATION_SET = ("mopa.mask_only", "mopa.attention_only", "mopa.contrast_only", "mopa.decouple_only", "mopa")
_SWAPPED = {("table2", "SD"), ("table2", "SCD")}
#: relative difference within which our GFLOPs (in the paper's convention) count as matching the paper's Table 5
#: figure: a claim about the size of the computation, not its last digit (the convention factor alone spans
#: 1.313-1.323 over the two rows it is calibrated on)
GFLOPS_TOLERANCE = 0.10


def _label(method: str) -> str:
    back = {v: k for k, v in PAPER_METHODS.items()}
    return back.get(method, method)


def _means(scores: pd.DataFrame, datasets: list[str], methods: list[str]) -> pd.DataFrame:
    df = scores[scores["dataset"].isin(datasets) & scores["method"].isin(methods)]
    return df.groupby(["method", "metric"])["value"].mean().unstack("metric")


def _present(scores: pd.DataFrame, dataset: str) -> list[str]:
    """The paper's ten methods as run on ``dataset`` (task presets stand in: swinfusion.ct on MRI-CT)."""
    have = set(scores.loc[scores["dataset"] == dataset, "method"])
    return [m for m in PAPER_METHODS.values() if m in have]


def table_winner_claims(scores: pd.DataFrame) -> list[dict]:
    """Tables 1-3: per dataset and metric, whether the paper's winner (one case) is best in our means over the
    task's pairs; rows ``{claim, paper, measured, verdict}`` (Table 2's swapped SD and SCD columns not compared)."""
    rows = []
    for key, (title, dataset, values) in PAPER_TABLES.items():
        short = title.split(":")[0]
        methods = _present(scores, dataset)
        means = _means(scores, [dataset], methods)
        n = int(scores.loc[scores["dataset"] == dataset, "pair"].nunique())
        for j, metric in enumerate(PAPER_COLUMNS):
            col = {label: v[j] for label, v in values.items()}
            winner = max(col, key=col.get) if higher_is_better(metric) else min(col, key=col.get)
            claim = f"{short}: {winner} is best on {metric}"
            if (key, metric) in _SWAPPED:
                rows.append({"claim": claim, "paper": f"{col[winner]:.4f}", "measured": "",
                             "verdict": "not comparable: the SD and SCD columns of Table 2 appear swapped"})
                continue
            if means.empty or metric not in means.columns or len(methods) < 2:
                rows.append({"claim": claim, "paper": f"{col[winner]:.4f}", "measured": "",
                             "verdict": f"not comparable: {dataset} with {metric} not in this run"})
                continue
            ours = means[metric].dropna().sort_values(ascending=not higher_is_better(metric))
            rank = list(ours.index).index(PAPER_METHODS[winner]) + 1 if PAPER_METHODS[winner] in ours.index else None
            measured = (f"best: {_label(ours.index[0])} ({ours.iloc[0]:.4f}); {winner} ranks "
                        f"{rank if rank else '–'} of {len(ours)} (mean over {n} {dataset} pairs; the paper: one case)")
            rows.append({"claim": claim, "paper": f"{col[winner]:.4f}", "measured": measured,
                         "verdict": "holds" if rank == 1 else "does not hold"})
    return rows


def gain_claims(scores: pd.DataFrame) -> list[dict]:
    """The abstract's 6-31 % and the conclusion's per-metric gains against our mean over the nine methods of
    ``(ours − theirs) / |theirs|`` (dataset means, sign by direction, MRI-PET and MRI-SPECT pooled); rows as above."""
    datasets = ["harvard-mri-pet", "harvard-mri-spect"]
    methods = [m for m in PAPER_METHODS.values()
               if m in set(scores.loc[scores["dataset"].isin(datasets), "method"])]
    rows = []
    if "mopa" not in methods or len(methods) < 2:
        return [{"claim": "improves the seven metrics by 6-31 % over the nine methods", "paper": "6-31 %",
                 "measured": "", "verdict": "not comparable: mopa or the nine methods not run on MRI-PET/MRI-SPECT"}]
    means = _means(scores, datasets, methods)
    gains = {}
    for metric, claimed in CLAIMED_GAIN.items():
        if metric not in means.columns:
            continue
        ours = means.loc["mopa", metric]
        others = means[metric].drop("mopa").dropna()
        sign = 1 if higher_is_better(metric) else -1
        gain = float(np.mean(sign * (ours - others) / np.abs(others)) * 100)
        gains[metric] = gain
        verdict = "holds" if gain >= claimed else ("partly holds: improves, by less" if gain > 0 else "does not hold")
        rows.append({"claim": f"average improvement of {metric} over the nine methods", "paper": f"{claimed:.2f} %",
                     "measured": f"{gain:+.2f} % (over {len(others)} methods, MRI-PET + MRI-SPECT pairs pooled)",
                     "verdict": verdict})
    if gains:
        low, high = min(gains.values()), max(gains.values())
        ok = all(g >= 6 for g in gains.values())
        rows.insert(0, {"claim": "the seven metrics improve by 6-31 % (abstract)", "paper": "6-31 %",
                        "measured": f"{low:+.1f} % to {high:+.1f} %",
                        "verdict": "holds" if ok else "does not hold"})
    return rows


def ablation_claims(ablation_means: pd.DataFrame | None) -> list[dict]:
    """Table 4 / Fig. 10: whether the full ``mopa`` is best on each of the seven metrics among the five
    :data:`ABLATION_SET` presets (``ablation_means``: preset × metric means)."""
    claim = "Table 4 / Fig. 10: the full model is best on all seven metrics among the five networks"
    if ablation_means is None or ablation_means.empty or not set(ABLATION_SET) <= set(ablation_means.index):
        return [{"claim": claim, "paper": "full model best on 7/7", "measured": "",
                 "verdict": "not comparable: the four single-component presets and mopa are not all in this run"}]
    sub = ablation_means.loc[list(ABLATION_SET)]
    best = []
    for metric in [m for m in PAPER_COLUMNS if m in sub.columns]:
        col = sub[metric].dropna()
        top = col.idxmax() if higher_is_better(metric) else col.idxmin()
        best.append((metric, top))
    wins = [m for m, top in best if top == "mopa"]
    lost = ", ".join(f"{m}: {top}" for m, top in best if top != "mopa")
    return [{"claim": claim, "paper": "full model best on 7/7",
             "measured": f"full model best on {len(wins)}/{len(best)}" + (f" (best elsewhere: {lost})" if lost else ""),
             "verdict": "holds" if len(wins) == len(best) else "does not hold"}]


def cost_claims(costs: pd.DataFrame | None, time_label: str) -> list[dict]:
    """Table 5 and §2.4: running-time ranks of ``mopa`` and SDNet, our GFLOPs in the paper's convention (within
    :data:`GFLOPS_TOLERANCE`), lowest GFLOPs and the parameter count; rows ``{claim, paper, measured, verdict}``."""
    rows = []
    if costs is None or costs.empty:
        return [{"claim": "Table 5 (time, GFLOPs, parameters)", "paper": "", "measured": "",
                 "verdict": "not comparable: no Table 5 in this report"}]
    by = costs.set_index("method")
    times = pd.to_numeric(by["Time/s per pair"], errors="coerce").dropna()
    times = times[times.index.isin(PAPER_METHODS.values())].sort_values()
    if "mopa" in times.index and len(times) > 1:
        rank = list(times.index).index("mopa") + 1
        rows.append({"claim": "Ours has the best (shortest) average running time (section 2.4)",
                     "paper": f"{PAPER_TABLE5['Ours'][0]} s (Table 5 itself shows SDNet faster: "
                              f"{PAPER_TABLE5['SDNet'][0]} s)",
                     "measured": f"{times['mopa']:.3f} s per pair, rank {rank} of {len(times)}, fastest "
                                 f"{_label(times.index[0])} ({times.iloc[0]:.3f} s); {time_label}",
                     "verdict": "holds" if rank == 1 else "does not hold"})
        if "sdnet" in times.index:
            r = list(times.index).index("sdnet") + 1
            rows.append({"claim": "SDNet has the shortest running time of the compared methods (section 2.4)",
                         "paper": f"{PAPER_TABLE5['SDNet'][0]} s", "measured": f"rank {r} of {len(times)}",
                         "verdict": "holds" if r == 1 else "does not hold"})
    gf = pd.to_numeric(by["GFLOPs"], errors="coerce").dropna()
    gf = gf[gf.index.isin(PAPER_METHODS.values())]
    if "mopa" in gf.index:
        claimed = PAPER_TABLE5["Ours"][1]
        ours = paper_convention_gflops(float(gf["mopa"]))
        off = (ours - claimed) / claimed
        rows.append({"claim": "Ours needs 2.5314 GFLOPs per pair (Table 5)", "paper": f"{claimed}",
                     "measured": f"{ours:.4f} GFLOPs in the paper's convention ({PAPER_FLOPS_PER_MAC} FLOPs per "
                                 f"multiply-accumulate, calibrated on its SDNet and MATR rows; {gf['mopa']:.4f} with "
                                 f"FLOPs = 2 x MAC) at 256x256, {off:+.1%} from the paper",
                     "verdict": "holds" if abs(off) <= GFLOPS_TOLERANCE else
                                f"does not hold: more than {GFLOPS_TOLERANCE:.0%} from the paper's figure"})
    if "sdnet" in gf.index and len(gf) > 1:
        lowest = gf.idxmin()
        rows.append({"claim": "SDNet has the smallest computation (Table 5)", "paper": f"{PAPER_TABLE5['SDNet'][1]}",
                     "measured": f"lowest GFLOPs among the {len(gf)} torch methods: {_label(lowest)} "
                                 f"({gf.min():.4f}); SDNet {gf['sdnet']:.4f}",
                     "verdict": "holds" if lowest == "sdnet" else "does not hold"})
    params = pd.to_numeric(by["Params (M)"], errors="coerce")
    if "mopa" in params.index and np.isfinite(params["mopa"]):
        measured = params["mopa"] * 1e6
        ratio = PAPER_PARAMS_OURS / measured if measured else np.inf
        rows.append({"claim": "Ours has 0.5 x 10^7 parameters at test time (section 2.4)", "paper": "5,000,000",
                     "measured": f"{measured:,.0f} (the implemented network as the paper describes it; "
                                 f"the paper's figure is {ratio:,.0f}x larger)",
                     "verdict": "holds" if 0.5 <= ratio <= 2 else "does not hold"})
    return rows


def training_state(weights_dir: Path | None = None) -> str:
    """One paragraph on how the committed ``mopa`` weights were trained (provenance JSON or README)."""
    if weights_dir is None:
        import inspect

        from fusionbench.method_registry import METHODS

        try:
            weights_dir = Path(inspect.getfile(METHODS.get("mopa").obj)).parent / "weights"
        except (KeyError, TypeError, AttributeError):
            weights_dir = Path("methods/mopa/weights")
    jsons = sorted(weights_dir.glob("*.json")) if weights_dir.is_dir() else []
    for path in jsons:
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("preset", path.stem) in ("mopa", "mopa.json") or path.stem == "mopa":
            keys = ("schedule", "epochs", "steps", "patch_size", "stride", "batch_size", "lr", "pairs", "note")
            return "; ".join(f"{k}: {doc[k]}" for k in keys if k in doc) + f" ({path.name})"
    readme = weights_dir / "README.md"
    if readme.is_file():
        text = readme.read_text()
        paragraphs = [p.strip().replace("\n", " ") for p in text.split("\n\n")]
        picked = [p[p.index("Schedule:"):] for p in paragraphs if "Schedule:" in p]
        for p in paragraphs:
            if not p.startswith("#"):
                picked += [s.strip() for s in p.split(". ") if "*reduced*" in s]
        if picked:
            text = " ".join(x.rstrip(".") + "." for x in picked).replace("*", "")
            return f"{text} (from methods/mopa/weights/{readme.name})"
    return "unknown: no provenance file or README beside the weights"


def claims_table(scores: pd.DataFrame, ablation_means: pd.DataFrame | None, costs: pd.DataFrame | None,
                 time_label: str) -> pd.DataFrame:
    """Every claim with the paper's figure, our measurement and a verdict."""
    rows = table_winner_claims(scores) + gain_claims(scores) + ablation_claims(ablation_means) \
        + cost_claims(costs, time_label)
    return pd.DataFrame(rows, columns=["claim", "paper", "measured", "verdict"])
