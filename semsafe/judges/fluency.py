"""Fluency: perplexity of response tokens under a model, and diversity of generated text."""

import math
from collections import Counter

import numpy as np
import torch
from tqdm.auto import tqdm

from ..batches import pad_examples
from ..chat import build_example

NAME, VERSION = "fluency", "1"


@torch.no_grad()
def response_perplexity(model, tokenizer, prompts: list[str], responses: list[str],
                        batch_size: int = 8, max_length: int = 512, progress: bool = False) -> np.ndarray:
    """exp(mean NLL of the response tokens given the prompt), one value per pair.

    Only response tokens (and the end-of-turn token) count: the prompt is context, not text
    the model is judged on. Empty responses get NaN.
    """
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = np.full(len(prompts), np.nan)
    todo = [i for i, r in enumerate(responses) if r and r.strip()]
    for start in tqdm(range(0, len(todo), batch_size), desc="perplexity", disable=not progress):
        idx = todo[start:start + batch_size]
        # a generated answer cut at its token limit (``Answer.ended`` False) is scored without
        # the end-of-turn token it never produced
        examples = [build_example(tokenizer, prompts[i], responses[i], max_length,
                                  ended=getattr(responses[i], "ended", True)) for i in idx]
        batch = pad_examples(examples, pad)  # right padding: positions line up with labels
        ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(device)
        nll = torch.nn.functional.cross_entropy(
            shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
            ignore_index=-100, reduction="none").view(len(idx), -1)
        counts = (shift_labels != -100).sum(1).clamp_min(1)
        for row, i in enumerate(idx):
            out[i] = math.exp(min((nll[row].sum() / counts[row]).item(), 50.0))
    return out


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
