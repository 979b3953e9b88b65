"""The semantic cost between tokens: c(u, v) = 1 - cos(e_u, e_v).

Only the row-normalised embeddings Ê (|V| x d) are stored. Every query (a column, a
submatrix, nearest neighbours, a distribution's centroid) is a product with Ê, so the
|V| x |V| matrix (9.7 GB in float32 at |V| = 49152) is never built.

Since ê has unit norm, c(u, v) = ½ ||ê_u - ê_v||², which is what makes the centroid lower
bound on EMD valid (see docs/method.md).
"""

import logging
from dataclasses import dataclass

import torch

from .errors import SemsafeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Neighbours:
    ids: torch.Tensor  # (n, k) token ids, nearest first
    costs: torch.Tensor  # (n, k) their costs


class SemanticCost:
    """Cost between vocabulary tokens, from unit-normalised embeddings."""

    def __init__(self, unit_embeddings: torch.Tensor):
        if unit_embeddings.ndim != 2:
            raise SemsafeError(f"embeddings must be |V| x d, got shape {tuple(unit_embeddings.shape)}")
        self.unit = unit_embeddings
        self._cast = {}  # (dtype, device) -> Ê in that dtype, so float64/bf16 callers copy once

    @classmethod
    def from_embeddings(cls, embeddings: torch.Tensor) -> "SemanticCost":
        """From any |V| x d embedding matrix; rows are normalised here (a copy, no grad)."""
        embeddings = embeddings.detach()
        if embeddings.ndim != 2:
            raise SemsafeError(f"embeddings must be |V| x d, got shape {tuple(embeddings.shape)}")
        if not torch.isfinite(embeddings).all():
            raise SemsafeError("embeddings contain NaN or inf; the cost would be undefined")
        norms = embeddings.norm(dim=1, keepdim=True)
        zero = (norms.squeeze(1) == 0).nonzero().flatten()
        if len(zero):
            # e.g. a padding row initialised to zeros. Such a token keeps ê = 0, so its cost to
            # every token (itself included) is 1; the lower bound stays valid (docs/method.md).
            log.warning("%d embedding rows are all zeros (token ids %s...); their cost to every "
                        "token is 1", len(zero), zero[:5].tolist())
            norms = norms.clamp_min(1e-30)
        # float64 stays float64 (exactness checks); anything else is held in float32.
        dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
        return cls((embeddings.to(dtype) / norms.to(dtype)).contiguous())

    @classmethod
    def from_model(cls, model, which: str = "input") -> "SemanticCost":
        """From a model's input embeddings (default) or its LM-head rows (``which='output'``)."""
        if which == "input":
            weight = model.get_input_embeddings().weight
        elif which == "output":
            head = model.get_output_embeddings()
            if head is None:
                raise SemsafeError("this model has no output embedding (LM head); use which='input'")
            weight = head.weight
        else:
            raise SemsafeError(f"which must be 'input' or 'output', not {which!r}")
        return cls.from_embeddings(weight)

    @property
    def vocab_size(self) -> int:
        return self.unit.shape[0]

    @property
    def dim(self) -> int:
        return self.unit.shape[1]

    def to(self, device) -> "SemanticCost":
        return SemanticCost(self.unit.to(device))

    def unit_as(self, like: torch.Tensor) -> torch.Tensor:
        """Ê in ``like``'s dtype and device (cached)."""
        key = (like.dtype, like.device)
        if key not in self._cast:
            self._cast[key] = self.unit.to(dtype=like.dtype, device=like.device)
        return self._cast[key]

    def _ids(self, ids) -> torch.Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.unit.device)
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise SemsafeError(
                f"token ids must lie in [0, {self.vocab_size}); got {ids.min().item()}..{ids.max().item()}")
        return ids

    def column(self, y: int) -> torch.Tensor:
        """(|V|,) costs from every token to token ``y``."""
        # clamp: rounding can put 1 - ê·ê a hair outside [0, 2] (e.g. -1e-7 on the diagonal)
        return (1.0 - self.unit @ self.unit[self._ids(y)]).clamp(0.0, 2.0)

    def block(self, rows, cols, dtype: torch.dtype | None = None) -> torch.Tensor:
        """(len(rows), len(cols)) costs between two token lists, computed in ``dtype`` (default:
        the embeddings' own; the exact LP asks for float64, like every value it is compared with)."""
        a, b = self.unit[self._ids(rows)], self.unit[self._ids(cols)]
        if dtype is not None:
            a, b = a.to(dtype), b.to(dtype)
        return (1.0 - a @ b.T).clamp(0.0, 2.0)

    def submatrix(self, ids) -> torch.Tensor:
        """(k, k) costs among the tokens ``ids``."""
        return self.block(ids, ids)

    def nearest(self, ids, k: int = 10, include_self: bool = False,
                chunk: int = 256) -> Neighbours:
        """The ``k`` lowest-cost tokens for each of ``ids``, ((n, k) ids, (n, k) costs).

        Works through the query tokens in chunks so memory stays at chunk x |V|.
        """
        ids = self._ids(ids).reshape(-1)
        if not 0 < k < self.vocab_size:
            raise SemsafeError(f"k must be between 1 and {self.vocab_size - 1}, got {k}")
        out_ids, out_costs = [], []
        for start in range(0, len(ids), chunk):
            query = ids[start:start + chunk]
            sims = self.unit[query] @ self.unit.T  # (chunk, |V|)
            if not include_self:
                sims[torch.arange(len(query)), query] = -float("inf")
            top = sims.topk(k, dim=1)
            out_ids.append(top.indices)
            out_costs.append((1.0 - top.values).clamp(0.0, 2.0))
        return Neighbours(torch.cat(out_ids), torch.cat(out_costs))

    def centroid(self, p: torch.Tensor) -> torch.Tensor:
        """μ_p = Σ_u p(u) ê_u for distributions p (..., |V|) -> (..., d)."""
        if p.shape[-1] != self.vocab_size:
            raise SemsafeError(
                f"distribution has {p.shape[-1]} entries but the vocabulary has {self.vocab_size}; "
                "the cost and the model must share a tokenizer")
        return p @ self.unit_as(p)
