"""`semsafe experiment data-efficiency`: the paper's claim in miniature.

Objectives x harmful-set sizes x seeds on the embedded model, each at equal strength (λ
calibrated to one ratio of gradient norms, ``lambda_mode: ratio``), each run evaluated on the
held-out side of the one data split the experiment uses, against the base model evaluated with
the same settings. Writes into ``runs/experiments/data-efficiency-<time>/``:
``results.csv`` (one row per run, with paired deltas against the base), ``results.md`` (means
over seeds with t intervals, and which deltas are effects) and ``plots.html``.
``resume=FOLDER`` continues an interrupted experiment: finished runs are not trained again.
"""

import json
import time
from pathlib import Path

import pandas as pd

from .config import apply_overrides, config_from_dict, load_config
from .errors import SemsafeError
from .runs import Run, runs_dir
from .store import atomic_write_json, atomic_write_text

# (suite, metric, short name, direction in which it is better)
METRICS = [("harmful", "harmful_rate", "harmful", "lower"),
           ("harmful", "refusal_rate", "refusal", "higher"),
           ("overalign", "over_refusal_rate", "over-refusal", "lower"),
           ("overalign", "unsafe_refusal_rate", "unsafe refused", "higher"),
           ("fluency", "ppl_generated_under_base", "ppl (base, generated)", "lower"),
           ("fluency", "distinct_2", "distinct-2", "higher"),
           ("capability", "accuracy", "capability", "higher"),
           ("fluency", "ppl_reference", "ppl (reference, secondary)", "lower")]
DELTA_METRICS = [m for m in METRICS if m[1] not in ("distinct_2",)]  # distinct-2 is pooled: no pairs
EXPERIMENT_OVERRIDES = ["train.lr=1e-3", "train.save_steps=1000"]
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tasft-emd.yaml"  # λ mode ratio 1.0


def plan(objectives, sizes, seeds, steps, config=None, overrides=()) -> tuple[dict, object, list]:
    """``(base config values, PrepareConfig, [(run name, config values)])``: every run the
    experiment trains, before anything runs (also what the leak test checks)."""
    from .prepare import PrepareConfig

    base_values = load_config(config or str(SHIPPED_CONFIG), [*EXPERIMENT_OVERRIDES, *overrides]).to_dict()
    split_seed = base_values["data"]["split_seed"]
    # answer enough harmful prompts that the largest harmful set can be filled after judging
    pcfg = PrepareConfig(model=base_values["model"], n_harmful=int(max(sizes) * 1.8) + 10,
                         max_new_tokens=base_values["data"]["prepare_max_new_tokens"], seed=split_seed)
    runs = []
    for objective in objectives:
        for size in sizes:
            for seed in seeds:
                values = apply_overrides(base_values, [
                    f"objective={objective}", f"data.n_harmful={size}", f"train.seed={seed}",
                    f"train.steps={steps}"])
                config_from_dict(values)  # every planned config is valid before anything runs
                runs.append((f"{objective}-n{size}-s{seed}", values))
    return base_values, pcfg, runs


def eval_config(eval_prompts: int, max_new_tokens: int, split_seed: int):
    from .evaluate import EvalConfig

    return EvalConfig(suites=["harmful", "overalign", "fluency", "capability"], n_prompts=eval_prompts,
                      max_new_tokens=max_new_tokens, held_out_seed=split_seed)


