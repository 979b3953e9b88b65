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

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from answer_logits import arguments, experiment_setup, timed_alternately  # noqa: E402  (one setup for both benches)
from semsafe.objectives import ObjectiveContext, get_objective  # noqa: E402
from semsafe.train import TASFTTrainer, known_gradient_loss  # noqa: E402


def reused(model, params, obj, batch, ctx):
    ce, h, _ = obj.terms(model, batch, ctx)
    _, _, grads = TASFTTrainer._grad_norms(model, ce, h)
    known_gradient_loss(ce, h, ctx.lam, params, grads).backward()


def third_backward(model, params, obj, batch, ctx):
    ce, h, _ = obj.terms(model, batch, ctx)
    for term in (ce, h):  # what the norms cost before: both passes keep the graph for a third
        torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    (ce + ctx.lam * h).backward()


def main():
    args = arguments(__doc__)
    model, cost, params, batches = experiment_setup(args.steps, args.threads)
    print(f"{'objective':<12} {'reused':>8} {'third backward':>15} {'ratio':>6}  max |Δgrad| / max |grad|")
    for name in args.objectives.split(","):
        obj = get_objective(name)
        ctx = ObjectiveContext(cost=cost, lam=1.0, reference=model.disable_adapter)

        def step_with(way):
            def step(batch):  # the gradients it leaves, taken off the parameters for the next step
                way(model, params, obj, batch, ctx)
                grads = [p.grad for p in params]
                for p in params:
                    p.grad = None
                return grads
            return step

        times, results = timed_alternately({"reused": step_with(reused), "third backward": step_with(third_backward)},
                                           batches)
        worst = max(max(float((a - b).abs().max()) for a, b in zip(r["reused"], r["third backward"]))
                    / max(float(g.abs().max()) for g in r["third backward"]) for r in results)
        a, b = times["reused"], times["third backward"]
        print(f"{name:<12} {a:7.2f}s {b:14.2f}s {b / a:5.2f}x  {worst:.1e}")


if __name__ == "__main__":
    main()
