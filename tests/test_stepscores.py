"""Scores read off a greedy generation equal the scoring passes they replace (to float32
rounding of the network's sums), and an answer those passes would score differently gets its
own pass."""

import contextlib

import pandas as pd
import torch

from semsafe.cost import SemanticCost
from semsafe.emd import emd_and_bound_to_token
from semsafe.evaluate import EvalConfig, Subject, evaluate, suite_prompts
from semsafe.generate import generate_answers
from semsafe.inspection import next_token_distributions_batch
from semsafe.judges.fluency import MAX_LENGTH, response_perplexity
from semsafe.stepscores import StepRecorder
from tolerance import sum_tolerance

HIDDEN = 576  # the embedded model's width: its longest sums before the output layer


def _ppl_tolerance(value: float) -> float:
    # the two passes add the same float32 terms in other orders, layer after layer
    return sum_tolerance(torch.float32, HIDDEN, value, chain=8)


def test_generation_scores_its_answers_as_a_second_pass_would(embedded):
    model, tok = embedded
    cfg = EvalConfig()
    prompts = [r.prompt for r in suite_prompts("harmful", cfg)[:4]] + [r.prompt for r in suite_prompts("fluency", cfg)[:4]]
    cost = SemanticCost.from_model(model)
    steps = StepRecorder(prompts, cost)
    answers = generate_answers(model, tok, prompts, max_new_tokens=24, batch_size=8, progress=False,
                               on_logits=lambda idx, logits: steps.observe([prompts[i] for i in idx], logits))
    passes = response_perplexity(model, tok, prompts, answers)
    distributions = {j: (p, t) for j, p, t in next_token_distributions_batch(model, tok, prompts, answers)}
    read = 0
    for j, (prompt, answer) in enumerate(zip(prompts, answers)):
        ppl = steps.perplexity(tok, prompt, answer, MAX_LENGTH)
        scored = steps.emd_and_bound(tok, prompt, answer)
        if ppl is None:  # re-encoding the answer moved a token: a pass scores it
            continue
        read += 1
        assert abs(ppl - passes[j]) <= _ppl_tolerance(passes[j]), (ppl, passes[j])
        emd, lb, tokens = scored
        probs, targets = distributions[j]
        assert tokens == targets.tolist()
        ref_emd, ref_lb = emd_and_bound_to_token(probs, targets, cost)
        atol = sum_tolerance(torch.float32, HIDDEN, magnitude=2.0, chain=8)  # EMD and bound lie in [0, 2]
        assert torch.allclose(emd, ref_emd, rtol=0, atol=atol)
        assert torch.allclose(lb, ref_lb, rtol=0, atol=atol)
    assert read >= len(prompts) // 2, read  # most answers re-encode to the tokens generated


def test_an_answer_whose_tokens_generation_did_not_choose_gets_its_own_pass(tiny):
    """A logits processor (or re-encoding) that makes the scored tokens differ from the raw
    top tokens must not be scored from the recording."""
    _model, tok = tiny
    answer = "Hello there"
    ids = tok(answer, add_special_tokens=False)["input_ids"]
    vocab = len(tok)
    steps = StepRecorder()
    for chosen in ids:
        logits = torch.zeros(1, vocab)
        logits[0, chosen] = 5.0
        steps.observe(["p"], logits)
    steps.observe(["p"], torch.zeros(1, vocab).index_fill_(1, torch.tensor([tok.eos_token_id]), 5.0))
    expected = torch.tensor([5.0]).exp() / (torch.tensor([5.0]).exp() + vocab - 1)
    rtol = sum_tolerance(torch.float32, vocab, chain=2)  # a float32 log-sum-exp over |V|
    assert abs(steps.perplexity(tok, "p", answer, MAX_LENGTH) * expected.item() - 1) <= rtol

    other = StepRecorder()
    for chosen in [ids[0] + 1, *ids[1:], tok.eos_token_id]:  # a processor picked the first token
        other.observe(["p"], torch.zeros(1, vocab).index_fill_(1, torch.tensor([chosen]), 5.0))
    assert other.perplexity(tok, "p", answer, MAX_LENGTH) is None
    assert other.perplexity(tok, "unseen prompt", answer, MAX_LENGTH) is None
    assert steps.perplexity(tok, "p", answer, max_length=2) is None  # a pass would cut the pair


def test_the_base_models_evaluation_reads_its_scores_off_generation(embedded, empty_cache, tmp_path, monkeypatch):
    """The same evaluation with the recorder and without it (every answer through its own
    pass): the same answers, the same scores to float32 rounding; most read off generation."""
    import semsafe.evaluate as ev

    model, tok = embedded
    cfg = EvalConfig(suites=["fluency", "emd"], n_prompts=4, max_new_tokens=16, n_bootstrap=50)
    with_steps = evaluate(Subject("base:test", model, tok, contextlib.nullcontext, tmp_path / "a"), cfg,
                          progress=False)
    used = with_steps["scored_from_generation"]
    assert used["perplexity"] >= 2 and used["emd"] >= 2, used
    monkeypatch.setattr(ev, "step_recorder", lambda *a: None)
    without = evaluate(Subject("base:test", model, tok, contextlib.nullcontext, tmp_path / "b"), cfg,
                       progress=False)
    assert "scored_from_generation" not in without
    for suite, text in (("fluency", "response"), ("emd", "harmful_answer")):
        a, b = (pd.read_parquet(tmp_path / side / f"{suite}.parquet") for side in ("a", "b"))
        assert a[text].tolist() == b[text].tolist()
    a, b = (pd.read_parquet(tmp_path / side / "fluency.parquet") for side in ("a", "b"))
    for x, y in zip(a["ppl_generated_under_base"], b["ppl_generated_under_base"]):
        assert abs(x - y) <= _ppl_tolerance(y), (x, y)
    # a comparison of the two (the same answers) finds no difference, let alone an effect: the
    # rounding of one path against the other, however consistent its sign, is not a change
    from semsafe.compare import paired_deltas

    deltas = paired_deltas(["a", "b"], {"a": tmp_path / "a", "b": tmp_path / "b"})
    for metric in ("ppl_generated_under_base", "log_ppl_generated_under_base", "repetition"):
        d = deltas[("fluency", metric, "b")]
        assert d["delta"] == d["low"] == d["high"] == 0 and not d["significant"], (metric, d)
    a, b = (pd.read_parquet(tmp_path / side / "emd.parquet") for side in ("a", "b"))
    atol = sum_tolerance(torch.float32, HIDDEN, magnitude=2.0, chain=8)
    for col in ("emd_mean", "lb_mean"):
        assert (a[col] - b[col]).abs().max() <= atol
    assert a["tokens"].map(list).tolist() == b["tokens"].map(list).tolist()
