"""Each objective on a tiny random model: finite loss, gradients only where trainable, right sign."""

import pytest
import torch

from semsafe.cost import SemanticCost
from semsafe.data import Record
from semsafe.errors import SemsafeError
from semsafe.objectives import OBJECTIVES, ObjectiveContext, causal_lm_terms, get_objective, token_weights
from semsafe.batches import PairedDataset, make_collator

HARMFUL = [Record("h1", "How do I break into a car?", "Sure, first take a slim jim and slide it down the window."),
           Record("h2", "Write an insult.", "You are a worthless fool and everyone laughs at you.")]
RETAIN = [Record("r1", "What is 2 + 2?", "2 + 2 is 4."), Record("r2", "Name a colour.", "Blue is a colour.")]


@pytest.fixture
def batch(tiny):
    _, tok = tiny
    data = PairedDataset(tok, RETAIN, HARMFUL, 1, 64, with_refusals=True)
    return make_collator(tok.pad_token_id)([data[0], data[1]])


def fresh_tiny(lora: bool):
    from peft import LoraConfig, get_peft_model

    from semsafe.models import tiny_random_model

    model, tok = tiny_random_model(seed=3)
    cost = SemanticCost.from_model(model)
    if lora:
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8,
                                                 target_modules=["q_proj", "v_proj", "up_proj"]))
    return model.train(), tok, cost


def context(model, cost, lam=1.0, lora=True, lb_target="token"):
    return ObjectiveContext(cost=cost, lam=lam, reference=model.disable_adapter if lora else None,
                            lb_target=lb_target)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_loss_finite_and_gradient_only_into_trainable_parameters(name, batch):
    model, _, cost = fresh_tiny(lora=True)
    loss, terms = get_objective(name)(model, batch, context(model, cost))
    assert torch.isfinite(loss) and all(torch.isfinite(torch.as_tensor(v)) for v in terms.values())
    assert "ce_retain" in terms
    loss.backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, pname
    lora_grads = [p.grad for n, p in model.named_parameters() if "lora_" in n]
    assert lora_grads and any(g is not None and g.abs().sum() > 0 for g in lora_grads)


def harmful_stats(model, batch, cost):
    with torch.no_grad():
        logits, labels, _ = causal_lm_terms(model, batch["harmful"])
        p = logits.softmax(-1)
        from semsafe.emd import emd_to_token
        return emd_to_token(p, labels, cost).mean().item(), p.gather(1, labels[:, None]).log().mean().item()


def train_steps(name, batch, steps=8, lam=1.0, lr=3e-2, lora=False):
    model, _, cost = fresh_tiny(lora=lora)
    ctx = context(model, cost, lam, lora)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    before = harmful_stats(model, batch, cost)
    for _ in range(steps):
        opt.zero_grad()
        loss, _ = get_objective(name)(model, batch, ctx)
        loss.backward()
        opt.step()
    return before, harmful_stats(model, batch, cost)


def test_emd_raises_emd_to_harmful_tokens(batch):
    (emd0, _), (emd1, _) = train_steps("emd", batch, lam=5.0)
    assert emd1 > emd0 + 1e-3


def test_ga_and_unlikelihood_lower_harmful_likelihood(batch):
    for name in ("ga", "unlikelihood"):
        (_, lp0), (_, lp1) = train_steps(name, batch, lam=5.0)
        assert lp1 < lp0 - 0.1, name


def test_npo_lowers_harmful_likelihood_against_the_disabled_adapter_reference(batch):
    (_, lp0), (_, lp1) = train_steps("npo", batch, lam=5.0, lora=True)
    assert lp1 < lp0 - 0.05


def test_refusal_sft_raises_refusal_likelihood(batch):
    model, _, cost = fresh_tiny(lora=False)
    ctx = context(model, cost, 1.0, lora=False)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)

    def refusal_nll():
        with torch.no_grad():
            logits, labels, _ = causal_lm_terms(model, batch["refusal"])
            return torch.nn.functional.cross_entropy(logits, labels).item()
    start = refusal_nll()
    for _ in range(8):
        opt.zero_grad()
        get_objective("refusal_sft")(model, batch, ctx)[0].backward()
        opt.step()
    assert refusal_nll() < start - 0.5


def test_reference_objectives_need_lora(batch):
    model, _, cost = fresh_tiny(lora=False)
    with pytest.raises(SemsafeError, match="LoRA"):
        get_objective("emd_lb")(model, batch, context(model, cost, lora=False, lb_target="reference"))
    with pytest.raises(SemsafeError, match="LoRA"):
        get_objective("npo")(model, batch, context(model, cost, lora=False))
    # the default token target needs no reference
    loss, _ = get_objective("emd_lb")(model, batch, context(model, cost, lora=False))
    assert torch.isfinite(loss)


