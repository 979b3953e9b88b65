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
