"""Steps that measure each term's gradient norm: reusing ∇CE + λ∇H vs a third backward.

With ``lambda_mode: ratio`` the trainer measures ||∇CE|| and ||∇H|| on the calibration steps (4)
and every ``train.grad_norm_every`` steps, one backward pass per term. It now updates with
∇CE + λ∇H from those two passes (``train.KnownGradient``); before, a third backward of
CE + λH followed. This bench times such a step both ways on the embedded model, with the
experiment's batches (prepared data cut at 96 tokens, batch 4 + 4, LoRA r=8, one thread as
each of the experiment's two workers has), the same batches each way, which goes first
alternating, and prints the step time of each, the ratio and how far apart the gradients are.

    .venv/bin/python bench/norm_steps.py [--objectives ga,emd,npo,refusal_sft] [--steps 4]
"""

import argparse
import time

import torch

from semsafe.batches import PairedDataset, make_collator
from semsafe.cost import SemanticCost
from semsafe.models import load_model
from semsafe.objectives import ObjectiveContext, get_objective
from semsafe.prepare import latest_prepared, load_prepared
from semsafe.train import KnownGradient, TASFTTrainer, _combine


def reused(model, params, obj, batch, ctx):
    ce, h, _ = obj.terms(model, batch, ctx)
    _, _, (g_ce, g_h) = TASFTTrainer._grad_norms(model, ce, h)
    KnownGradient.apply((ce + ctx.lam * h).detach(), [_combine(a, b, ctx.lam) for a, b in zip(g_ce, g_h)],
                        *params).backward()


def third_backward(model, params, obj, batch, ctx):
    ce, h, _ = obj.terms(model, batch, ctx)
    for term in (ce, h):  # what the norms cost before: both passes keep the graph for a third
        torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    (ce + ctx.lam * h).backward()


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
    ways = {"reused": reused, "third backward": third_backward}
    print(f"{folder}\n{args.steps} steps per way, {args.threads} thread(s)")
    print(f"{'objective':<12} {'reused':>8} {'third backward':>15} {'ratio':>6}  max |Δgrad| / max |grad|")
    for name in args.objectives.split(","):
        obj = get_objective(name)
        ctx = ObjectiveContext(cost=cost, lam=1.0, reference=model.disable_adapter)
        times = {way: 0.0 for way in ways}
        worst = 0.0
        for i, batch in enumerate(batches):
            grads = {}
            for way in (list(ways) if i % 2 == 0 else list(ways)[::-1]):
                start = time.perf_counter()
                ways[way](model, params, obj, batch, ctx)
                times[way] += time.perf_counter() - start
                grads[way] = [p.grad.clone() for p in params]
                for p in params:
                    p.grad = None
            size = max(float(g.abs().max()) for g in grads["third backward"])
            worst = max(worst, max(float((a - b).abs().max()) for a, b in zip(*grads.values())) / size)
        a, b = times["reused"] / args.steps, times["third backward"] / args.steps
        print(f"{name:<12} {a:7.2f}s {b:14.2f}s {b / a:5.2f}x  {worst:.1e}")


if __name__ == "__main__":
    main()
