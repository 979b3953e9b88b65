"""The evaluation's shared work gives the results of doing each piece on its own: batched,
length-sorted perplexity and EMD forward passes equal one-at-a-time passes; one generation for
every suite gives each suite its answers; the base model's greedy answers are made once."""

import contextlib

import pandas as pd
import torch

from semsafe.evaluate import EvalConfig, Subject, evaluate
from semsafe.generate import Answer
from semsafe.inspection import next_token_distributions, next_token_distributions_batch
from semsafe.judges.fluency import response_perplexity
from semsafe.models import tiny_random_model
from tolerance import sum_tolerance

PROMPTS = ["What is the capital of France?", "Write a haiku about the sea and the wind at night.",
           "Hi", "Explain photosynthesis to a child in two sentences, please."]
ANSWERS = [Answer("Paris is the capital of France.", ended=True),
           Answer("Waves fold on the shore, the wind hums a low song, stars lean", ended=False),
           Answer("Hello! How can I help you today?", ended=True),
           Answer("Plants use sunlight to make their food.", ended=False)]


def _float64_tiny():
    model, tok = tiny_random_model()
    return model.double(), tok


def test_batched_perplexity_equals_one_at_a_time():
    model, tok = _float64_tiny()
    batched = response_perplexity(model, tok, PROMPTS, ANSWERS, batch_size=16)
    single = [response_perplexity(model, tok, [p], [a], batch_size=1)[0] for p, a in zip(PROMPTS, ANSWERS)]
    # float64 forward passes; the longest sum is the softmax over |V| (the network's own sums are shorter)
    tol = sum_tolerance(torch.float64, len(tok), chain=64)
    for b, s in zip(batched, single):
        assert abs(b / s - 1) <= tol, (b, s)


def test_batched_next_token_distributions_equal_one_at_a_time():
    model, tok = _float64_tiny()
    seen = set()
    for j, probs, targets in next_token_distributions_batch(model, tok, PROMPTS, ANSWERS, batch_size=3):
        p1, t1 = next_token_distributions(model, tok, PROMPTS[j], ANSWERS[j])
        assert torch.equal(targets, t1)
        assert (probs - p1).abs().max().item() <= sum_tolerance(torch.float64, len(tok), chain=64)
        seen.add(j)
    assert seen == set(range(len(PROMPTS)))


def test_one_generation_serves_every_suite_and_the_emd_suite(tiny, empty_cache, tmp_path, monkeypatch):
    """For the base model, the emd suite's harmful answers are the harmful suite's answers
    (one generation); for a run they come from the base model's shared answer cache, which a
    second evaluation reads instead of generating again."""
    import semsafe.generate
    model, tok = tiny
    calls = []
    real = semsafe.generate.generate_answers
    monkeypatch.setattr(semsafe.generate, "generate_answers",
                        lambda m, t, prompts, **kw: calls.append(len(prompts)) or real(m, t, prompts, **kw))
    cfg = EvalConfig(suites=["harmful", "overalign", "emd"], n_prompts=3, max_new_tokens=6, n_bootstrap=50)
    base = Subject("base:tiny", model, tok, contextlib.nullcontext, tmp_path / "base", base_spec="tiny-random")
    evaluate(base, cfg, progress=False)
    assert calls == [6]  # harmful + overalign prompts in one pass; emd reused the harmful answers
    harmful = pd.read_parquet(tmp_path / "base" / "harmful.parquet")
    emd = pd.read_parquet(tmp_path / "base" / "emd.parquet")
    assert harmful["response"].tolist() == emd["harmful_answer"].tolist()
    assert (tmp_path / "cache" / "answers").is_dir()

    # a "run" of the same base model: its own answers are generated, the base answers are not
    calls.clear()
    run = Subject("run", model, tok, contextlib.nullcontext, tmp_path / "run", base_spec="tiny-random",
                  is_base=False)
    evaluate(run, cfg, progress=False)
    assert calls == [6]
    assert pd.read_parquet(tmp_path / "run" / "emd.parquet")["harmful_answer"].tolist() == emd["harmful_answer"].tolist()
