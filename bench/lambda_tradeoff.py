"""The strength trade-off of the EMD penalty, measured: for each λ (a target gradient-norm ratio
in `lambda_mode: ratio`, or a plain λ with --fixed), train the shipped default config and
evaluate EMD to held-out harmful answers, harmful-answer rate, over-refusal and fluency, all
on the same prompts as the base model, with paired deltas.

    .venv/bin/python bench/lambda_tradeoff.py --values 0.1,0.3,1 [--steps 50] [--n 32]

Prints one row per value and writes bench/out/lambda_tradeoff.csv. What it measured is in
docs/results.md ("The strength of the penalty").
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semsafe.compare import paired_deltas  # noqa: E402
from semsafe.config import load_config  # noqa: E402
from semsafe.evaluate import EvalConfig, evaluate, load_subject  # noqa: E402
from semsafe.runs import Run  # noqa: E402
from semsafe.train import train_run  # noqa: E402

METRICS = [("emd", "emd_to_harmful"), ("harmful", "harmful_rate"), ("overalign", "over_refusal_rate"),
           ("fluency", "ppl_generated_under_base"), ("capability", "accuracy")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/tasft-emd.yaml")
    parser.add_argument("--values", default="0.1,0.3,1", help="λ values (ratios in ratio mode)")
    parser.add_argument("--fixed", action="store_true", help="plain λ instead of a gradient-norm ratio")
    parser.add_argument("--steps", type=int, default=None, help="default: the config's")
    parser.add_argument("--n", type=int, default=32, help="prompts per suite")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()

    stamp = time.strftime("%Y%m%d-%H%M%S")
    ecfg = EvalConfig(suites=[m[0] for m in METRICS], n_prompts=args.n, max_new_tokens=args.max_new_tokens)
    base_cfg = load_config(args.config)
    base = load_subject(model_spec=base_cfg.model, cfg=ecfg)
    base_ref = f"base:{base_cfg.model}"
    base_summary = evaluate(base, ecfg, progress=False)
    rows = [{"lambda": "base", **{m: base_summary["suites"][s][m]["mean"] for s, m in METRICS}}]
    for value in args.values.split(","):
        overrides = [f"lambda={value}", f"lambda_mode={'fixed' if args.fixed else 'ratio'}"]
        if args.steps:
            overrides.append(f"train.steps={args.steps}")
        cfg = load_config(args.config, overrides)
        run = Run.create(cfg.to_dict(), name=f"lambda-{stamp}-{value}")
        train_run(cfg, run)
        summary = evaluate(load_subject(run_id=run.id, cfg=ecfg), ecfg, progress=False)
        deltas = paired_deltas([base_ref, run.id], {base_ref: base.out_dir, run.id: run.path / "eval"})
        calib = run.path / "calibration.json"
        row = {"lambda": value, "lambda_effective": json.loads(calib.read_text())["lambda"] if calib.exists() else float(value),
               "ce_retain_last": run.metrics()[-1].get("ce_retain")}
        for suite, metric in METRICS:
            row[metric] = summary["suites"][suite][metric]["mean"]
            d = deltas.get((suite, metric, run.id))
            if d:
                row[f"d {metric}"] = f"{d['delta']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" + (" *" if d["significant"] else "")
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    out = Path("bench/out")
    out.mkdir(exist_ok=True)
    table.to_csv(out / "lambda_tradeoff.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False))
    print("(* = paired 95% interval excludes 0)")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
