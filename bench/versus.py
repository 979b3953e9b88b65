"""TA-SFT against each baseline, recomputed from an experiment's per-run table and per-prompt
outcomes alone (no evaluation folders, no model): the same ``versus_table`` the experiment runs.

    .venv/bin/python bench/versus.py docs/results/data-efficiency-seeded.csv \\
        docs/results/data-efficiency-seeded-outcomes.csv.gz [--pooled] [--out versus.csv]

``--add RESULTS OUTCOMES`` pools another experiment of the same design run with other seeds
(``semsafe experiment data-efficiency --seeds 2`` after seeds 0,1; ``pool_experiments`` checks
that the base model's values match), so the table resamples every seed.
``--pooled`` gives the interval used before seeds were resampled (each prompt averaged over
seeds, prompts resampled alone), so the two can be set side by side with bench/verdicts.py.
``--seed-spread`` also asks whether two seeds differ by more than the prompts explain: for each
comparison and pair of seeds, z = (Δ seed a − Δ seed b) / its standard error from the per-prompt
differences (the same answer counting as the same value, as in the table), and how many have
|z| > 1.96 (about 5% if the seed did not matter).
"""

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semsafe.experiment import (METHOD, VERSUS_METRICS, paired_values, per_prompt_frames,  # noqa: E402
                                pool_experiments, versus_markdown, versus_table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="an experiment's results.csv")
    ap.add_argument("outcomes", help="its outcomes.csv (or .csv.gz)")
    ap.add_argument("--add", nargs=2, action="append", default=[], metavar=("RESULTS", "OUTCOMES"),
                    help="another experiment of the same design with other seeds (repeatable)")
    ap.add_argument("--pooled", action="store_true", help="average each prompt over seeds; resample prompts only")
    ap.add_argument("--out", help="write the table here as CSV")
    ap.add_argument("--seed-spread", action="store_true", help="do seeds differ beyond prompt noise?")
    args = ap.parse_args()
    table, outcomes = pool_experiments([(pd.read_csv(r), pd.read_csv(o))
                                        for r, o in [(args.results, args.outcomes), *args.add]])
    versus = versus_table(table, outcomes, METHOD, pooled=args.pooled)
    if args.out:
        versus.to_csv(args.out, index=False)
    print("\n".join(versus_markdown(versus)) if len(versus) else "no comparisons")
    if args.seed_spread:
        seed_spread(table, outcomes)


def seed_spread(table: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    frames = per_prompt_frames(outcomes)
    runs = table[table["objective"] != "base"]
    z = []
    for _, at_size in runs.groupby("size"):
        mine = at_size[at_size["objective"] == METHOD]
        for _, theirs in at_size[at_size["objective"] != METHOD].groupby("objective"):
            seeds = sorted(set(mine["seed"]) & set(theirs["seed"]))
            for _, metric, _, _ in VERSUS_METRICS:
                per_seed = {}
                for s in seeds:
                    pair = paired_values(frames, mine[mine["seed"] == s]["run"].iloc[0],
                                         theirs[theirs["seed"] == s]["run"].iloc[0], metric)
                    if pair is not None:  # the same answer counts as the same value, as in the table
                        d = (pair[0] - pair[1]).dropna()
                        per_seed[s] = (d.mean(), d.std(ddof=1) / np.sqrt(len(d)))
                for (da, sa), (db, sb) in itertools.combinations(per_seed.values(), 2):
                    if np.hypot(sa, sb) > 0:
                        z.append((da - db) / np.hypot(sa, sb))
    z = np.abs(np.asarray(z))
    print(f"seeds differ by more than the prompts explain (|z| > 1.96) in {int((z > 1.96).sum())} of {len(z)} "
          f"comparisons of two seeds (median |z| {np.median(z):.2f}; about {0.05 * len(z):.0f} expected if the seed did not matter)")


if __name__ == "__main__":
    main()
