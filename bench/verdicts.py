"""Do two runs of the experiment reach the same verdicts? For each size and baseline, `emd`'s
verdict on each metric (better / worse / no difference shown) in two ``versus.csv`` files,
side by side, and how many agree.

    .venv/bin/python bench/verdicts.py docs/results/data-efficiency-21steps-unseeded-versus.csv \\
        docs/results/data-efficiency-decisive-versus.csv

Two runs of the same design that differ only in the adapters' initial weights show how much of
a verdict is the method and how much the draw (the paired interval over prompts holds the
initial weights fixed). The last line asks the question a reader of the second file cares
about: of the differences it calls, how many the other run called too.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semsafe.experiment import VERSUS_METRICS, verdict  # noqa: E402  (the columns versus.csv has)

METRICS = [short for _, _, short, _ in VERSUS_METRICS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first")
    ap.add_argument("second")
    args = ap.parse_args()
    a, b = pd.read_csv(args.first), pd.read_csv(args.second)
    merged = a.merge(b, on=["size", "versus"], suffixes=("", " 2"))
    if len(merged) != len(a) or len(merged) != len(b):
        raise SystemExit("the two files do not compare the same sizes and baselines")
    rows, same, called, held = [], 0, 0, 0
    for _, r in merged.iterrows():
        line = {"size": r["size"], "versus": r["versus"]}
        for m in METRICS:
            first, second = verdict(r, m), verdict(r, m, " 2")
            same += first == second
            called += second != "none shown"
            held += second != "none shown" and first == second
            line[m] = first if first == second else f"{first} -> {second}"
        rows.append(line)
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"{same} of {len(merged) * len(METRICS)} verdicts the same in both")
    print(f"of the {called} differences the second file calls, {held} are called the same way in the first")


if __name__ == "__main__":
    main()
