"""The fused EMD terms give the plain reference's values and gradients (float64 exactly up to
rounding; float32 within a tolerance derived from the sum length)."""

import pytest
import torch

from semsafe.cost import SemanticCost
from semsafe.emd import emd_lower_bound, emd_to_token
from semsafe.fused import emd_to_token_from_logits, lower_bound_to_token_from_logits
from tolerance import sum_tolerance

PAIRS = [(emd_to_token_from_logits, emd_to_token), (lower_bound_to_token_from_logits, emd_lower_bound)]


def setup(v, d, n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    cost = SemanticCost.from_embeddings(torch.randn(v, d, generator=g, dtype=torch.float64))
    logits = (3 * torch.randn(n, v, generator=g, dtype=torch.float64)).to(dtype)
    targets = torch.randint(v, (n,), generator=g)
    return cost, logits, targets


@pytest.mark.parametrize("fused,plain", PAIRS)
@pytest.mark.parametrize("chunk", [1, 3, 256])
def test_float64_values_and_gradients_match_the_reference(fused, plain, chunk):
    cost, logits, targets = setup(40, 6, 7, torch.float64)
    weights = torch.rand(7, dtype=torch.float64)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    va = fused(a, targets, cost, chunk=chunk)
    vb = plain(b.softmax(-1), targets, cost)
    (va * weights).sum().backward()
    (vb * weights).sum().backward()
    tol = sum_tolerance(torch.float64, 40, magnitude=2.0)
    assert torch.allclose(va, vb, rtol=0, atol=tol)
    assert torch.allclose(a.grad, b.grad, rtol=0, atol=tol)
    assert torch.autograd.gradcheck(lambda z: fused(z, targets, cost, chunk=chunk), (logits.clone().requires_grad_(True),))


@pytest.mark.parametrize("fused,plain", PAIRS)
def test_float32_matches_the_float64_reference_at_vocabulary_scale(fused, plain):
    v = 49152
    cost, logits, targets = setup(v, 16, 6, torch.float32, seed=1)
    a = logits.clone().requires_grad_(True)
    b = logits.double().requires_grad_(True)
    va = fused(a, targets, cost)
    vb = plain(b.softmax(-1), targets, cost)
    va.sum().backward()
    vb.sum().backward()
    assert va.dtype == torch.float32 and a.grad.dtype == torch.float32
    # float32 sums over |V| terms against float64 ones: the rounding bound of that sum length
    assert torch.allclose(va.double(), vb, rtol=0, atol=sum_tolerance(torch.float32, v, magnitude=2.0))
    assert torch.allclose(a.grad.double(), b.grad, rtol=0, atol=sum_tolerance(torch.float32, v, magnitude=2.0))


def test_fused_objective_equals_plain_objective_on_a_tiny_model():
    """The `emd` and `emd_lb` objectives with fused=True and fused=False: same loss, same
    gradients on every LoRA weight (float64 model)."""
    from peft import LoraConfig, get_peft_model

    from semsafe.batches import PairedDataset, make_collator
    from semsafe.data import Record
    from semsafe.models import tiny_random_model
    from semsafe.objectives import ObjectiveContext, get_objective

    model, tok = tiny_random_model(seed=5)
    model = model.double()
    cost = SemanticCost.from_model(model)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                             target_modules=["q_proj", "v_proj"], init_lora_weights=False)).double()
    data = PairedDataset(tok, [Record("r", "What is 2 + 2?", "It is 4.")],
                         [Record("h", "Insult me.", "You are a worthless fool.")], 1, 64)
    batch = make_collator(tok.pad_token_id)([data[0]])
    for name in ("emd", "emd_lb"):
        grads, losses = [], []
        for fused in (True, False):
            model.zero_grad()
            loss, _ = get_objective(name)(model, batch, ObjectiveContext(cost=cost, lam=0.7, fused=fused))
            loss.backward()
            losses.append(loss.detach())
            grads.append([p.grad.clone() for p in model.parameters() if p.requires_grad])
        tol = sum_tolerance(torch.float64, cost.vocab_size, magnitude=2.0)
        assert torch.allclose(losses[0], losses[1], rtol=0, atol=tol), name
        # a LoRA weight's gradient sums over every labelled token and, through the softmax and
        # the cost, over the vocabulary: the float64 bound for that many terms of its size
        n_terms = cost.vocab_size * int((batch["harmful"]["labels"] != -100).sum() + (batch["retain"]["labels"] != -100).sum())
        for g1, g2 in zip(*grads):
            gtol = sum_tolerance(torch.float64, n_terms, magnitude=float(g2.abs().max()))
            assert torch.allclose(g1, g2, rtol=0, atol=gtol), name
