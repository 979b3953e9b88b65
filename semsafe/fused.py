"""The training-time EMD terms from logits, fused: softmax, cost and gradient in one chunked pass.

The plain way (``emd_to_token(logits.softmax(-1), y, cost)``) keeps the N x |V| softmax for its
backward, computes μ_P = P Ê forward and multiplies back by Ê in the backward: two
(N x |V|)·(|V| x d) products and several N x |V| buffers. Here, per chunk of rows:

- ``emd_to_token_from_logits``: c(·, y) = 1 − Ê ê_y is one product; EMD = Σ_u P(u) c(u, y); and
  the gradient d EMD / d z_u = P(u) (c(u, y) − EMD) is written straight into the one N x |V|
  buffer the backward needs, so the backward is a multiply by the upstream gradient.
- ``lower_bound_to_token_from_logits``: LB = ½‖μ_P − ê_y‖², μ_P = P Ê, and the gradient
  d LB / d z_u = P(u) (ê_u − μ_P)·(μ_P − ê_y), also kept in one buffer.

Both take float32 (or any float) logits and compute in float32 at least; the plain functions in
emd.py stay the reference, and tests check that both give the same values and gradients.
"""

import torch

from .cost import SemanticCost

DEFAULT_CHUNK = 256  # rows per pass: chunk x |V| temporaries (48 MB at |V| = 49,152)


def _emd_chunk(p, unit, targets):
    """(EMD per row, d EMD / d logits) for one chunk; ``p`` is overwritten."""
    cost = torch.addmm(torch.ones((), dtype=p.dtype, device=p.device), unit[targets], unit.T,
                       alpha=-1.0)  # c(u, y) = 1 − ê_y·ê_u
    emd = (p * cost).sum(-1)
    return emd, p.mul_(cost.sub_(emd[:, None]))  # P (c − EMD)


def _bound_chunk(p, unit, targets):
    """(½‖μ_P − ê_y‖² per row, its gradient w.r.t. the logits) for one chunk; ``p`` is overwritten."""
    mu = p @ unit
    diff = mu - unit[targets]  # μ_P − ê_y
    along = diff @ unit.T  # ê_u·(μ − ê_y)
    along.sub_((mu * diff).sum(-1, keepdim=True))
    return 0.5 * (diff * diff).sum(-1), p.mul_(along)  # P(u) (ê_u·(μ−ê_y) − μ·(μ−ê_y))


class _FusedRowTerm(torch.autograd.Function):
    """A per-row term of softmax(logits) whose gradient is computed in the forward pass, chunk
    by chunk, into the one N x |V| buffer the backward needs."""

    @staticmethod
    def forward(ctx, logits, targets, unit, chunk, chunk_fn):
        n = logits.shape[0]
        dtype = torch.promote_types(logits.dtype, torch.float32)
        values = torch.empty(n, dtype=dtype, device=logits.device)
        grad = torch.empty(logits.shape, dtype=dtype, device=logits.device)
        for s in range(0, n, chunk):
            values[s:s + chunk], grad[s:s + chunk] = chunk_fn(
                logits[s:s + chunk].to(dtype).softmax(-1), unit, targets[s:s + chunk])
        ctx.save_for_backward(grad)
        ctx.logits_dtype = logits.dtype
        return values

    @staticmethod
    def backward(ctx, upstream):
        (grad,) = ctx.saved_tensors
        return (grad * upstream[:, None]).to(ctx.logits_dtype), None, None, None, None


def _unit_for(cost: SemanticCost, logits: torch.Tensor) -> torch.Tensor:
    dtype = torch.promote_types(logits.dtype, torch.float32)
    return cost.unit_as(torch.empty(0, dtype=dtype, device=logits.device))


def emd_to_token_from_logits(logits: torch.Tensor, targets: torch.Tensor, cost: SemanticCost,
                             chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """EMD(softmax(logits), δ_targets) per row, (N, |V|) -> (N,), with a fused backward."""
    return _FusedRowTerm.apply(logits, targets, _unit_for(cost, logits), chunk, _emd_chunk)


def lower_bound_to_token_from_logits(logits: torch.Tensor, targets: torch.Tensor, cost: SemanticCost,
                                     chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """½‖μ_softmax(logits) − ê_targets‖² per row, (N, |V|) -> (N,), with a fused backward."""
    return _FusedRowTerm.apply(logits, targets, _unit_for(cost, logits), chunk, _bound_chunk)
