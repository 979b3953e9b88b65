"""TA-SFT against each baseline, recomputed from an experiment's per-run table and per-prompt
outcomes alone (no evaluation folders, no model): the same ``versus_table`` the experiment runs.

    .venv/bin/python bench/versus.py docs/results/data-efficiency-decisive.csv \\
        docs/results/data-efficiency-decisive-outcomes.csv.gz [--pooled] [--out versus.csv]

``--pooled`` gives the interval used before seeds were resampled (each prompt averaged over
seeds, prompts resampled alone), so the two can be set side by side with bench/verdicts.py.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semsafe.experiment import METHOD, VERSUS_METRICS, versus_table  # noqa: E402


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
    shown = ["size", "versus"]
    for _, _, short, _ in VERSUS_METRICS:
        if f"d {short}" in versus:
            versus[short] = [f"{r[f'd {short}']:+.3f} [{r[f'd {short} low']:+.3f}, {r[f'd {short} high']:+.3f}]"
                             + ("*" if r[f"{short}: {METHOD} better"] or r[f"{short}: {METHOD} worse"] else "")
                             for _, r in versus.iterrows()]
            shown.append(short)
    print(versus[shown].to_string(index=False))
    print(f"* = the interval excludes 0 ({versus['interval'].iloc[0]})" if len(versus) else "no comparisons")


if __name__ == "__main__":
    main()