def data_efficiency(objectives, sizes, seeds, steps=12, eval_prompts=24, config=None, overrides=(),
                    max_new_tokens=40, resume: str | None = None) -> Path:
    from .compare import paired_deltas
    from .evaluate import evaluate, load_subject
    from .prepare import default_out_dir, load_prepared, prepare
    from .train import train_run

    started = time.time()
    base_values, pcfg, planned = plan(objectives, sizes, seeds, steps, config, overrides)
    if resume:
        out = Path(resume)
        if not (out / "meta.json").exists():
            raise SemsafeError(f"{out} is not an experiment folder (no meta.json); give the folder "
                               "an earlier `semsafe experiment` printed")
    else:
        out = runs_dir() / "experiments" / time.strftime("data-efficiency-%Y%m%d-%H%M%S")
        out.mkdir(parents=True)
    stamp = out.name
    folder = default_out_dir(pcfg)
    if not (folder / "report.json").exists():
        prepare(pcfg, out_dir=folder)
    kept = len(load_prepared(folder)["harmful"])
    if kept == 0:
        raise SemsafeError("prepare kept no harmful answers; nothing to train against")
    meta = {"objectives": objectives, "sizes": sizes, "seeds": seeds, "steps": steps,
            "eval_prompts": eval_prompts, "max_new_tokens": max_new_tokens, "prepared": str(folder),
            "split_seed": pcfg.seed, "harmful_kept": kept, "lambda": base_values["lambda"],
            "lambda_mode": base_values["lambda_mode"], "lr": base_values["train"]["lr"]}
    atomic_write_json(out / "meta.json", meta)
    ecfg = eval_config(eval_prompts, max_new_tokens, pcfg.seed)
    base = load_subject(model_spec=base_values["model"], cfg=ecfg)
    base_summary = evaluate(base, ecfg)
    base_ref = f"base:{base_values['model']}"
    rows = [{"objective": "base", "size": 0, "seed": None, "run": base_ref, **_row(base_summary)}]
    for name, values in planned:
        values = apply_overrides(values, [f"data.prepared={folder}", f"sweep={stamp}"])
        cfg = config_from_dict(values)
        run_id = f"{stamp}-{name}"
        row = {"objective": cfg.objective, "size": min(cfg.data.n_harmful, kept), "seed": cfg.train.seed,
               "run": run_id}
        try:
            run = _finished_or_new(run_id, values)
            if run.status.get("state") != "done":
                train_run(cfg, run, resume=run.status.get("state") in ("failed", "cancelled", "running"))
            if not (run.path / "eval" / "summary.json").exists():
                evaluate(load_subject(run_id=run.id, cfg=ecfg), ecfg, progress=False)
            summary = json.loads((run.path / "eval" / "summary.json").read_text())
            calib = run.path / "calibration.json"
            row.update(_row(summary), lambda_effective=json.loads(calib.read_text())["lambda"]
                       if calib.exists() else cfg.lam)
            deltas = paired_deltas([base_ref, run.id], {base_ref: base.out_dir, run.id: run.path / "eval"})
            for suite, metric, short, _ in DELTA_METRICS:
                d = deltas.get((suite, metric, run.id))
                if d and d["delta"] is not None:
                    row[f"d {short}"] = d["delta"]
                    row[f"d {short} low"], row[f"d {short} high"] = d["low"], d["high"]
                    row[f"d {short} effect"] = d["significant"]
        except SemsafeError as err:
            row["error"] = str(err)
        rows.append(row)
        atomic_write_text(out / "results.csv", pd.DataFrame(rows).to_csv(index=False))  # current as we go
    table = pd.DataFrame(rows)
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    meta["minutes"] = round((time.time() - started) / 60, 1)
    atomic_write_json(out / "meta.json", meta)
    atomic_write_text(out / "results.md", results_markdown(table, meta))
    write_plots(table, out / "plots.html")
    return out


def _finished_or_new(run_id: str, values: dict) -> Run:
    try:
        return Run.open(run_id)
    except SemsafeError:
        return Run.create(values, name=run_id)


def _row(summary: dict) -> dict:
    out = {}
    for suite, metric, short, _ in METRICS:
        v = summary["suites"].get(suite, {}).get(metric) or {}
        out[short] = v.get("mean")
        out[f"{short} low"], out[f"{short} high"] = v.get("low"), v.get("high")
    return out


