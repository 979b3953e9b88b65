"""Training steps: the training forward vs the plain one, side by side.

The training forward (`objectives.causal_lm_terms_of_parts`) stacks a step's parts (retain and
harmful, or refusal) into one batch and runs the model once. It passes the answer positions
as ``logits_to_keep`` (`prefix.logits_at`), so prompt and padding positions skip the output
layer (|V| = 49,152 on the embedded model), and runs the chat template's leading tokens,
which every row shares, once, with gradients flowing through their repeated KV cache. "parts
apart" is the same with one forward per part (the training forward before the parts were
stacked); "plain" runs every row of each part in full and computes logits at every position.
This bench runs real training steps of the experiment's settings (the prepared data's retain
and harmful examples cut at 96 tokens, batch 4 + 4, LoRA r=8, AdamW, one thread as each of the
experiment's two workers has), alternating the ways on the same batches, and prints each
way's step time, the ratios, how far apart the losses and gradients are, and the ATen calls
one step issues (torch.profiler): on a GPU a small model's step costs about that many kernel
launches and dispatches, whatever the arithmetic (README, GPU).

    .venv/bin/python bench/answer_logits.py [--objectives ga,emd,npo,refusal_sft] [--steps 4] [--profile]

``--measuring`` times instead the steps that measure each term's gradient norm (λ's calibration,
and every ``train.grad_norm_every`` steps): two backward passes, one per term, after the
parts' forward stacked (before) or apart (what the trainer does now: each backward then goes
through its own part's rows), beside an ordinary step (stacked, one backward), with the largest
difference between the norms the two ways measure.

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


def arguments(doc: str):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--objectives", default="ga,emd,npo,refusal_sft")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per way and objective (even: each way goes first equally often)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--measuring", action="store_true",
                    help="time the gradient-norm-measuring steps, parts stacked vs apart (see the docstring)")
    ap.add_argument("--profile", action="store_true",
                    help="also print, per objective, the share of one stacked step's time in each of its top ATen operators")
    return ap.parse_args()


def experiment_setup(steps: int, threads: int):
    """``(model, cost, trainable parameters, batches)``: the embedded model with LoRA r=8 (dropout
    off: with it the shared prefix draws one mask for all rows) and ``steps`` batches of the
    experiment's settings (the latest prepared data, 4 + 4 examples cut at 96 tokens)."""
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(threads)
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
    batches = [collate([data[i] for i in range(4 * s, 4 * s + 4)]) for s in range(steps)]
    print(f"{folder}\n{steps} steps per way, {threads} thread(s)")
    return model, cost, [p for p in model.parameters() if p.requires_grad], batches


def timed_alternately(ways: dict, batches: list) -> tuple[dict, list]:
    """``({way: mean seconds per batch}, [{way: its result} per batch])``: each batch is run
    every way, one after the other, which goes first alternating from batch to batch, after one
    untimed pass of each way (allocator, caches), so neither pays the warm-up."""
    for way in ways:
        ways[way](batches[0])
    times, results = {way: 0.0 for way in ways}, []
    for i, batch in enumerate(batches):
        results.append({})
        for way in (list(ways) if i % 2 == 0 else list(ways)[::-1]):
            start = time.perf_counter()
            results[-1][way] = ways[way](batch)
            times[way] += time.perf_counter() - start
    return {way: t / len(batches) for way, t in times.items()}, results


def aten_calls(step, batch) -> int:
    """How many ATen operator calls one ``step(batch)`` issues (forward, backward, no optimizer)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step(batch)
    return sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))


def top_operators(step, batch, top: int = 5) -> str:
    """The operators that take most of one ``step(batch)``'s own CPU time, with their shares: on
    a CPU, how much of a step is matrix products (``aten::mm``) says whether it is compute-bound."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step(batch)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return ", ".join(f"{e.key} {e.self_cpu_time_total / total:.0%}" for e in events[:top])


def measuring_steps(objective_names: list, model, cost, params, batches) -> None:
    """The steps that measure each term's gradient norm, their parts stacked vs apart."""
    from semsafe.train import TASFTTrainer

    print(f"{'objective':<12} {'ordinary':>9} {'measuring, stacked':>19} {'measuring, apart':>17} "
          f"{'stacked/apart':>14}  max rel |Δ norm|")
    for name in objective_names:
        obj = get_objective(name)
        ctx = ObjectiveContext(cost=cost, lam=1.0, reference=model.disable_adapter)

        def ordinary(batch):
            loss, _ = obj(model, batch, ctx)
            torch.autograd.grad(loss, params)

        def measuring(stacked):
            def step(batch):
                ce, h, _ = obj.terms(model, batch, ctx, stacked=stacked)
                return TASFTTrainer._grad_norms(model, ce, h)[0]
            return step

        times, results = timed_alternately({"ordinary": ordinary, "stacked": measuring(True),
                                            "apart": measuring(False)}, batches)
        rel = max(abs(a - b) / b for r in results for a, b in zip(r["stacked"], r["apart"]))
        print(f"{name:<12} {times['ordinary']:8.2f}s {times['stacked']:18.2f}s {times['apart']:16.2f}s "
              f"{times['stacked'] / times['apart']:13.2f}x  {rel:.1e}")


def main():
    args = arguments(__doc__)
    model, cost, params, batches = experiment_setup(args.steps, args.threads)
    if args.measuring:
        return measuring_steps(args.objectives.split(","), model, cost, params, batches)
    one_at_a_time = lambda model, parts: [objectives.causal_lm_terms(model, part) for part in parts]  # noqa: E731
    forwards = {"stacked": (objectives.causal_lm_terms, objectives.causal_lm_terms_of_parts),
                "parts apart": (objectives.causal_lm_terms, one_at_a_time),
                "plain": (objectives.plain_causal_lm_terms, objectives.plain_causal_lm_terms_of_parts)}
    print(f"{'objective':<12} {'stacked':>8} {'apart':>8} {'plain':>8} {'plain/stacked':>14} {'apart/stacked':>14}"
          f"  max |Δloss|, max |Δgrad| vs plain   ATen calls stacked / apart / plain")
    for name in args.objectives.split(","):
        obj = get_objective(name)
        ctx = ObjectiveContext(cost=cost, lam=1.0, reference=model.disable_adapter)

        def step_with(way):
            def step(batch):
                objectives.causal_lm_terms, objectives.causal_lm_terms_of_parts = way
                try:
                    loss, _ = obj(model, batch, ctx)
                    return loss.detach(), torch.autograd.grad(loss, params)
                finally:
                    objectives.causal_lm_terms, objectives.causal_lm_terms_of_parts = forwards["stacked"]
            return step

        steps = {way: step_with(f) for way, f in forwards.items()}
        times, results = timed_alternately(steps, batches)
        dloss = max(float((r["stacked"][0] - r["plain"][0]).abs()) for r in results)
        dgrad = max(float((a - b).abs().max()) for r in results for a, b in zip(r["stacked"][1], r["plain"][1]))
        calls = " / ".join(f"{aten_calls(steps[way], batches[0]):,}" for way in forwards)
        a, b, c = times["stacked"], times["parts apart"], times["plain"]
        print(f"{name:<12} {a:7.2f}s {b:7.2f}s {c:7.2f}s {c / a:13.2f}x {b / a:13.2f}x  {dloss:.1e}, {dgrad:.1e}"
              f"{'':>21}{calls}")
        if args.profile:
            print(f"{'':<12} stacked step's own time by operator: {top_operators(steps['stacked'], batches[0])}")


if __name__ == "__main__":
    main()
