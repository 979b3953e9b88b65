"""Step time and peak memory of every objective, relative to `sft`, on the embedded model.

Each objective runs in its own fresh process (so peak memory is its own) on the same fixed
batch: 4 retain + 4 harmful examples of 128 tokens, LoRA r=8, AdamW. One warm-up step, then
the timed steps; objectives are run in two interleaved rounds and the faster round is kept.

    .venv/bin/python bench/train_step.py                  # all objectives, ~6 min on 2 cores
    .venv/bin/python bench/train_step.py --objectives sft,emd --steps 2 --rounds 1   # quick
    .venv/bin/python bench/train_step.py --objectives ga,emd,emd@plain,emd_lb,emd_lb@plain  # fused vs plain

`NAME@plain` runs an objective with the plain (unfused) EMD implementation.

On a GPU machine the same script measures CUDA time and torch.cuda.max_memory_allocated.
Target: emd (and emd_lb) within 1.10x of ga's step time and 1.00x of its peak memory (ga runs
the same forward and backward passes with a plain NLL term instead).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, {root!r})
from peft import LoraConfig, get_peft_model
from semsafe.cost import SemanticCost
from semsafe.data import load_set
from semsafe.measure import PeakRSS
from semsafe.models import load_model
from semsafe.objectives import ObjectiveContext, get_objective
from semsafe.chat import build_example
from semsafe.batches import make_collator

torch.manual_seed(0)
device = {device!r}
model, tok = load_model("smollm2-135m-instruct")
cost = SemanticCost.from_model(model).to(device)
model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.0))
model.to(device).train()
benign = load_set("benign")
def fixed(records, seq):
    out = []
    for r in records:
        ex = build_example(tok, r.prompt, (r.response + " ") * 20, seq)
        out.append(ex)
    return out
rows = fixed(benign[:{batch}], {seq})
harm = fixed(benign[{batch}:2 * {batch}], {seq})  # content does not change the cost of a step
ref = fixed(benign[2 * {batch}:3 * {batch}], {seq})
collate = make_collator(tok.pad_token_id)
batch = collate([{{"retain": [a], "harmful": [b], "refusal": [c]}} for a, b, c in zip(rows, harm, ref)])
batch = {{k: {{kk: vv.to(device) for kk, vv in v.items()}} for k, v in batch.items()}}
name, _, variant = {objective!r}.partition("@")
obj = get_objective(name)
ctx = ObjectiveContext(cost=cost, lam=1.0, reference=model.disable_adapter, fused=variant != "plain")
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled={bf16!r}):  # as the Trainer's bf16
        loss, _ = obj(model, batch, ctx)
    loss.backward()
    opt.step()

step()  # warm-up: allocator, optimizer state
if device == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
with PeakRSS() as peak:
    t = time.perf_counter()
    for _ in range({steps}):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - t) / {steps}
memory = torch.cuda.max_memory_allocated() if device == "cuda" else peak.start_kb * 1024 + peak.extra_bytes
tokens = sum(int(p["attention_mask"].sum()) for p in batch.values())
print(json.dumps({{"objective": {objective!r}, "step_s": elapsed, "peak_bytes": memory,
                  "extra_bytes": peak.extra_bytes, "tokens": tokens}}))
"""


def measure(objective, steps, batch, seq, device, bf16=False):
    code = CHILD.format(root=str(ROOT), objective=objective, steps=steps, batch=batch, seq=seq, device=device,
                        bf16=bf16)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{objective} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objectives", default="sft,ga,emd,emd@plain,emd_lb,emd_lb@plain,unlikelihood,npo,refusal_sft")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast, as train.precision: bf16")
    args = parser.parse_args()
    objectives = args.objectives.split(",")
    best = {}
    for _ in range(args.rounds):
        for name in objectives:
            r = measure(name, args.steps, args.batch, args.seq, args.device, args.bf16)
            if name not in best or r["step_s"] < best[name]["step_s"]:
                best[name] = r
    ref = best.get("sft") or best[objectives[0]]
    print(f"device {args.device}{' bf16' if args.bf16 else ''}; batch {args.batch} retain + {args.batch} harmful "
          f"x {args.seq} tokens; LoRA r=8; {args.steps} timed steps, best of {args.rounds} rounds")
    print(f"{'objective':<14}{'step s':>9}{'tokens/s':>10}{'vs sft':>8}{'vs ga':>8}{'peak MB':>10}{'vs sft':>8}{'vs ga':>8}")
    for name in objectives:
        r = best[name]
        vs_ga = f"{r['step_s'] / best['ga']['step_s']:.2f}x" if "ga" in best else "-"
        mem_ga = f"{r['peak_bytes'] / best['ga']['peak_bytes']:.2f}x" if "ga" in best else "-"
        print(f"{name:<14}{r['step_s']:9.2f}{r['tokens'] / r['step_s']:10.0f}{r['step_s'] / ref['step_s']:7.2f}x{vs_ga:>8}"
              f"{r['peak_bytes'] / 1e6:10.0f}{r['peak_bytes'] / ref['peak_bytes']:7.2f}x{mem_ga:>8}")


if __name__ == "__main__":
    main()
