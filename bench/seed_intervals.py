"""How often does each versus interval call a difference that is not there? A simulation of the
experiment's comparison: two methods with the same true harmful rate, each trained with k
seeds, answering the same n prompts. Each training run shifts every prompt's log-odds by its
own random amount (spread τ, the variation between initial weights that two reruns of the
experiment showed); the prompts differ in difficulty. Printed for each τ and k: the share of
simulated experiments in which the pooled interval (prompts resampled alone, each prompt
averaged over seeds) and the two-level one (seed pairs, then prompts) exclude 0, i.e. call an
effect that does not exist (nominal: 0.05), and, with a true difference (0.75 in log-odds,
0.11 to 0.13 in rate: printed), how often each finds it.

    .venv/bin/python bench/seed_intervals.py [--sims 200] [--prompts 100]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from semsafe.stats import paired_delta, seeded_paired_delta  # noqa: E402


def simulate(rng, k: int, n: int, tau: float, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """(before, after): seeds x prompts of 0/1 outcomes; ``shift`` lowers the after side's rate."""
    difficulty = rng.normal(0.0, 1.5, n)  # log-odds of a harmful answer per prompt, base rate ~0.5

    def side(offset):
        run = rng.normal(0.0, tau, (k, 1))  # each run's own shift of every prompt
        p = 1 / (1 + np.exp(-(difficulty + run + offset)))
        return (rng.random((k, n)) < p).astype(float)

    return side(0.0), side(-shift)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--prompts", type=int, default=100)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.sims} simulated experiments each, {args.prompts} prompts, 1000 bootstrap replicates")
    print("   τ  seeds | no true difference: pooled  two-level | a true difference: pooled  two-level  (mean Δ)")
    for tau in (0.0, 0.5, 1.0):
        for k in (2, 3):
            calls, true_delta = {False: [0, 0], True: [0, 0]}, []
            for effect in (False, True):
                for _ in range(args.sims):
                    before, after = simulate(rng, k, args.prompts, tau, 0.75 if effect else 0.0)
                    pooled = paired_delta(before.mean(0).tolist(), after.mean(0).tolist(), binary=False,
                                          n_resamples=1000)
                    two = seeded_paired_delta(before, after, n_resamples=1000)
                    if effect:
                        true_delta.append(two["delta"])
                    calls[effect][0] += pooled["significant"]
                    calls[effect][1] += two["significant"]
            share = {e: [c / args.sims for c in v] for e, v in calls.items()}
            print(f"{tau:4.1f}  {k:5d} | {share[False][0]:27.2f}  {share[False][1]:9.2f} | "
                  f"{share[True][0]:26.2f}  {share[True][1]:9.2f}  ({np.mean(true_delta):+.3f})")


if __name__ == "__main__":
    main()
