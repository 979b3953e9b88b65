"""The statistics behind every interval semsafe shows.

- A rate (harmful, refusal, over-refusal): Wilson score 95% interval (scipy), which keeps its
  coverage at small n and near 0 or 1, where the normal approximation and the percentile
  bootstrap of a proportion both fail.
- A continuous mean (perplexity, EMD, toxicity): percentile bootstrap 95% interval.
- A before/after delta on the same prompts: paired bootstrap of the per-prompt differences,
  and for rates McNemar's exact test (a binomial test on the discordant pairs).
- A mean over training seeds: Student-t 95% interval over the seeds (with two seeds it is wide,
  honestly so), never the spread of two numbers.
An effect is called one only when its interval excludes 0 (``significant``).
"""

import math

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


def seed_interval(values) -> dict:
    """Mean over seeds with a Student-t interval (None for the interval with fewer than 2)."""
    v = _finite(values)
    if len(v) == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    if len(v) < 2:
        return {"mean": float(v[0]), "low": None, "high": None, "n": 1}
    half = _st.t.ppf(1 - (1 - LEVEL) / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return {"mean": float(v.mean()), "low": float(v.mean() - half), "high": float(v.mean() + half), "n": len(v)}
