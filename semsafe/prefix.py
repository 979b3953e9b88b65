"""A token prefix every row of a batch shares, run once: its KV cache is copied to each row.

Every chat prompt starts with the same template tokens (for SmolLM2 a 24-token system turn of
a ~42-token prompt), so generation and scoring run the model over them once per call instead
of once per row. Only the layout of the work changes; each row's keys, positions and mask are
those of the plain batch (equal to float rounding: the prefix's matmuls see another batch
shape)."""

import copy
import inspect

import torch

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


def cache_argument(model) -> str:
    """The name ``forward`` and ``generate`` take a KV cache by: ``cache`` since transformers
    5.x renamed it, ``past_key_values`` before (a peft wrapper is looked through)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(inner).forward).parameters else "past_key_values"


@torch.no_grad()
def run_prefix(model, prefix_ids: list[int]):
    """The KV cache of ``prefix_ids`` (one row), or None when the prefix is too short to pay."""
    if len(prefix_ids) < MIN_SHARED_PREFIX:
        return None
    device = next(model.parameters()).device
    out = model(input_ids=torch.tensor([prefix_ids], device=device), use_cache=True)
    return getattr(out, "cache", None) or out.past_key_values


def cache_for_rows(model, prefix_cache, rows: int) -> dict:
    """``{cache argument: a copy of prefix_cache for rows rows}`` to pass to the model, or {}."""
    if prefix_cache is None:
        return {}
    cache = copy.deepcopy(prefix_cache)  # the expansion is in place; the prefix serves every batch
    cache.batch_repeat_interleave(rows)
    return {cache_argument(model): cache}
