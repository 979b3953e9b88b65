"""Do two experiments of one design give the same per-prompt values? Run by run (matched by
objective, size and seed, whatever the experiments' time stamps), the share of prompts whose
value is identical, and the largest difference, per metric. Used to check that training and
evaluating two runs at once, one thread each (``--workers 2``), gives what one run at a time
with two threads gave.

    .venv/bin/python bench/same_outcomes.py RESULTS_A OUTCOMES_A RESULTS_B OUTCOMES_B [--by-size 1e-4]
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semsafe.experiment import run_label, with_derived_metrics  # noqa: E402


def keyed(results: str, outcomes: str) -> pd.DataFrame:
    """outcomes with each run named by its objective, size and seed (base: "base")."""
    table = pd.read_csv(results).drop_duplicates("run")
    names = {r["run"]: "base" if r["objective"] == "base" else run_label(r["run"]) for _, r in table.iterrows()}
    values = with_derived_metrics(pd.read_csv(outcomes))
    return values.assign(run=values["run"].map(names)).dropna(subset=["run"])


def matched(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The values both hold, side by side with ``same`` (equal, or both missing) and ``diff``;
    and how many are in one only."""
    both = a.merge(b, on=["run", "suite", "metric", "id"], suffixes=(" a", " b"))
    both["same"] = (both["value a"] == both["value b"]) | (both["value a"].isna() & both["value b"].isna())
    both["diff"] = (both["value a"] - both["value b"]).abs()
    return both, len(a) + len(b) - 2 * len(both)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results_a"), ap.add_argument("outcomes_a")
    ap.add_argument("results_b"), ap.add_argument("outcomes_b")
    ap.add_argument("--by-size", type=float, metavar="TOL",
                    help="also, per harmful-set size and metric, how many values differ by more than TOL "
                         "(e.g. 1e-4: log-perplexities of the same answers differ by float rounding only)")
    args = ap.parse_args()
    a, b = keyed(args.results_a, args.outcomes_a), keyed(args.results_b, args.outcomes_b)
    both, only = matched(a, b)
    per_run = both.groupby(["run", "metric"]).agg(prompts=("same", "size"), identical=("same", "mean"),
                                                 largest_diff=("diff", "max")).reset_index()
    pd.set_option("display.width", 200)
    print(per_run.to_string(index=False))
    runs = per_run.groupby("run")["identical"].min()
    print(f"\n{len(both)} per-prompt values in both ({only} in one only); identical: {both['same'].mean():.4f}; "
          f"runs with every value identical: {(runs == 1).sum()} of {len(runs)}")
    if args.by_size is not None:  # which sizes trained alike: base and sft stand apart ("-")
        size = both["run"].str.extract(r"-n(\d+)-")[0].fillna("-")
        moved = both.assign(size=size, moved=~both["same"] & (both["diff"] > args.by_size))
        print(f"\nvalues that differ by more than {args.by_size:g}, per size:")
        print(moved.groupby(["metric", "size"])["moved"].agg(["sum", "size"]).rename(
            columns={"sum": "differ", "size": "values"}).to_string())


if __name__ == "__main__":
    main()
