"""Training batches: each step pairs retain examples with harmful ones (and refusals).

The harmful set is sampled on its own schedule, not tied to the retain index: it is walked
through in seeded random orders, one full pass after another, so every harmful example is
used and the use counts differ by at most one, whether the harmful set is smaller or larger
than the retain set. An epoch is long enough to cover the larger of the two.
"""

import math
import random

import torch
from torch.utils.data import Dataset

from .chat import build_example
from .prefix import cache_for_rows, forward_parameters, shared_prefix


def answer_ended(record) -> bool:
    """Whether a record's response really ended (a generation cut at its token limit did not)."""
    return bool((record.labels or {}).get("ended", True))


class PairedDataset(Dataset):
    """Item i: one retain example and ``harmful_per_retain`` harmful ones; ``refusal`` parts pair
    the same harmful prompts with the project's refusals (for `refusal_sft`)."""

    def __init__(self, tok, retain, harmful, harmful_per_retain, max_length, with_refusals=False,
                 seed: int = 0):
        from .data import refusal_texts

        self.retain = [build_example(tok, r.prompt, r.response, max_length, ended=answer_ended(r))
                       for r in retain]
        self.harmful = [build_example(tok, r.prompt, r.response, max_length, ended=answer_ended(r))
                        for r in harmful]
        refusals = refusal_texts() if with_refusals else []
        self.refusal = [build_example(tok, r.prompt, refusals[i % len(refusals)], max_length)
                        for i, r in enumerate(harmful)] if with_refusals else []
        self.k = harmful_per_retain
        self.seed = seed
        self._orders: dict[int, list[int]] = {}

    def __len__(self):
        if not self.harmful:
            return len(self.retain)
        return max(len(self.retain), math.ceil(len(self.harmful) / self.k))

    def harmful_indices(self, i: int) -> list[int]:
        """The harmful examples item ``i`` carries: positions i·k .. i·k+k-1 of the stream of
        seeded passes over the harmful set."""
        n = len(self.harmful)
        out = []
        for pos in range(i * self.k, (i + 1) * self.k):
            epoch, offset = divmod(pos, n)
            if epoch not in self._orders:
                order = list(range(n))
                random.Random(f"{self.seed}:{epoch}").shuffle(order)
                self._orders[epoch] = order
            out.append(self._orders[epoch][offset])
        return out

    def __getitem__(self, i):
        item = {"retain": [self.retain[i % len(self.retain)]]}
        if self.harmful:
            idx = self.harmful_indices(i)
            item["harmful"] = [self.harmful[j] for j in idx]
            if self.refusal:
                item["refusal"] = [self.refusal[j] for j in idx]
        return item


def pad_examples(examples: list[dict], pad_id: int) -> dict:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding)."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def make_collator(pad_id: int):
    def collate(items):
        return {part: pad_examples([e for item in items for e in item[part]], pad_id) for part in items[0]}

    return collate


def batches_by_length(lengths: list[int], max_rows: int, max_tokens: int = 8192) -> list[list[int]]:
    """Indices grouped into batches of similar length (little padding), each at most
    ``max_rows`` rows and ``max_tokens`` padded tokens (bounds the logits buffer)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out, current = [], []
    for i in order:
        if current and (len(current) >= max_rows or (len(current) + 1) * lengths[i] > max_tokens):
            out.append(current)
            current = []
        current.append(i)
    return out + ([current] if current else [])


def response_logits(model, batch: dict):
    """``(logits, targets)`` for a right-padded batch: logits (B, T, |V|) only at the positions
    that predict a labelled token of some row, aligned so ``logits[:, t]`` predicts
    ``targets[:, t]`` (-100 where nothing is scored).

    Prompt positions before the earliest response token never reach the output layer
    (``logits_to_keep``): for short answers after a long chat template that is most of the
    |V|-wide work, and it changes no kept value. The leading tokens every row shares run once
    (semsafe/prefix.py); for scoring only: no gradient flows through them."""
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    device = next(model.parameters()).device
    labelled = (labels != -100).any(0).nonzero().flatten()
    first = max(1, int(labelled[0])) if len(labelled) else ids.shape[1] - 1
    keep = ids.shape[1] - first + 1  # positions first-1 .. L-1
    kwargs = {"logits_to_keep": keep} if "logits_to_keep" in forward_parameters(model) else {}
    # the leading tokens every row shares (the chat template; right padding leaves them in the
    # same columns) run once, up to the first position whose logits are kept
    shared, prefix_cache = shared_prefix(model, [row[:int(n)].tolist()[:first]
                                                 for row, n in zip(ids, mask.sum(1))])
    logits = model(input_ids=ids[:, shared:].to(device), attention_mask=mask.to(device),
                   **cache_for_rows(model, prefix_cache, len(ids)), **kwargs).logits[:, -keep:]
    return logits[:, :-1], labels[:, first:].to(device)
