"""The statistics behind every interval semsafe shows.

- A rate (harmful, refusal, over-refusal): Wilson score 95% interval (scipy), which keeps its
  coverage at small n and near 0 or 1, where the normal approximation and the percentile
  bootstrap of a proportion both fail.
- A continuous mean (perplexity, EMD, toxicity): percentile bootstrap 95% interval.
- A before/after delta on the same prompts: paired bootstrap of the per-prompt differences,
  and for rates McNemar's exact test (a binomial test on the discordant pairs).
- A mean over training seeds: Student-t 95% interval over the seeds (with two seeds it is wide,
  honestly so), never the spread of two numbers.
- One method against another, each trained with the same seeds: a two-level bootstrap (seed
  pairs, then prompts), so a verdict has to survive the draw of the initial weights as well as
  the draw of the prompts (two runs that differed only in initial weights agreed on 26 of 45
  verdicts when the interval resampled prompts alone: docs/results.md).
An effect is called one only when its interval excludes 0 (``significant``).
"""

import warnings

import numpy as np
from scipy import stats as _st

LEVEL = 0.95


def _finite(values) -> np.ndarray:
    v = np.asarray([x for x in values if x is not None and np.isfinite(float(x))], dtype=float)
    return v


def wilson(values) -> dict:
    """Rate of True among ``values`` (bools or 0/1) with its Wilson score interval."""
    v = _finite(values)
    n = len(v)
    if n == 0:
        return {"mean": None, "low": None, "high": None, "n": 0, "interval": "wilson"}
    k = int(round(v.sum()))
    ci = _st.binomtest(k, n).proportion_ci(confidence_level=LEVEL, method="wilson")
    return {"mean": k / n, "low": float(ci.low), "high": float(ci.high), "n": n, "k": k,
            "interval": "wilson"}


def interval_text(estimate: dict) -> str:
    """``"0.250 [0.102, 0.495] (5/20)"``: an estimate as ``wilson`` or ``bootstrap`` returns it,
    its 95% interval, and for a rate how many of how many."""
    mean, low, high = estimate.get("mean"), estimate.get("low"), estimate.get("high")
    if mean is None:
        return "no data"
    text = f"{mean:.3f}" if low is None else f"{mean:.3f} [{low:.3f}, {high:.3f}]"
    return text + (f" ({estimate['k']}/{estimate['n']})" if "k" in estimate else "")


def bootstrap(values, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Mean with a percentile bootstrap interval (for continuous values)."""
    v = _finite(values)
    if len(v) == 0:
        return {"mean": None, "low": None, "high": None, "n": 0, "interval": "bootstrap"}
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_resamples, len(v)))].mean(1)
    alpha = (1 - LEVEL) / 2 * 100
    return {"mean": float(v.mean()), "low": float(np.percentile(means, alpha)),
            "high": float(np.percentile(means, 100 - alpha)), "n": int(len(v)), "interval": "bootstrap"}


def paired_delta(before, after, binary: bool, n_resamples: int = 2000, seed: int = 0) -> dict:
    """after − before on the same prompts (pairs with a missing value on either side dropped):
    the mean difference with a paired bootstrap interval, and McNemar's exact p for rates."""
    pairs = [(float(b), float(a)) for b, a in zip(before, after)
             if b is not None and a is not None and np.isfinite(float(b)) and np.isfinite(float(a))]
    if not pairs:
        return {"delta": None, "low": None, "high": None, "n": 0, "p": None, "significant": False}
    d = np.asarray([a - b for b, a in pairs])
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(1)
    alpha = (1 - LEVEL) / 2 * 100
    low, high = float(np.percentile(means, alpha)), float(np.percentile(means, 100 - alpha))
    out = {"delta": float(d.mean()), "low": low, "high": high, "n": len(d), "p": None,
           "test": "paired bootstrap"}
    if binary:
        out["p"] = mcnemar_exact(sum(1 for b, a in pairs if b and not a), sum(1 for b, a in pairs if a and not b))
        out["test"] = "paired bootstrap; McNemar exact p"
        # a rate's change is called an effect when both the interval and the exact test agree
        out["significant"] = bool((low > 0 or high < 0) and out["p"] < 1 - LEVEL)
    else:
        out["significant"] = bool(low > 0 or high < 0)
    return out


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (binomial test, p = ½)."""
    if b + c == 0:
        return 1.0
    return float(_st.binomtest(b, b + c, 0.5).pvalue)


def seeded_paired_delta(before, after, n_resamples: int = 2000, seed: int = 0) -> dict:
    """after − before when each side is one run per training seed, paired by seed and by prompt:
    ``before[s][p]`` and ``after[s][p]`` (seeds × prompts, NaN where a value is missing).

    A two-level bootstrap (resample the seed pairs, then the prompts, the same prompts for every
    seed): the interval then carries the variation between training runs as well as between
    prompts. Runs of one seed share their adapters' initial weights and data order, so the
    pairs are kept. With two seeds a quarter of the replicates draw each seed twice, so the 95%
    interval excludes 0 only where the effect holds in each seed on its own; with one seed it is
    ``paired_delta``'s interval. ``per_seed``: each seed's own mean difference."""
    d = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    if d.ndim != 2:
        raise ValueError(f"expected seeds x prompts, got an array of shape {d.shape}")
    d = d[:, ~np.isnan(d).all(axis=0)]  # a prompt with no pair in any seed says nothing
    k, n = d.shape
    if k == 0 or n == 0:
        return {"delta": None, "low": None, "high": None, "n": 0, "seeds": k, "per_seed": [],
                "significant": False}
    per_seed = np.nanmean(d, axis=1)
    rng = np.random.default_rng(seed)
    prompts = rng.integers(0, n, size=(n_resamples, n))  # drawn first: one seed gives paired_delta's draws
    seeds = rng.integers(0, k, size=(n_resamples, k))
    with warnings.catch_warnings():  # a replicate that drew only a seed's missing pairs: NaN, then skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        by_seed = np.nanmean(d[:, prompts], axis=2)  # (k, replicates): each seed's mean over resampled prompts
    weights = np.stack([(seeds == s).sum(1) for s in range(k)]) / k  # how often each seed was drawn
    means = np.nansum(weights * by_seed, axis=0) if k > 1 else by_seed[0]
    alpha = (1 - LEVEL) / 2 * 100
    low, high = float(np.percentile(means, alpha)), float(np.percentile(means, 100 - alpha))
    return {"delta": float(np.mean(per_seed)), "low": low, "high": high, "n": n, "seeds": k,
            "per_seed": [float(x) for x in per_seed], "test": "two-level bootstrap (seeds, then prompts)",
            "significant": bool(low > 0 or high < 0)}
