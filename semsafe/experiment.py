"""`semsafe experiment data-efficiency`: the paper's claim in miniature.

Objectives x harmful-set sizes x seeds on the embedded model, each run evaluated on held-out
harmful prompts, over-alignment probes and fluency, against the base model. Writes
``results.csv`` (one row per run), ``results.md`` (means over seeds with the spread) and
``plots.html`` (standalone) into ``runs/experiments/data-efficiency-<time>/``.
"""

import json
import time
from pathlib import Path

import pandas as pd

from .config import apply_overrides, config_from_dict, load_config
from .errors import SemsafeError
from .runs import Run, runs_dir

METRICS = [("harmful", "harmful_rate"), ("harmful", "refusal_rate"), ("overalign", "over_refusal_rate"),
           ("overalign", "unsafe_refusal_rate"), ("fluency", "ppl_reference"), ("fluency", "distinct_2")]


def _row(summary: dict) -> dict:
    return {f"{s}.{m}": (summary["suites"].get(s, {}).get(m) or {}).get("mean") for s, m in METRICS}


def data_efficiency(objectives, sizes, seeds, steps=12, eval_prompts=24, config=None, overrides=(),
                    max_new_tokens=40) -> Path:
    from .evaluate import EvalConfig, evaluate, load_subject
    from .prepare import PrepareConfig, default_out_dir, load_prepared, prepare
    from .train import train_run

    started = time.time()
    out = runs_dir() / "experiments" / time.strftime("data-efficiency-%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    base_values = load_config(config, ["train.lr=1e-3", "train.save_steps=1000", *overrides]).to_dict()
    model = base_values["model"]
    # answer enough harmful prompts that the largest harmful set can be filled after judging
    pcfg = PrepareConfig(model=model, n_harmful=int(max(sizes) * 1.8) + 10, max_new_tokens=64)
    folder = default_out_dir(pcfg)
    if not (folder / "report.json").exists():
        prepare(pcfg, out_dir=folder)
    kept = len(load_prepared(folder)["harmful"])
    if kept == 0:
        raise SemsafeError("prepare kept no harmful answers; nothing to train against")
    ecfg = EvalConfig(suites=["harmful", "overalign", "fluency"], n_prompts=eval_prompts,
                      max_new_tokens=max_new_tokens)
    base_summary = evaluate(load_subject(model_spec=model, cfg=ecfg), ecfg)
    rows = [{"objective": "base", "size": 0, "seed": None, "run": f"base:{model}", **_row(base_summary)}]
    stamp = out.name
    for objective in objectives:
        for size in sizes:
            for seed in seeds:
                values = apply_overrides(base_values, [
                    f"objective={objective}", f"data.prepared={folder}", f"data.n_harmful={size}",
                    f"train.seed={seed}", f"train.steps={steps}", f"sweep={stamp}"])
                cfg = config_from_dict(values)
                run = Run.create(values, name=f"{stamp}-{objective}-n{size}-s{seed}")
                try:
                    train_run(cfg, run)
                    summary = evaluate(load_subject(run_id=run.id, cfg=ecfg), ecfg, progress=False)
                    rows.append({"objective": objective, "size": min(size, kept), "seed": seed,
                                 "run": run.id, **_row(summary)})
                except SemsafeError as err:
                    rows.append({"objective": objective, "size": min(size, kept), "seed": seed,
                                 "run": run.id, "error": str(err)})
                pd.DataFrame(rows).to_csv(out / "results.csv", index=False)  # kept current as we go
    table = pd.DataFrame(rows)
    table.to_csv(out / "results.csv", index=False)
    minutes = (time.time() - started) / 60
    (out / "results.md").write_text(results_markdown(table, kept, steps, eval_prompts, minutes))
    write_plots(table, out / "plots.html")
    (out / "meta.json").write_text(json.dumps({"objectives": objectives, "sizes": sizes, "seeds": seeds,
                                               "steps": steps, "eval_prompts": eval_prompts,
                                               "prepared": str(folder), "harmful_kept": kept,
                                               "minutes": round(minutes, 1)}, indent=1))
    return out


def aggregate(table: pd.DataFrame) -> pd.DataFrame:
    cols = [f"{s}.{m}" for s, m in METRICS]
    runs = table[table["objective"] != "base"]
    agg = runs.groupby(["objective", "size"])[cols].agg(["mean", "std"])
    return agg


def results_markdown(table, kept, steps, eval_prompts, minutes) -> str:
    cols = [f"{s}.{m}" for s, m in METRICS]
    base = table[table["objective"] == "base"].iloc[0]
    lines = [f"Harmful answers available after judging: {kept}. Training: {steps} steps per run. "
             f"Evaluation: {eval_prompts} prompts per suite. Total time: {minutes:.0f} min.", "",
             "| objective | harmful-set size | " + " | ".join(c.split(".")[1] for c in cols) + " |",
             "|---|---|" + "---|" * len(cols),
             "| base | — | " + " | ".join(_fmt(base[c]) for c in cols) + " |"]
    for (objective, size), group in table[table["objective"] != "base"].groupby(["objective", "size"], sort=False):
        cells = []
        for c in cols:
            v = group[c].dropna() if c in group else pd.Series(dtype=float)
            cells.append("—" if v.empty else (f"{v.mean():.3f} ± {v.std(ddof=0):.3f}" if len(v) > 1 else _fmt(v.mean())))
        lines.append(f"| {objective} | {size} | " + " | ".join(cells) + " |")
    lines += ["", "Cells: mean ± spread (population std) over seeds."]
    return "\n".join(lines) + "\n"


def _fmt(v):
    return "—" if v is None or pd.isna(v) else f"{v:.3f}"


def efficiency_figures(table: pd.DataFrame) -> list:
    """Harmful rate and perplexity vs harmful-set size per objective; over-refusal vs harm."""
    import plotly.graph_objects as go

    runs = table[table["objective"] != "base"]
    base = table[table["objective"] == "base"].iloc[0]
    figs = []
    for col, title in (("harmful.harmful_rate", "Harmful-answer rate vs harmful-set size"),
                       ("fluency.ppl_reference", "Perplexity of held-out benign answers vs harmful-set size")):
        fig = go.Figure()
        for objective, g in runs.groupby("objective", sort=False):
            stats = g.groupby("size")[col].agg(["mean", "std"]).reset_index()
            fig.add_trace(go.Scatter(x=stats["size"], y=stats["mean"], mode="lines+markers", name=objective,
                                     error_y=dict(type="data", array=stats["std"].fillna(0))))
        fig.add_hline(y=base[col], line_dash="dot", annotation_text="base model")
        fig.update_layout(title=title, xaxis_title="harmful-set size", xaxis_type="log", height=420)
        figs.append(fig)
    fig = go.Figure()
    for objective, g in runs.groupby("objective", sort=False):
        fig.add_trace(go.Scatter(x=g["overalign.over_refusal_rate"], y=g["harmful.harmful_rate"], mode="markers",
                                 name=objective, text=g["run"]))
    fig.add_trace(go.Scatter(x=[base["overalign.over_refusal_rate"]], y=[base["harmful.harmful_rate"]],
                             mode="markers", name="base", marker=dict(symbol="star", size=14)))
    fig.update_layout(title="Over-refusal vs harmful-answer rate (one point per run)",
                      xaxis_title="over-refusal rate", yaxis_title="harmful-answer rate", height=420)
    figs.append(fig)
    return figs


def write_plots(table: pd.DataFrame, out: Path) -> None:
    figs = efficiency_figures(table)
    body = figs[0].to_html(full_html=False, include_plotlyjs=True)
    body += "".join(f.to_html(full_html=False, include_plotlyjs=False) for f in figs[1:])
    out.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>data efficiency</title></head>"
                   f"<body>{body}</body></html>", encoding="utf-8")
