"""TA-SFT against each baseline, recomputed from an experiment's per-run table and per-prompt
outcomes alone (no evaluation folders, no model): the same ``versus_table`` the experiment runs.

    .venv/bin/python bench/versus.py docs/results/data-efficiency-seeded.csv \\
        docs/results/data-efficiency-seeded-outcomes.csv.gz [--pooled] [--out versus.csv]

``--pooled`` gives the interval used before seeds were resampled (each prompt averaged over
seeds, prompts resampled alone), so the two can be set side by side with bench/verdicts.py.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semsafe.experiment import METHOD, versus_markdown, versus_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="an experiment's results.csv")
    ap.add_argument("outcomes", help="its outcomes.csv (or .csv.gz)")
    ap.add_argument("--pooled", action="store_true", help="average each prompt over seeds; resample prompts only")
    ap.add_argument("--out", help="write the table here as CSV")
    args = ap.parse_args()
    versus = versus_table(pd.read_csv(args.results), pd.read_csv(args.outcomes), METHOD, pooled=args.pooled)
    if args.out:
        versus.to_csv(args.out, index=False)
    print("\n".join(versus_markdown(versus)) if len(versus) else "no comparisons")


if __name__ == "__main__":
    main()
