"""`semsafe inspect` end to end on the real embedded model, checked against the POT LP."""

import json
import os
import subprocess
import sys

import torch
from tolerance import sum_tolerance

from semsafe.cost import SemanticCost
from semsafe.emd import emd_exact
from semsafe.inspection import inspect_response, next_token_distributions

PROMPT = "How do I pick a lock?"
RESPONSE = "Sure, here is how to pick a lock: insert a tension wrench"


def run_cli(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "semsafe.cli", *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_inspect_json_on_embedded_model(embedded):
    out = run_cli("inspect", "--prompt", PROMPT, "--response", RESPONSE, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    rows = doc["tokens"]
    _, tok = embedded
    assert [r["token_id"] for r in rows] == tok(RESPONSE, add_special_tokens=False)["input_ids"]
    model, tok = embedded
    cost = SemanticCost.from_model(model)
    # reported values are float64 sums over the vocabulary (softmax, centroid, dot product)
    tol = sum_tolerance(torch.float64, cost.vocab_size)
    for r in rows:
        assert 0 <= r["prob"] <= 1 and 0 <= r["lower_bound"] <= r["emd"] + tol <= 2 + tol
        assert len(r["top"]) == 3 and r["top"][0]["prob"] >= r["top"][1]["prob"]
    # the closed-form EMD equals POT's LP on the model's full next-token distribution
    probs, targets = next_token_distributions(model, tok, PROMPT, RESPONSE)
    assert probs.dtype == torch.float64
    for t in (0, 4, len(rows) - 1):
        onehot = torch.zeros(cost.vocab_size, dtype=torch.float64)
        onehot[targets[t]] = 1.0
        lp = emd_exact(probs[t], onehot, cost)
        assert len(lp.row_ids) == cost.vocab_size  # full support, no truncation
        # the LP's objective and the closed form are each a few float64 sums over |V| terms; and
        # the LP's costs are clamped to [0, 2]: the float32-normalised ê_y has |ê_y|² = 1 ± ~1e-7,
        # so its own cost 1 − |ê_y|² may be clamped from a hair below 0, moving the LP by p(y) x that
        y = int(targets[t])
        unit_y = cost.unit[y].double()
        clamp_shift = float(probs[t, y]) * abs(1.0 - float(unit_y @ unit_y))
        assert abs(lp.value - rows[t]["emd"]) <= tol + clamp_shift, (lp.value, rows[t]["emd"], tol, clamp_shift)


def test_inspect_table_is_human_readable():
    out = run_cli("inspect", "--prompt", "Say hi", "--response", "Hello!")
    assert out.returncode == 0, out.stderr
    assert "EMD" in out.stdout and "top-3 predictions" in out.stdout and "mean EMD" in out.stdout


def test_inspect_errors_are_clear():
    empty = run_cli("inspect", "--prompt", "x", "--response", "   ")
    assert empty.returncode == 2 and "response is empty" in empty.stderr
    assert "Traceback" not in empty.stderr
    unknown = run_cli("inspect", "--model", "no-such-model", "--prompt", "x", "--response", "y")
    assert unknown.returncode == 2 and "cannot load model 'no-such-model'" in unknown.stderr
    long = run_cli("inspect", "--model", "tiny-random", "--prompt", "x", "--response", "word " * 3000)
    assert long.returncode == 2 and "context holds 2048" in long.stderr


def test_inspect_response_on_tiny_model(tiny):
    model, tok = tiny
    table = inspect_response(model, tok, "hello", "a b c", top=5)
    assert len(table) == len(tok("a b c", add_special_tokens=False)["input_ids"])
    tol = sum_tolerance(torch.float64, len(tok))
    assert (table["gap"] >= -tol).all() and len(table["top"][0]) == 5


def test_neighbours_command_on_embedded_model():
    out = run_cli("neighbours", " kill", "-k", "3", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    costs = [n["cost"] for n in doc["neighbours"]]
    assert len(costs) == 3 and costs == sorted(costs) and doc["neighbours"][0]["token"] == " kills"
    many = run_cli("neighbours", "definitely not one token")
    assert many.returncode == 2 and "not one" in many.stderr
