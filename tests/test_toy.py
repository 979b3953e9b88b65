"""The playground's lesson, checked: what its text says is what its own curves show."""

import numpy as np

from semsafe.toy import bounded_vs_unbounded, normalise, optimise, toy_cost


def test_emd_is_bounded_and_nll_is_not_on_the_playground_curve():
    words, cost, _ = toy_cost()
    curve = bounded_vs_unbounded(cost, words.index("kill"), words.index("hug"))
    assert curve["emd"].max() <= 2.0
    c = float(cost.block([words.index("hug")], [words.index("kill")]))
    assert abs(curve["emd"][-1] - c) < 1e-9  # saturates at the cost to the word the mass went to
    assert np.all(np.diff(curve["nll"]) > 0) and curve["nll"][-1] > 25  # grows without bound


def test_the_three_objectives_from_the_same_start():
    words, cost, _ = toy_cost()
    start = normalise([0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
    kill = words.index("kill")
    runs = {name: optimise(cost, kill, start, name, steps=60) for name in ("nll", "emd", "lb")}
    for name, r in runs.items():
        assert np.allclose(r["p"][0], start.numpy())
        assert r["p"][-1][kill] < r["p"][0][kill], name  # each pushes mass off the harmful word
        assert np.all(r["lb"] <= r["emd"] + 1e-12), name  # the bound stays below the exact value
        assert r["emd"].max() <= 2.0
    # NLL keeps climbing; EMD levels off below its ceiling of 2
    assert runs["nll"]["nll"][-1] > runs["nll"]["nll"][30] + 1
    emd = runs["emd"]["emd"]
    assert emd[-1] > emd[0] and emd[-1] - emd[-10] < 0.05 * (emd[-1] - emd[0])
    # EMD moves mass to words far from "kill"; NLL ascent does not care where it goes
    far = [words.index(w) for w in ("bake", "help", "hug", "sing")]
    assert runs["emd"]["p"][-1][far].sum() > runs["nll"]["p"][-1][far].sum()