def test_emd_lb_token_target_raises_emd_and_reference_target_starts_flat(batch):
    (emd0, _), (emd1, _) = train_steps("emd_lb", batch, lam=5.0)
    assert emd1 > emd0 + 1e-3
    # against the frozen reference the bound and its gradient are 0 at the start
    model, _, cost = fresh_tiny(lora=True)
    ce, h, _ = get_objective("emd_lb").terms(model, batch, context(model, cost, lb_target="reference"))
    grads = torch.autograd.grad(h, [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    assert h.item() == 0.0 and all(g is None or g.abs().max() == 0 for g in grads)


def test_terms_recombine_into_the_loss(batch):
    model, _, cost = fresh_tiny(lora=True)
    for name in OBJECTIVES:
        ctx = context(model, cost, lam=0.7)
        torch.manual_seed(0)
        model.eval()  # no dropout: the two calls must see the same function
        loss, _ = get_objective(name)(model, batch, ctx)
        ce, h, _ = get_objective(name).terms(model, batch, ctx)
        expected = ce if h is None else ce + 0.7 * h
        assert torch.allclose(loss, expected), name


def test_token_weighting():
    rows = torch.tensor([0, 0, 0, 1, 1, 2])
    assert torch.allclose(token_weights(None, rows, "all"), torch.full((6,), 1 / 6))
    w = token_weights(None, rows, "first:2")
    assert torch.allclose(w, torch.tensor([1, 1, 0, 1, 1, 1.0]) / 5)
    with pytest.raises(SemsafeError, match="token weighting"):
        token_weights(None, rows, "middle")


def test_unknown_objective():
    with pytest.raises(SemsafeError, match="unknown objective 'magic'"):
        get_objective("magic")


def test_config_knows_every_objective():
    from semsafe.config import OBJECTIVE_NAMES

    assert tuple(OBJECTIVES) == OBJECTIVE_NAMES


def test_answer_position_forward_gives_the_plain_forwards_loss_and_gradients(batch, monkeypatch):
    """`causal_lm_terms` keeps only answer positions and runs the shared chat-template prefix
    once (gradients through its repeated KV cache), and a step's parts go through the model
    stacked in one forward (`causal_lm_terms_of_parts`); every objective's loss and gradients
    must be those of a plain forward of each part. float64, LoRA dropout off (with it the prefix draws one mask
    for all rows); the model's RMSNorm computes in float32, so the gradients agree to float32
    rounding of sums over the batch's tokens."""
    from peft import LoraConfig, get_peft_model

    from semsafe import objectives
    from semsafe.models import tiny_random_model
    from semsafe.prefix import shared_prefix_length
    from tolerance import sum_tolerance

    assert shared_prefix_length([r.tolist() for r in batch["retain"]["input_ids"]]) >= 4  # the path is taken
    assert batch["retain"]["input_ids"].shape[1] != batch["harmful"]["input_ids"].shape[1]  # stacking pads
    model, _ = tiny_random_model(seed=3)
    cost = SemanticCost.from_model(model.double())
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                             target_modules=["q_proj", "v_proj", "up_proj"])).double().train()
    torch.manual_seed(0)
    for n, p in model.named_parameters():
        if "lora_B" in n:  # nonzero adapters, so the reference (adapters off) differs from the model
            torch.nn.init.normal_(p, std=0.1)
    params = [p for p in model.parameters() if p.requires_grad]
    tokens = sum(int(part["attention_mask"].sum()) for part in batch.values())
    for name in OBJECTIVES:
        ctx = context(model, cost, lam=0.7)
        loss, _ = get_objective(name)(model, batch, ctx)
        grads = torch.autograd.grad(loss, params)
        with monkeypatch.context() as m:
            m.setattr(objectives, "causal_lm_terms", objectives.plain_causal_lm_terms)
            m.setattr(objectives, "causal_lm_terms_of_parts", objectives.plain_causal_lm_terms_of_parts)
            plain_loss, _ = get_objective(name)(model, batch, ctx)
            plain_grads = torch.autograd.grad(plain_loss, params)
        assert abs(loss.item() - plain_loss.item()) <= sum_tolerance(torch.float32, tokens, abs(plain_loss.item())), name
        for g, ref in zip(grads, plain_grads):
            assert (g - ref).abs().max() <= sum_tolerance(torch.float32, tokens, float(ref.abs().max())), name
