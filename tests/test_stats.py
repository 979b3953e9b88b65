"""The statistics against published textbook values."""

import pytest

from semsafe.stats import bootstrap, mcnemar_exact, paired_delta, wilson


def test_wilson_matches_newcombe_1998():
    # Newcombe (1998), Statistics in Medicine 17:857, Table I: 81/263, score method 0.2553-0.3662
    r = wilson([1] * 81 + [0] * 182)
    assert r["mean"] == pytest.approx(81 / 263)
    assert r["low"] == pytest.approx(0.2553, abs=5e-5) and r["high"] == pytest.approx(0.3662, abs=5e-5)
    # and stays inside [0, 1] with a non-zero width at 0/n (Newcombe: 0/10 -> 0 to 0.2775)
    z = wilson([0] * 10)
    assert z["low"] == 0 and z["high"] == pytest.approx(0.2775, abs=5e-5)


def test_mcnemar_exact_small_table():
    # b = 1, c = 7 discordant pairs: p = 2 * P(X <= 1 | n = 8, 1/2) = 2 * 9 / 256
    assert mcnemar_exact(1, 7) == pytest.approx(18 / 256)
    assert mcnemar_exact(0, 0) == 1.0


def test_paired_delta_calls_an_effect_only_when_the_interval_excludes_zero():
    before = [1] * 40 + [0] * 10
    after = [0] * 30 + [1] * 10 + [0] * 10  # 30 prompts stop being harmful, none start
    d = paired_delta(before, after, binary=True)
    assert d["delta"] == pytest.approx(-0.6) and d["high"] < 0 and d["significant"] and d["p"] < 1e-6
    same = paired_delta(before, [1] * 39 + [0] * 11, binary=True)
    assert not same["significant"] and same["low"] <= 0 <= same["high"]
    # missing values drop the pair, not the whole comparison
    assert paired_delta([1.0, None, 2.0], [2.0, 5.0, 3.0], binary=False)["n"] == 2


def test_bootstrap_of_constant_values_is_a_point():
    r = bootstrap([2.0] * 10)
    assert r["low"] == r["high"] == r["mean"] == 2.0


def test_one_seed_gives_the_paired_bootstrap_over_prompts():
    import numpy as np

    from semsafe.stats import seeded_paired_delta
    from tests.tolerance import sum_tolerance
    import torch

    rng = np.random.default_rng(3)
    before, after = rng.random(60), rng.random(60)
    one = seeded_paired_delta([before], [after])
    ref = paired_delta(before.tolist(), after.tolist(), binary=False)
    # means of 60 differences in [-1, 1]: a sum of 60 terms of total size <= 60, divided by 60
    tol = sum_tolerance(torch.float64, 60, magnitude=1.0)
    for key in ("delta", "low", "high"):
        assert one[key] == pytest.approx(ref[key], abs=tol)
    assert one["per_seed"] == [pytest.approx(ref["delta"], abs=tol)] and one["seeds"] == 1


def test_a_difference_that_holds_in_one_seed_only_is_not_called():
    """Seed 0: the method is better on every prompt by 0.4; seed 1: slightly worse. Averaging each
    prompt over seeds first (the pooled interval) calls a clear effect; resampling the seeds
    as well does not, since the other seed shows none."""
    import numpy as np

    from semsafe.stats import seeded_paired_delta

    rng = np.random.default_rng(0)
    base = rng.random((2, 80))
    noise = rng.normal(0, 0.05, (2, 80))
    after = base + np.array([[-0.4], [0.05]]) + noise
    pooled = paired_delta(base.mean(0).tolist(), after.mean(0).tolist(), binary=False)
    assert pooled["significant"] and pooled["high"] < 0
    two = seeded_paired_delta(base, after)
    assert not two["significant"] and two["low"] < 0 < two["high"]
    assert two["per_seed"][0] == pytest.approx(-0.4, abs=0.03) and two["per_seed"][1] > 0
    # the same difference in both seeds is called
    both = seeded_paired_delta(base, base - 0.4 + noise)
    assert both["significant"] and both["high"] < 0 and both["delta"] == pytest.approx(-0.4, abs=0.03)


def test_missing_values_drop_only_their_own_pairs():
    import numpy as np

    from semsafe.stats import seeded_paired_delta

    nan = float("nan")
    before = [[0.0, 1.0, nan, nan], [0.0, 1.0, 1.0, nan]]
    after = [[1.0, 1.0, 0.0, nan], [1.0, 1.0, 0.0, nan]]
    r = seeded_paired_delta(before, after)
    assert r["n"] == 3  # the last prompt has no pair in any seed
    assert r["per_seed"] == [pytest.approx(0.5), pytest.approx(0.0)]  # seed 0: 2 pairs; seed 1: 3
    assert seeded_paired_delta(np.empty((0, 0)), np.empty((0, 0)))["delta"] is None
    with pytest.raises(ValueError, match="seeds x prompts"):
        seeded_paired_delta([1.0, 2.0], [1.0, 2.0])


def test_interval_text_gives_every_number_its_interval():
    """`semsafe eval` prints each metric this way: a rate with its Wilson interval and k/n, a
    mean with its bootstrap interval, and says so when a suite had no data for it."""
    from semsafe.stats import interval_text

    rate = wilson([1, 0, 0, 0])
    assert interval_text(rate) == f"0.250 [{rate['low']:.3f}, {rate['high']:.3f}] (1/4)"
    mean = bootstrap([1.0, 2.0, 3.0], n_resamples=200)
    assert interval_text(mean).startswith("2.000 [") and "/" not in interval_text(mean)
    assert interval_text(wilson([])) == "no data"
