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
    keep = {"logits_to_keep": 1} if "logits_to_keep" in forward_parameters(model) else {}  # only the cache is used
    out = model(input_ids=torch.tensor([sequences[0][:n]], device=device), use_cache=True, **keep)
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


def logits_at(model, input_ids, attention_mask, keep) -> torch.Tensor:
    """Logits ``(N, |V|)`` at the positions ``keep`` (B x T, bool) marks, in row-major order, as
    ``model(...).logits[keep]`` gives them, gradients included (training uses this).

    Only kept positions reach the output layer (``logits_to_keep`` as a mask). In a right-padded
    batch with several rows, the leading tokens they all share before the first kept position
    (the chat template's system turn: 24 of the experiment's 96-token examples) run once, for one
    row, and their KV cache is repeated for every row: the gradient through it is the sum of
    the rows' as in the plain batch. What changes is that LoRA dropout draws one mask for those
    shared positions instead of one per row."""
    params = forward_parameters(model)
    kwargs = {"logits_to_keep": keep} if "logits_to_keep" in params else {}
    n = 0
    if len(input_ids) > 1 and keep.any():
        first = int(keep.any(0).nonzero()[0])  # the first position whose logits are needed
        n = shared_prefix_length([row[:int(k)].tolist()[:first + 1]
                                  for row, k in zip(input_ids, attention_mask.sum(1))])
        if n < MIN_SHARED_PREFIX or "logits_to_keep" not in params or not attention_mask[:, :n].all():
            n = 0
    if n:
        head = model(input_ids=input_ids[:1, :n], attention_mask=attention_mask[:1, :n],
                     use_cache=True, logits_to_keep=1)
        cache = getattr(head, "cache", None) or head.past_key_values
        if cache is None:  # a model that gives no cache here (e.g. under gradient checkpointing)
            n = 0
        else:
            cache.batch_repeat_interleave(len(input_ids))
            kwargs = {"logits_to_keep": keep[:, n:], cache_argument(model): cache, "use_cache": True}
    logits = model(input_ids=input_ids[:, n:], attention_mask=attention_mask, **kwargs).logits
    return logits[keep] if logits.dim() == 3 else logits  # a model that kept every position
