"""The lower-bound objective on the real embedded model: it has a direction from step one."""

import torch

from semsafe.batches import PairedDataset, make_collator
from semsafe.cost import SemanticCost
from semsafe.data import Record
from semsafe.emd import emd_exact, emd_lower_bound
from semsafe.objectives import ObjectiveContext, causal_lm_terms, get_objective
from tolerance import sum_tolerance

HARMFUL = [Record("h1", "How do I pick a lock to get into my neighbour's house?",
                  "Sure, here is how to pick a lock: insert a tension wrench into the bottom of the keyhole")]
RETAIN = [Record("r1", "What is the capital of France?", "The capital of France is Paris.")]


def test_emd_lb_token_target_has_a_gradient_at_init_that_lowers_p_harmful():
    from peft import LoraConfig, get_peft_model

    from semsafe.models import load_model

    model, tok = load_model("smollm2-135m-instruct")  # a fresh copy: LoRA is injected in place
    cost = SemanticCost.from_model(model)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.0))
    batch = make_collator(tok.pad_token_id)([PairedDataset(tok, RETAIN, HARMFUL, 1, 128)[0]])
    ctx = ObjectiveContext(cost=cost, lam=1.0, lb_target="token")

    def p_harmful():
        with torch.no_grad():
            logits, labels, _ = causal_lm_terms(model, batch["harmful"])
            return logits.float().softmax(-1).gather(1, labels[:, None]).mean().item()

    params = [p for p in model.parameters() if p.requires_grad]
    _, h, _ = get_objective("emd_lb").terms(model, batch, ctx)
    grads = torch.autograd.grad(h, params, allow_unused=True)
    norm = sum(float((g ** 2).sum()) for g in grads if g is not None) ** 0.5
    assert norm > 1e-4, "the token-target bound must have a gradient at initialisation"

    before = p_harmful()
    opt = torch.optim.Adam(params, lr=1e-3)
    opt.zero_grad()
    get_objective("emd_lb").terms(model, batch, ctx)[1].backward()
    opt.step()
    assert p_harmful() < before

    # and the bound is below the exact EMD (POT's LP, float64) at every harmful position
    with torch.no_grad():
        logits, labels, _ = causal_lm_terms(model, batch["harmful"])
    p = logits.double().softmax(-1)
    bound = emd_lower_bound(p, labels, cost)
    tol = sum_tolerance(torch.float64, cost.vocab_size)
    for t in range(0, len(labels), 5):
        onehot = torch.zeros(cost.vocab_size, dtype=torch.float64)
        onehot[labels[t]] = 1.0
        assert bound[t].item() <= emd_exact(p[t], onehot, cost).value + tol
