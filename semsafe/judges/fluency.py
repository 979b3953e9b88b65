"""Fluency: perplexity of response tokens under a model, and diversity of generated text."""

import math
from collections import Counter

import numpy as np
import torch
from tqdm.auto import tqdm

from ..batches import batches_by_length, pad_examples, response_logits
from ..chat import build_example

NAME, VERSION = "fluency", "1"
MAX_LENGTH = 512  # tokens of prompt + response a perplexity pass reads; longer pairs lose their end


@torch.no_grad()
def response_perplexity(model, tokenizer, prompts: list[str], responses: list[str],
                        batch_size: int = 16, max_length: int = MAX_LENGTH, progress: bool = False) -> np.ndarray:
    """exp(mean NLL of the response tokens given the prompt), one value per pair.

    Only response tokens (and the end-of-turn token) count: the prompt is context, not text
    the model is judged on. Empty responses get NaN. Pairs are batched by length and only the
    positions that predict response tokens go through the output layer.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = np.full(len(prompts), np.nan)
    todo = [i for i, r in enumerate(responses) if r and r.strip()]
    # a generated answer cut at its token limit (``Answer.ended`` False) is scored without
    # the end-of-turn token it never produced
    examples = [build_example(tokenizer, prompts[i], responses[i], max_length,
                              ended=getattr(responses[i], "ended", True)) for i in todo]
    groups = batches_by_length([len(e["input_ids"]) for e in examples], batch_size)
    for group in tqdm(groups, desc="perplexity", disable=not progress):
        logits, targets = response_logits(model, pad_examples([examples[j] for j in group], pad))
        # bf16 logits are scored in float32; float64 stays float64
        nll = torch.nn.functional.cross_entropy(
            logits.to(torch.promote_types(logits.dtype, torch.float32)).reshape(-1, logits.shape[-1]), targets.reshape(-1),
            ignore_index=-100, reduction="none").view(len(group), -1)
        for row, j in enumerate(group):
            out[todo[j]] = perplexity_from_nll(nll[row][targets[row] != -100].tolist())
    return out


def perplexity_from_nll(nll) -> float:
    """exp(mean NLL), capped at exp(50) so a degenerate answer stays a finite number."""
    return math.exp(min(float(np.mean(nll)), 50.0))


def _words(text: str) -> list[str]:
    return (text or "").lower().split()


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Unique n-grams / all n-grams, pooled over the texts (1.0 = no n-gram repeats)."""
    grams = [tuple(w[i:i + n]) for w in map(_words, texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def repetition_rate(text: str, n: int = 4) -> float:
    """Share of a text's n-grams that repeat an earlier n-gram of the same text (0 = none;
    degenerate loops push it towards 1)."""
    w = _words(text)
    grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(c - 1 for c in counts.values()) / len(grams)
