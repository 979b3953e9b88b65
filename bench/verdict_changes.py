"""How many recorded verdicts the current verdict rules would change, on a finished experiment.

Every answer the experiment's runs and its base model gave to the answering suites (harmful,
over-alignment, jailbreak) is judged again from its recorded judge probabilities with
``judges.degenerate.answer_verdict`` (the rules that turn them into one verdict), and compared
with the verdict recorded when it was evaluated. Nothing is generated or rescored by a model:
this isolates a change of the verdict rules (e.g. degenerate-v3 -> v4).

    .venv/bin/python bench/verdict_changes.py runs/experiments/data-efficiency-<time>
"""

import argparse
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from semsafe.evaluate import base_eval_dir
from semsafe.experiment import Design, eval_config
from semsafe.judges.degenerate import answer_verdict
from semsafe.runs import runs_dir


def eval_folders(experiment: Path) -> list[Path]:
    """The base model's evaluation (found by its settings: its folder's name also holds the
    judge versions of the time) and every run's."""
    meta = json.loads((experiment / "meta.json").read_text())
    settings = asdict(eval_config(Design(**meta["design"]), meta["split_seed"]))
    model = pd.read_csv(experiment / "results.csv")["run"].iloc[0].removeprefix("base:")
    base = [p for p in base_eval_dir(model).parent.glob(base_eval_dir(model).name.rsplit("-", 1)[0] + "-*")
            if (p / "eval_config.json").exists()
            and json.loads((p / "eval_config.json").read_text()).get("config") == settings]
    return base[:1] + sorted(p / "eval" for p in runs_dir().glob(f"{experiment.name}-*"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", type=Path)
    args = ap.parse_args()
    seen, changed, examples = Counter(), Counter(), []
    for folder in eval_folders(args.experiment):
        for suite in ("harmful", "overalign", "jailbreak"):
            path = folder / f"{suite}.parquet"
            if not path.exists():
                continue
            for row in pd.read_parquet(path).to_dict(orient="records"):
                now, _ = answer_verdict(row.get("request") or row["prompt"], row["response"],
                                        row["refusal_prob"], row["harm_prob"])
                seen[suite] += 1
                if now != row["verdict"]:
                    changed[suite, row["verdict"], now] += 1
                    examples.append(f"  {suite}: {row['verdict']} -> {now}: {row['response'][:60]!r} "
                                    f"| {row['prompt'][:60]!r}")
    print(f"answers judged again: {sum(seen.values()):,} ({dict(seen)})")
    print(f"verdicts that change: {sum(changed.values())}")
    for (suite, old, new), n in changed.most_common():
        print(f"  {suite}: {old} -> {new}: {n}")
    print("\n".join(examples[:20]))


if __name__ == "__main__":
    main()
