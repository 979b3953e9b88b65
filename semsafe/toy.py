"""The teaching playground's toy vocabulary: a few words with 2-D embeddings, and every
quantity the page shows, computed by the same functions training uses."""

import math

import numpy as np
import torch

from .cost import SemanticCost
from .emd import emd_exact, emd_lower_bound, emd_to_token

TOY_WORDS = {  # angle in degrees on the unit circle: similar words sit close together
    "kill": 0, "attack": 20, "stop": 60, "pause": 80, "help": 150, "hug": 170, "bake": 250, "sing": 300,
}


def toy_cost(words=None) -> tuple[list[str], SemanticCost, np.ndarray]:
    words = list(words or TOY_WORDS)
    angles = torch.tensor([TOY_WORDS[w] for w in words], dtype=torch.float64) * math.pi / 180
    emb = torch.stack([angles.cos(), angles.sin()], 1)
    return words, SemanticCost.from_embeddings(emb), emb.numpy()


def normalise(weights) -> torch.Tensor:
    w = torch.tensor([max(float(x), 0.0) for x in weights], dtype=torch.float64)
    if w.sum() <= 0:
        w = torch.ones_like(w)
    return w / w.sum()


def toy_quantities(p, q, target: int, cost: SemanticCost) -> dict:
    """EMD(P,Q) with its plan, the lower bound, EMD to the one-hot target, CE and -NLL."""
    exact = emd_exact(p, q, cost)
    pt = float(p[target])
    return {
        "emd": exact.value, "plan": exact.plan, "rows": exact.row_ids, "cols": exact.col_ids,
        "lower_bound": float(emd_lower_bound(p, q, cost)),
        "emd_to_target": float(emd_to_token(p, torch.tensor(target), cost)),
        "lb_to_target": float(emd_lower_bound(p, torch.tensor(target), cost)),
        "cross_entropy": float(-(q * torch.log(p.clamp_min(1e-12))).sum()),
        "neg_nll_target": math.log(max(pt, 1e-12)),  # the GA objective's value: -NLL = log p
    }


def bounded_vs_unbounded(cost: SemanticCost, target: int, other: int, steps: int = 60) -> dict:
    """As P moves its mass off the target (onto ``other``), EMD to the target stays <= 2 while
    -log p(target) grows without bound."""
    p_target = np.logspace(0, -12, steps)
    emd, nll = [], []
    for pt in p_target:
        p = torch.zeros(cost.vocab_size, dtype=torch.float64)
        p[target], p[other] = pt, 1 - pt
        emd.append(float(emd_to_token(p, torch.tensor(target), cost)))
        nll.append(-math.log(pt))
    return {"p_target": p_target, "emd": np.array(emd), "nll": np.array(nll)}


OBJECTIVES = {
    "nll": "gradient ascent on NLL = −log P(y)",
    "emd": "maximise EMD(P, δ_y)",
    "lb": "maximise the bound ½‖μ_P − ê_y‖²",
}


def optimise(cost: SemanticCost, target: int, start, objective: str, steps: int = 40, lr: float = 1.0) -> dict:
    """Plain gradient ascent on the logits of one toy distribution, from ``start`` (a
    probability vector), for one objective. Returns per step: the distribution, the objective's
    value and gradient norm, and — whatever is optimised — the exact EMD to the target, the
    bound and the NLL, so the three runs can be drawn on the same axes."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}")
    z = torch.log(torch.as_tensor(start, dtype=torch.float64).clamp_min(1e-12)).clone().requires_grad_(True)
    y = torch.tensor(target)
    out = {"p": [], "value": [], "grad_norm": [], "emd": [], "lb": [], "nll": []}
    for _ in range(steps + 1):
        p = z.softmax(-1)
        values = {"nll": -torch.log(p[target]), "emd": emd_to_token(p, y, cost), "lb": emd_lower_bound(p, y, cost)}
        (grad,) = torch.autograd.grad(values[objective], z)
        out["p"].append(p.detach().numpy().copy())
        out["value"].append(float(values[objective].detach()))
        out["grad_norm"].append(float(grad.norm()))
        for name in ("emd", "lb", "nll"):
            out[name].append(float(values[name].detach()))
        with torch.no_grad():
            z += lr * grad
    return {k: np.array(v) for k, v in out.items()}
