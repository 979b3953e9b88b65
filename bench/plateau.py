"""Has a run's harmful term levelled off, and from which step? The experiment's own measure
(``semsafe.experiment.plateau``: the share of the term's whole movement, smoothed over 3 steps,
that came in the last quarter of the steps; <= 0.10 reads as levelled off), computed on the
run's first k steps for several k, so one long pilot run says how many steps a preset needs.

    .venv/bin/python bench/plateau.py RUN [RUN ...] [--at 12,15,18,21,24,30,36]

RUN is a run id (a folder under runs/). Prints one line per run: the term, its share at each k,
and the term's value at the last step.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semsafe.experiment import plateau  # noqa: E402
from semsafe.objectives import get_objective  # noqa: E402
from semsafe.runs import Run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--at", default="12,15,18,21,24,30,36,48", help="step counts to measure at")
    args = ap.parse_args()
    for run_id in args.runs:
        run = Run.open(run_id)
        term = get_objective(run.config["objective"]).term_log
        values = [(m["step"], float(m[term])) for m in run.metrics() if term in m and "step" in m]
        shares = []
        for k in (int(x) for x in args.at.split(",")):
            if k > len(values):
                break
            curve = pd.DataFrame([{"objective": "-", "size": 0, "term": "harmful term", "name": term,
                                   "step": s, "value": v} for s, v in values[:k]])
            shares.append(f"{k}: {plateau(curve)['last-quarter share'].iloc[0]:.2f}")
        print(f"{run_id}  {term}  share at steps  " + "  ".join(shares) + f"  (last value {values[-1][1]:.3f})")


if __name__ == "__main__":
    main()
