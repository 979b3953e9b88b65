"""A token prefix every row of a batch shares, run once: its KV cache is copied to each row.

Every chat prompt starts with the same template tokens (for SmolLM2 a 24-token system turn of
a ~42-token prompt), so generation and scoring run the model over them once per call instead
of once per row. Only the layout of the work changes; each row's keys, positions and mask are
those of the plain batch (equal to float rounding: the prefix's matmuls see another batch
shape)."""

import copy
import inspect

import torch
from transformers.cache_utils import DynamicCache

from .kvcache import growing

MIN_SHARED_PREFIX = 4  # below this the cache copies cost more than the work they save


def shared_prefix_length(sequences: list[list[int]]) -> int:
    """How many leading tokens every sequence shares, leaving each at least one token of its
    own (the model needs one uncached input token per row)."""
    if not sequences:
        return 0
    first, n = sequences[0], min(len(s) for s in sequences) - 1
    for s in sequences[1:]:
        n = next((i for i in range(n) if s[i] != first[i]), n)
    return max(n, 0)


def forward_parameters(model) -> set[str]:
    """The argument names the model's ``forward`` takes (a peft wrapper, whose own ``forward``
    takes ``**kwargs``, is looked through)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(type(inner).forward).parameters)


def cache_argument(model) -> str:
    """The name ``forward`` and ``generate`` take a KV cache by: ``cache`` since transformers
    5.x renamed it, ``past_key_values`` before."""
    return "cache" if "cache" in forward_parameters(model) else "past_key_values"


@torch.no_grad()
def shared_prefix(model, sequences: list[list[int]]) -> tuple:
    """``(n, cache)``: the n leading tokens every sequence shares, run once, and their KV cache
    (one row); ``(0, None)`` for a single sequence or a prefix too short to pay."""
    n = shared_prefix_length(sequences) if len(sequences) > 1 else 0
    if n < MIN_SHARED_PREFIX:
        return 0, None
    device = next(model.parameters()).device
    out = model(input_ids=torch.tensor([sequences[0][:n]], device=device), use_cache=True)
    return n, getattr(out, "cache", None) or out.past_key_values


def cache_for_rows(model, prefix_cache, rows: int, grow: bool = False) -> dict:
    """``{cache argument: a copy of prefix_cache for rows rows}`` to pass to the model, or {}.
    ``grow`` (generation): the copy, or a new empty cache where there is no prefix, grows in
    place as tokens are added (semsafe/kvcache.py)."""
    if prefix_cache is None:
        if not grow:
            return {}
        cache = DynamicCache(config=model.config)
    else:
        cache = copy.deepcopy(prefix_cache)  # the expansion is in place; the prefix serves every batch
        cache.batch_repeat_interleave(rows)
    return {cache_argument(model): growing(cache) if grow else cache}
