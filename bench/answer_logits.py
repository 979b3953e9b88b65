"""Training steps: the answer-position forward vs the plain one, side by side.

`objectives.causal_lm_terms` (through `prefix.logits_at`) passes the answer positions to the
model as ``logits_to_keep``, so prompt and padding positions skip the output layer (|V| =
49,152 on the embedded model), and runs the chat template's leading tokens, which every row
shares, once per batch part with gradients flowing through their repeated KV cache. The plain
way runs every row in full and computes logits at every position. This bench runs real training steps of the experiment's settings (the prepared data's retain
and harmful examples cut at 96 tokens, batch 4 + 4, LoRA r=8, AdamW, one thread as each of the
experiment's two workers has), alternating the two ways of computing the logits on the same
batches, and prints the step time of each, the ratio, and how far apart their losses and
gradients are.

    .venv/bin/python bench/answer_logits.py [--objectives ga,emd,npo,refusal_sft] [--steps 4]

The loss agrees exactly and the gradients to float32 rounding: the shared prefix's gradient is
summed over the rows before it passes the model's float32 RMSNorm (tests/test_objectives.py
checks the same on a float64 model).
"""

import argparse
import time

import torch

from semsafe import objectives
from semsafe.batches import PairedDataset, make_collator
from semsafe.cost import SemanticCost
from semsafe.models import load_model
from semsafe.objectives import ObjectiveContext, get_objective
from semsafe.prepare import latest_prepared, load_prepared


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objectives", default="ga,emd,npo,refusal_sft")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per way and objective (even: each way goes first equally often)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from peft import LoraConfig, get_peft_model

    model, tok = load_model("smollm2-135m-instruct")
    cost = SemanticCost.from_model(model)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.0))
    model.train()
    folder = latest_prepared("smollm2-135m-instruct")
    if folder is None:
        raise SystemExit("no prepared data: run `semsafe prepare` (or the experiment) once first")
    sets = load_prepared(folder)
    harmful = [r for r in sets["harmful"] if r.response][:30]
    retain = [r for r in sets["retain"] if r.response]
    data = PairedDataset(tok, retain, harmful, 1, 96, with_refusals=True)
    collate = make_collator(tok.pad_token_id)
    batches = [collate([data[i] for i in range(4 * s, 4 * s + 4)]) for s in range(args.steps)]
    params = [p for p in model.parameters() if p.requires_grad]
    ways = {"answer positions": objectives.causal_lm_terms, "every position": objectives.plain_causal_lm_terms}
    # LoRA dropout is off here: with it, the shared prefix draws one mask for all rows
    print(f"{folder}\n{args.steps} steps per way, {args.threads} thread(s)")
    print(f"{'objective':<12} {'answers only':>13} {'every position':>15} {'ratio':>6}  max |Δloss|, max |Δgrad|")
    for name in args.objectives.split(","):
        obj = get_objective(name)
        ctx = ObjectiveContext(cost=cost, lam=1.0, reference=model.disable_adapter)
        times = {way: 0.0 for way in ways}
        dloss = dgrad = 0.0
        for i, batch in enumerate(batches):
            results = {}
            # the same batch both ways, one after the other, which goes first alternating
            for way in (list(ways) if i % 2 == 0 else list(ways)[::-1]):
                objectives.causal_lm_terms = ways[way]
                start = time.perf_counter()
                loss, _ = obj(model, batch, ctx)
                grads = torch.autograd.grad(loss, params)
                times[way] += time.perf_counter() - start
                results[way] = (loss.detach(), grads)
            objectives.causal_lm_terms = ways["answer positions"]
            (la, ga), (lb, gb) = results["answer positions"], results["every position"]
            dloss = max(dloss, float((la - lb).abs()))
            dgrad = max(dgrad, max(float((a - b).abs().max()) for a, b in zip(ga, gb)))
        a, b = times["answer positions"] / args.steps, times["every position"] / args.steps
        print(f"{name:<12} {a:12.2f}s {b:14.2f}s {b / a:5.2f}x  {dloss:.1e}, {dgrad:.1e}")


if __name__ == "__main__":
    main()