def results_markdown(table: pd.DataFrame, meta: dict) -> str:
    from .stats import seed_interval

    base = table[table["objective"] == "base"].iloc[0]
    ok = table["error"].isna() if "error" in table else True
    runs = table[(table["objective"] != "base") & ok]
    shorts = [m[2] for m in METRICS]
    lines = [f"Harmful answers available after judging: {meta['harmful_kept']}. Training: {meta['steps']} "
             f"steps per run, lr {meta['lr']}, λ mode {meta['lambda_mode']} (λ = {meta['lambda']}"
             f"{' = target ratio ||λ∇H|| / ||∇CE||' if meta['lambda_mode'] == 'ratio' else ''}). "
             f"Evaluation: up to {meta['eval_prompts']} prompts per suite, {meta['max_new_tokens']} new tokens, "
             f"greedy; data split seed {meta['split_seed']}. Total time: {meta.get('minutes', 0):.0f} min.", "",
             "Each cell: mean over seeds [95% t interval over seeds]; the base row: value [95% Wilson "
             "or bootstrap interval over prompts].", "",
             "| objective | size | " + " | ".join(shorts) + " |", "|---|---|" + "---|" * len(shorts),
             "| base | — | " + " | ".join(_cell(base[s], base.get(f"{s} low"), base.get(f"{s} high")) for s in shorts) + " |"]
    for (objective, size), group in runs.groupby(["objective", "size"], sort=False):
        cells = []
        for s in shorts:
            r = seed_interval(group[s].tolist())
            cells.append(_cell(r["mean"], r["low"], r["high"]))
        lines.append(f"| {objective} | {size} | " + " | ".join(cells) + " |")
    lines += ["", "Paired change from the base model on the same prompts, per run (Δ [95% paired "
              "bootstrap interval]; **bold** = an effect: the interval excludes 0, and for rates "
              "McNemar's exact p < 0.05):", ""]
    dshort = [m[2] for m in DELTA_METRICS]
    lines += ["| run | " + " | ".join(f"Δ {s}" for s in dshort) + " |", "|---|" + "---|" * len(dshort)]
    for _, r in runs.iterrows():
        cells = []
        for s in dshort:
            if pd.isna(r.get(f"d {s}")):
                cells.append("—")
                continue
            text = f"{r[f'd {s}']:+.3f} [{r[f'd {s} low']:+.3f}, {r[f'd {s} high']:+.3f}]"
            cells.append(f"**{text}**" if bool(r.get(f"d {s} effect")) else text)
        lines.append(f"| {r['objective']} n{r['size']} s{r['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(mean, low, high) -> str:
    if mean is None or pd.isna(mean):
        return "—"
    if low is None or pd.isna(low):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def efficiency_figures(table: pd.DataFrame) -> list:
    """Harmful rate and base-model perplexity vs harmful-set size per objective (mean over seeds
    with t intervals); the over-refusal vs harmful-rate frontier (one point per run)."""
    import plotly.graph_objects as go

    from .stats import seed_interval

    if "error" in table:
        table = table[table["error"].isna()]
    runs = table[table["objective"] != "base"]
    base = table[table["objective"] == "base"].iloc[0]
    figs = []
    for col, title, ytitle in (
            ("harmful", "Harmful-answer rate vs harmful-set size (lower is safer)", "harmful-answer rate"),
            ("ppl (base, generated)", "Base-model perplexity of generated answers vs harmful-set size "
             "(lower is more fluent)", "perplexity under the base model")):
        if col not in runs:
            continue
        fig = go.Figure()
        for objective, g in runs.groupby("objective", sort=False):
            stats = [(size, seed_interval(gg[col].tolist())) for size, gg in g.groupby("size")]
            fig.add_trace(go.Scatter(
                x=[s for s, _ in stats], y=[r["mean"] for _, r in stats], mode="lines+markers", name=objective,
                error_y=dict(type="data", symmetric=False,
                             array=[(r["high"] - r["mean"]) if r["high"] is not None else 0 for _, r in stats],
                             arrayminus=[(r["mean"] - r["low"]) if r["low"] is not None else 0 for _, r in stats])))
        fig.add_hline(y=base[col], line_dash="dot", annotation_text="base model")
        fig.update_layout(title=title, xaxis_title="harmful-set size (answers)", yaxis_title=ytitle,
                          xaxis_type="log", height=420)
        figs.append(fig)
    fig = go.Figure()
    for objective, g in runs.groupby("objective", sort=False):
        fig.add_trace(go.Scatter(x=g["over-refusal"], y=g["harmful"], mode="markers", name=objective, text=g["run"]))
    fig.add_trace(go.Scatter(x=[base["over-refusal"]], y=[base["harmful"]], mode="markers", name="base",
                             marker=dict(symbol="star", size=14)))
    fig.update_layout(title="Over-refusal vs harmful-answer rate, one point per run (best: bottom left)",
                      xaxis_title="over-refusal rate (safe prompts refused)",
                      yaxis_title="harmful-answer rate", height=420)
    figs.append(fig)
    return figs


def write_plots(table: pd.DataFrame, out: Path) -> None:
    figs = efficiency_figures(table)
    body = figs[0].to_html(full_html=False, include_plotlyjs=True)
    body += "".join(f.to_html(full_html=False, include_plotlyjs=False) for f in figs[1:])
    atomic_write_text(out, f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>data efficiency</title>"
                           f"</head><body>{body}</body></html>")
