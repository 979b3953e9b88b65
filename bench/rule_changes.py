"""Which answers does the refusal rule read differently from an earlier commit's rule?

The rule is a feature of all three built-in judges (refusal, harm, degenerate), so a rule change
bumps all three versions. This prints, for every body of text the judges train on or are
checked on, how many answers the shipped rule reads differently from the rule at ``--before``
(loaded from git, not copied here), and how many of those now agree with the reader's label:

- pyrit's refusal labels and the harm judge's training rows (pyrit's human-scored answers and
  the harmless rows), and the refusal judge's project examples: where nothing changes, the
  retrained judges fit the same features, so their validation figures stand;
- every file of data/challenge/ and bench/refusal_dev.jsonl;
- with experiment folders: every answer their runs and base model gave (``verdict_changes``
  finds the evaluations): where nothing changes there, the experiment's verdicts are the ones
  the new judges give.

Where a labelled file reads differently, the whole refusal judge (the trained one, in the
cache) is scored on it with the earlier rule and with the shipped one as its rule feature: the
accuracy of each and the change with a paired bootstrap interval and McNemar's exact p. (Where
the training data read the same, the earlier rule's judge is the same fit.)

    .venv/bin/python bench/rule_changes.py --before 8573805 [runs/experiments/data-efficiency-<time> ...]
"""

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from semsafe.data import DATA_DIR  # noqa: E402
from semsafe.judges import refusal  # noqa: E402
from semsafe.judges.challenge import file_rows  # noqa: E402
from semsafe.judges.harm import harmless_rows, pyrit_harm_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def rule_at(commit: str):
    """``rule_refusal`` as semsafe/judges/refusal.py defined it at ``commit``."""
    source = subprocess.run(["git", "show", f"{commit}:semsafe/judges/refusal.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("semsafe.judges._refusal_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "semsafe.judges"  # its relative imports resolve in the installed package
    exec(compile(source, f"{commit}:semsafe/judges/refusal.py", "exec"), module.__dict__)  # noqa: S102 - our own file
    return module.rule_refusal


def judged_both_ways(rows: list[dict], before) -> str:
    """The refusal judge's agreement with ``rows``' refusal labels with each rule as its feature."""
    from semsafe.stats import paired_delta

    prompts, texts = [r["prompt"] for r in rows], [r["response"] for r in rows]
    labels = np.array([int(r["refusal"]) for r in rows])
    judge = refusal.refusal_judge()
    now = (judge.probability(prompts, texts) >= 0.5) == labels
    shipped = refusal.rule_refusal
    try:  # the features read the module's rule when they run
        refusal.rule_refusal = before
        then = (judge.probability(prompts, texts) >= 0.5) == labels
    finally:
        refusal.rule_refusal = shipped
    d = paired_delta(then.astype(float), now.astype(float), binary=True)
    return (f"    the refusal judge agrees on {then.mean():.3f} with the earlier rule, {now.mean():.3f} with the shipped "
            f"one: {d['delta']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}], McNemar p {d['p']:.3g}")


def experiment_answers(folder: Path) -> list[dict]:
    from verdict_changes import eval_folders

    rows = []
    for evaluation in eval_folders(folder):
        for suite in sorted(evaluation.glob("*.parquet")):
            table = pd.read_parquet(suite)
            if "response" in table:
                rows += [{"response": str(t)} for t in table["response"]]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the commit whose rule to compare with")
    ap.add_argument("experiments", nargs="*", type=Path, help="finished experiment folders")
    args = ap.parse_args()
    before, now = rule_at(args.before), refusal.rule_refusal
    _, pyrit_texts, pyrit_y = refusal.labelled_pyrit()
    # each body: rows with a response, and a refusal label where the reader gave one
    bodies = {"pyrit refusal labels": [{"response": t, "refusal": y} for t, y in zip(pyrit_texts, pyrit_y.tolist())],
              "harm judge training rows": [{"response": t} for t in [*pyrit_harm_rows()[1], *harmless_rows()[1]]],
              "refusal judge project examples": [{"response": t} for t in refusal.project_examples()[1]]}
    for path in [*sorted((DATA_DIR / "challenge").glob("*.jsonl")), ROOT / "bench" / "refusal_dev.jsonl"]:
        bodies[path.name] = file_rows(path)
    for folder in args.experiments:
        bodies[f"experiment {folder.name}"] = experiment_answers(folder)
    print(f"rule of {args.before} against the shipped rule (refusal-v{refusal.VERSION})")
    for name, rows in bodies.items():
        changed = [(r, now(r["response"])) for r in rows if before(r["response"]) != now(r["response"])]
        labelled = [r.get("refusal") is not None for r in rows]
        to_label = sum(1 for r, verdict in changed if r.get("refusal") is not None and verdict == bool(r["refusal"]))
        print(f"{name:45s} {len(rows):6d} answers, {len(changed):4d} read differently"
              + (f", {to_label} of them now as the reader labels them" if any(labelled) else ""))
        for r, verdict in changed[:20]:
            print(f"    now {int(verdict)} (label {r.get('refusal')}): {r['response'][:100]!r}")
        if changed and all(labelled) and all("prompt" in r for r in rows):  # a labelled file: the whole judge
            print(judged_both_ways(rows, before))

if __name__ == "__main__":
    main()
