"""Earth Mover's Distance between next-token distributions under the semantic cost.

Three functions, one idea each (the math is derived in docs/method.md):

- ``emd_to_token(p, y, cost)``: exact EMD to a one-hot target, closed form 1 - ê_y·μ_p.
  Batched and differentiable; what the ``emd`` training objective maximises.
- ``emd_lower_bound(p, q, cost)``: ½||μ_p - μ_q||² <= EMD(p, q), by Jensen. Batched and
  differentiable, one matrix product; what the ``emd_lb`` objective maximises.
- ``emd_exact(p, q, cost)``: the linear program, solved by POT in float64 on the tokens that
  carry mass (or on each side's top-k, renormalised). For inspection and for checking the two
  above; returns the transport plan.
"""

from dataclasses import dataclass

import numpy as np
import ot
import torch

from .cost import SemanticCost
from .errors import SemsafeError

# Largest LP we hand to the solver: rows x columns of the cost block (200 MB in float64).
MAX_LP_CELLS = 25_000_000


def _token_targets(p: torch.Tensor, y) -> torch.Tensor:
    y = torch.as_tensor(y, device=p.device)
    if y.shape != p.shape[:-1]:
        raise SemsafeError(
            f"targets y have shape {tuple(y.shape)} but p has {tuple(p.shape)}; "
            "y needs one token id per distribution (the shape of p without its last axis)")
    return y


def emd_to_token(p: torch.Tensor, y: torch.Tensor, cost: SemanticCost) -> torch.Tensor:
    """Exact EMD from distributions ``p`` (..., |V|) to one-hot targets ``y`` (...) -> (...).

    With a one-hot target the only coupling sends all of p to y, so
    EMD = Σ_u p(u) c(u, y) = Σ_u p(u) - ê_y · μ_p. Writing Σ p(u) rather than 1 keeps the
    value exact for sub-normalised p too. Gradient: d/d p(u) = c(u, y).
    """
    y = _token_targets(p, y)
    target = cost.unit_as(p)[y]  # (..., d)
    return p.sum(-1) - (cost.centroid(p) * target).sum(-1)


def emd_lower_bound(p: torch.Tensor, q: torch.Tensor, cost: SemanticCost) -> torch.Tensor:
    """Centroid lower bound ½||μ_p - μ_q||² on EMD(p, q); p, q (..., |V|) -> (...).

    ``q`` may also be integer token ids (...), meaning one-hot targets. Computed as one
    product ((p - q) Ê) so it costs the same as ``emd_to_token``.
    """
    if not q.is_floating_point():
        diff = cost.centroid(p) - cost.unit_as(p)[q]
    else:
        if q.shape != p.shape:
            raise SemsafeError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
        diff = cost.centroid(p - q)
    return 0.5 * (diff * diff).sum(-1)


def emd_and_bound_to_token(p: torch.Tensor, y: torch.Tensor, cost: SemanticCost):
    """``(emd_to_token(p, y), emd_lower_bound(p, y))`` from one centroid product (the |V|-wide
    work), for reporting both per token."""
    y = _token_targets(p, y)
    return emd_and_bound_from_centroid(cost.centroid(p), p.sum(-1), y, cost)


def emd_and_bound_from_centroid(mu: torch.Tensor, mass: torch.Tensor, y: torch.Tensor, cost: SemanticCost):
    """``emd_and_bound_to_token`` from what it needs of p: its centroid μ_p (..., d) and its
    total mass Σ p (...), for callers that computed them elsewhere (generation's own steps)."""
    target = cost.unit_as(mu)[torch.as_tensor(y, device=mu.device)]
    diff = mu - target
    return mass - (mu * target).sum(-1), 0.5 * (diff * diff).sum(-1)


@dataclass
class ExactEMD:
    """The solved transport problem between two distributions, on a restricted support."""

    value: float  # Σ plan * costs
    plan: np.ndarray  # (len(row_ids), len(col_ids)) mass moved from row token to column token
    row_ids: np.ndarray  # token ids carrying p's mass that entered the LP
    col_ids: np.ndarray  # token ids carrying q's mass that entered the LP
    costs: np.ndarray  # the cost block the LP used
    top_k: int | None  # None: full supports; else each side cut to its top-k and renormalised
    mass_kept_p: float  # share of p's mass inside row_ids (1.0 unless top_k cut it)
    mass_kept_q: float

    @property
    def truncated(self) -> bool:
        return self.mass_kept_p < 1.0 - 1e-9 or self.mass_kept_q < 1.0 - 1e-9


def emd_exact(p: torch.Tensor, q: torch.Tensor, cost: SemanticCost,
              top_k: int | None = None) -> ExactEMD:
    """Exact EMD(p, q) for two distributions over the vocabulary, by linear programming.

    Rows are the tokens where p has mass and columns those where q has mass (zero-mass tokens
    move nothing, so this is the LP on the union of supports). Model distributions have full
    support, so pass ``top_k`` to keep each side's k most likely tokens, renormalised; the
    result then says how much mass was kept and the value is EMD of the truncated pair.
    """
    a, rows, kept_p = _support(p, cost, top_k, "p")
    b, cols, kept_q = _support(q, cost, top_k, "q")
    if len(rows) * len(cols) > MAX_LP_CELLS:
        raise SemsafeError(
            f"the LP would have {len(rows)} x {len(cols)} cells (over {MAX_LP_CELLS:,}); "
            "pass top_k (e.g. top_k=256) to restrict both distributions to their likeliest tokens")
    costs = cost.block(rows, cols, dtype=torch.float64).cpu().numpy()
    plan, info = ot.emd(a, b, costs, numItermax=10_000_000, log=True)
    if info.get("warning"):
        raise SemsafeError(f"the LP solver did not converge: {info['warning']}")
    return ExactEMD(float(info["cost"]), plan, rows, cols, costs, top_k, kept_p, kept_q)


def _support(dist: torch.Tensor, cost: SemanticCost, top_k: int | None, name: str):
    """(weights renormalised in float64, token ids, share of mass kept) for one distribution."""
    if dist.ndim != 1 or dist.shape[0] != cost.vocab_size:
        raise SemsafeError(
            f"{name} must be one distribution over the {cost.vocab_size}-token vocabulary, "
            f"got shape {tuple(dist.shape)}")
    w = dist.detach().double().cpu()
    if not torch.isfinite(w).all() or (w < 0).any():
        raise SemsafeError(f"{name} has negative, NaN or inf entries; it must be a probability distribution")
    total = w.sum().item()
    if abs(total - 1.0) > 1e-4:
        raise SemsafeError(f"{name} sums to {total:.6f}, not 1; pass a probability distribution (softmax of logits)")
    if top_k is not None:
        if top_k < 1:
            raise SemsafeError(f"top_k must be at least 1, got {top_k}")
        ids = torch.topk(w, min(top_k, len(w))).indices
        ids = ids[w[ids] > 0]
    else:
        ids = w.nonzero().flatten()
    ids = ids.sort().values
    weights = w[ids]
    kept = weights.sum().item() / total
    return (weights / weights.sum()).numpy(), ids.numpy(), kept
