"""Training batches: every harmful example is used, evenly; cut answers get no end-of-turn."""

from collections import Counter

import pytest

from semsafe.batches import PairedDataset
from semsafe.chat import build_example
from semsafe.data import Record


def records(prefix, n, ended=True):
    return [Record(f"{prefix}{i}", f"prompt {prefix} {i}", f"answer {i}", labels={"ended": ended})
            for i in range(n)]


@pytest.mark.parametrize("n_retain,n_harmful,k", [(83, 100, 1), (83, 10, 1), (20, 30, 2), (5, 5, 3), (40, 7, 2)])
def test_every_harmful_example_is_used_evenly(tiny, n_retain, n_harmful, k):
    _, tok = tiny
    data = PairedDataset(tok, records("r", n_retain), records("h", n_harmful), k, 64, seed=1)
    assert len(data) == max(n_retain, -(-n_harmful // k))
    used = Counter(j for i in range(len(data)) for j in data.harmful_indices(i))
    assert set(used) == set(range(n_harmful)), "every harmful example appears in an epoch"
    assert max(used.values()) - min(used.values()) <= 1, "and each as often as the others, ±1"
    retain_used = Counter(i % n_retain for i in range(len(data)))
    assert set(retain_used) == set(range(n_retain))
    # the order depends on the seed, and the same seed gives the same batches
    other = PairedDataset(tok, records("r", n_retain), records("h", n_harmful), k, 64, seed=2)
    again = PairedDataset(tok, records("r", n_retain), records("h", n_harmful), k, 64, seed=1)
    assert [again.harmful_indices(i) for i in range(len(data))] == [data.harmful_indices(i) for i in range(len(data))]
    if n_harmful > 3:
        assert [other.harmful_indices(i) for i in range(len(data))] != [data.harmful_indices(i) for i in range(len(data))]


def test_end_of_turn_only_for_answers_that_ended(embedded):
    _, tok = embedded
    whole = build_example(tok, "Say hi", "Hello there.", 128, ended=True)
    cut = build_example(tok, "Say hi", "Hello there.", 128, ended=False)
    assert whole["labels"][-1] == tok.eos_token_id and cut["labels"][-1] != tok.eos_token_id
    assert whole["input_ids"][:-1] == cut["input_ids"]
    data = PairedDataset(tok, records("r", 2, ended=True), records("h", 2, ended=False), 1, 128)
    assert data[0]["retain"][0]["labels"][-1] == tok.eos_token_id
    assert all(h["labels"][-1] != tok.eos_token_id for h in data[0]["harmful"])


def test_generation_reports_whether_the_answer_ended(embedded):
    from semsafe.generate import generate_answers

    model, tok = embedded
    short, long_ = generate_answers(model, tok, ["Reply with one word: yes or no?", "Write a long essay about rivers."],
                                    max_new_tokens=24, progress=False)
    assert short.ended and not long_.ended


def test_shared_prefix_leaves_each_prompt_a_token_of_its_own():
    from semsafe.prefix import shared_prefix_length

    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert shared_prefix_length([[7, 8, 9], [7, 8, 9]]) == 2  # identical prompts: one token left to run
    assert shared_prefix_length([[1, 2], [3, 4]]) == 0
    assert shared_prefix_length([]) == 0


def test_the_shared_prompt_prefix_is_cached_without_changing_any_answer(embedded, monkeypatch):
    """The chat template's common tokens are run once and their KV cache copied to every batch;
    greedy answers (and whether each ended) are those of the plain left-padded batches."""
    import semsafe.generate as generate
    import semsafe.prefix as prefix

    model, tok = embedded
    prompts = ["Reply with one word: yes or no?", "Write a long essay about rivers.", "How do I bake bread?",
               "List three prime numbers.", "What is the capital of France? Answer briefly.",
               "Explain photosynthesis to a child in two sentences.", "hi"]
    encoded = [generate.prompt_ids(tok, p) for p in prompts]
    assert prefix.shared_prefix_length(encoded) >= prefix.MIN_SHARED_PREFIX  # the template's system turn
    cached = generate.generate_answers(model, tok, prompts, max_new_tokens=20, batch_size=3, progress=False)
    monkeypatch.setattr(prefix, "MIN_SHARED_PREFIX", 10**9)  # the plain layout
    plain = generate.generate_answers(model, tok, prompts, max_new_tokens=20, batch_size=3, progress=False)
    assert [str(a) for a in cached] == [str(a) for a in plain]
    assert [a.ended for a in cached] == [a.ended for a in plain]
    assert any(a.ended for a in plain) and not all(a.ended for a in plain)  # both kinds of row are covered


def test_rows_that_ended_leave_the_batch_without_changing_any_answer(embedded, monkeypatch):
    """Greedy generation drops ended rows between segments and grows its KV cache in place;
    answers (and whether each ended) are those of one ``generate`` call on a plain cache."""
    from transformers.cache_utils import DynamicLayer

    import semsafe.generate as generate
    import semsafe.kvcache as kvcache

    model, tok = embedded
    prompts = ["Reply with one word: yes or no?", "Write a long essay about rivers.", "Say OK.",
               "List three prime numbers.", "What is 2+2? Answer with the number only.",
               "Explain photosynthesis to a child in two sentences.", "hi", "Name a colour. One word."]
    dropping = generate.generate_answers(model, tok, prompts, max_new_tokens=20, batch_size=8, progress=False)
    monkeypatch.setattr(generate, "FIRST_SEGMENT", 10**9)  # one segment: no row leaves
    monkeypatch.setattr(kvcache.GrowingLayer, "update", DynamicLayer.update)  # torch.cat each step
    plain = generate.generate_answers(model, tok, prompts, max_new_tokens=20, batch_size=8, progress=False)
    assert [str(a) for a in dropping] == [str(a) for a in plain]
    assert [a.ended for a in dropping] == [a.ended for a in plain]
    assert any(a.ended for a in plain) and not all(a.ended for a in plain)  # rows left while others ran on


def test_a_growing_cache_gives_the_plain_cache_keys_through_row_drops(tiny):
    """Step by step, with rows dropped midway, attention sees exactly the keys and values of
    transformers' torch.cat cache, so logits are bitwise equal."""
    import torch
    from transformers.cache_utils import DynamicCache

    from semsafe.kvcache import GrowingLayer, growing
    from semsafe.prefix import cache_argument

    model, _ = tiny
    name = cache_argument(model)  # "past_key_values" is deprecated in transformers 5.x
    torch.manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (4, 9))
    caches = DynamicCache(config=model.config), growing(DynamicCache(config=model.config))
    assert all(type(layer) is GrowingLayer for layer in caches[1].layers)
    logits = [model(input_ids=ids, **{name: c}, use_cache=True).logits for c in caches]
    for step in range(80):  # past the first buffer's room, so it is reallocated
        if step == 5:
            kept = torch.tensor([0, 2, 3])
            for c in caches:
                c.batch_select_indices(kept)
            logits = [x[kept] for x in logits]
        nxt = logits[0][:, -1:].argmax(-1)
        logits = [model(input_ids=nxt, **{name: c}, use_cache=True).logits for c in caches]
        assert torch.equal(logits[0], logits[1])
    assert caches[0].get_seq_length() == caches[1].get_seq_length() == 9 + 80
