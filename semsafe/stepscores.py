"""Scores a greedy generation already computed, so evaluating a model on its own answers does
not run the model over them again.

Evaluating the base model asks two things of its own greedy answers: log p(token) of each
answer token (the fluency suite's perplexity under the base model) and the centroid μ_p of
each next-token distribution (the emd suite's per-token EMD to the answer's own tokens). The
forward passes of generation computed both distributions; a ``StepRecorder`` keeps, per step,
the little each suite needs of them (the top logit, its token and the log-normaliser; μ_p and
Σ p for the emd suite's prompts) and drops the |V|-wide rows.

A recording stands in for a scoring pass only where that pass would score the very same
tokens: re-encoding the stripped answer text gives the generated tokens, each of them was the
top raw logit (no logits processor changed a choice), an answer that ended did so with the
tokenizer's end-of-turn token, and the pair fits the scoring pass's length limit. Any other
answer is scored by its own pass, as before. The two differ only by float rounding: the same
sums, in another order, over a left-padded incremental pass instead of a right-padded whole one
(tests/test_stepscores.py bounds it on the embedded model).
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from .chat import prompt_ids


@dataclass
class Steps:
    """What one prompt's generation left, one entry per step."""

    top: list[int] = field(default_factory=list)  # the raw top token
    logit: list[float] = field(default_factory=list)  # its logit (float32, as scored)
    lse: list[float] = field(default_factory=list)  # log Σ exp(logits) (float32)
    centroid: list[torch.Tensor] = field(default_factory=list)  # μ_p (float64), emd prompts only
    mass: list[float] = field(default_factory=list)  # Σ p (float64), emd prompts only


class StepRecorder:
    """``on_logits`` for ``generate_answers``: records each step of each prompt's answer.

    ``centroids_for`` names the prompts whose μ_p is kept (the emd suite's); ``cost`` is the
    semantic cost that defines it."""

    def __init__(self, centroids_for=(), cost=None):
        self.centroids_for, self.cost = set(centroids_for), cost
        self.steps: dict[str, Steps] = {}
        self.used = {"perplexity": 0, "emd": 0}

    def start(self, prompts: list[str]) -> None:
        """Forget what an earlier generation of these prompts left (a prompt answered again)."""
        for p in prompts:
            self.steps.pop(p, None)

    def observe(self, prompts: list[str], logits: torch.Tensor) -> None:
        scores = logits.float()  # what the fluency pass's cross-entropy reads (bf16 is promoted)
        top_logit, top = scores.max(-1)
        lse = torch.logsumexp(scores, -1)
        rows = [j for j, p in enumerate(prompts) if p in self.centroids_for] if self.cost is not None else []
        if rows:  # as the emd suite: float64 softmax, one centroid product
            probs = logits[rows].double().softmax(-1)
            centroid, mass = self.cost.centroid(probs).cpu(), probs.sum(-1).tolist()
        kept = dict(zip(rows, range(len(rows))))
        for j, (p, t, v, z) in enumerate(zip(prompts, top.tolist(), top_logit.tolist(), lse.tolist())):
            s = self.steps.setdefault(p, Steps())
            s.top.append(t), s.logit.append(v), s.lse.append(z)
            if j in kept:
                s.centroid.append(centroid[kept[j]]), s.mass.append(mass[kept[j]])

    def _answer_tokens(self, tokenizer, prompt: str, answer, end: bool, max_length: int | None):
        """The tokens a scoring pass would score for ``answer``, if generation recorded them all."""
        steps = self.steps.get(prompt)
        if steps is None or not str(answer).strip():
            return None
        tokens = tokenizer(str(answer), add_special_tokens=False)["input_ids"]
        if end:
            if tokenizer.eos_token_id is None:
                return None
            tokens = tokens + [tokenizer.eos_token_id]
        if len(tokens) > len(steps.top) or steps.top[:len(tokens)] != tokens:
            return None  # re-encoding moved a token, or a processor chose another one
        if max_length is not None and len(prompt_ids(tokenizer, prompt)) + len(tokens) > max_length:
            return None  # the pass would cut it
        return tokens

    def perplexity(self, tokenizer, prompt: str, answer, max_length: int) -> float | None:
        """``response_perplexity`` of a generated answer, or None where a pass must score it."""
        from .judges.fluency import perplexity_from_nll

        tokens = self._answer_tokens(tokenizer, prompt, answer, getattr(answer, "ended", True), max_length)
        if tokens is None:
            return None
        s = self.steps[prompt]
        self.used["perplexity"] += 1
        return perplexity_from_nll(np.array(s.lse[:len(tokens)]) - np.array(s.logit[:len(tokens)]))

    def emd_and_bound(self, tokenizer, prompt: str, answer):
        """``(emd, bound, tokens)`` per answer token, as the emd suite computes them, or None."""
        from .emd import emd_and_bound_from_centroid

        tokens = self._answer_tokens(tokenizer, prompt, answer, end=False, max_length=None)
        s = self.steps.get(prompt)
        if tokens is None or len(s.centroid) < len(tokens):
            return None
        emd, lb = emd_and_bound_from_centroid(torch.stack(s.centroid[:len(tokens)]),
                                              torch.tensor(s.mass[:len(tokens)], dtype=torch.float64),
                                              torch.tensor(tokens), self.cost)
        self.used["emd"] += 1
        return emd, lb, tokens
