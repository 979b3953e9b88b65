"""The default evaluation, before vs after, side by side in one run, and where its time goes.

"Before" is an earlier commit of this repository (default: 6144186, the last one before the
evaluation was restructured), checked out into a temporary git worktree; "after" is this
working tree. Each side runs ``semsafe eval --model smollm2-135m-instruct`` with its own
defaults on the same suites, in a fresh process with an empty evaluation cache (the converted
model and the trained judges are shared, so neither side pays for them). Printed: wall time
of the whole command, time per phase (generation, learned judges, toxicity, perplexity, EMD
forward passes), the ratio, and whether both sides gave the same answers and scores. It also
times every linear layer (through ``F.linear``) and counts its multiply-adds, and measures the
machine's best float32 matrix-product rate, which together say how far the evaluation is from
the time its matrix products need on this machine at best.

    .venv/bin/python bench/eval_speed.py [--before 6144186] [--suites harmful,overalign,fluency,emd]

``--after-args`` adds options to the after side's command: ``--before HEAD --after-args
"--dtype bfloat16"`` times a bfloat16 evaluation against the float32 one of the same code, and
then also prints how far its results moved: each suite's headline metric on both sides, with
the paired interval of the difference (the same prompts on both sides).

The suites default to the four of the evaluation the issue measured (capability came later;
add it to time the current five-suite default on the after side only with --after-only).
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"

# run inside each side's process: time the phases by wrapping the functions that do the work
DRIVER = r"""
import json, sys, time
sys.path.insert(0, {code!r})
sys.path.append({bench!r})
import semsafe
assert semsafe.__file__.startswith({code!r}), semsafe.__file__
from phase_timer import phases, timed

# every linear layer (attention and MLP projections, the output layer, LoRA's factors) goes
# through F.linear: its time and multiply-adds say how much of the evaluation is matrix products
import torch
_linear = torch.nn.functional.linear
def linear(x, w, b=None):
    start = time.perf_counter()
    try:
        return _linear(x, w, b)
    finally:
        phases["linear layers (inside the phases above)"] += time.perf_counter() - start
        phases["linear GFLOP"] += 2e-9 * (x.numel() // x.shape[-1]) * w.shape[0] * w.shape[1]
torch.nn.functional.linear = linear

import semsafe.generate, semsafe.inspection, semsafe.judges.fluency, semsafe.judges.learned, semsafe.judges.toxicity
timed(semsafe.generate, "generate_answers", "generation")
timed(semsafe.judges.learned.PairJudge, "probability", "refusal + harm judges")
timed(semsafe.judges.toxicity.ToxicityJudge, "score", "toxicity judge")
timed(semsafe.judges.fluency, "response_perplexity", "perplexity (fluency, capability)")
timed(semsafe.inspection, "next_token_distributions", "EMD forward passes")
timed(semsafe.inspection, "next_token_distributions_batch", "EMD forward passes")
from semsafe.cli import main
start = time.perf_counter()
code = main({argv!r})
phases["total (in process)"] = time.perf_counter() - start
print("PHASES " + json.dumps(phases))
sys.exit(code)
"""


@contextlib.contextmanager
def checked_out(commit: str, tree: Path):
    """``commit``'s code in a temporary git worktree at ``tree``, removed afterwards."""
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(tree), commit], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)


def fresh_cache(root: Path) -> Path:
    """An empty semsafe cache that borrows the converted model and trained judges."""
    user = Path(os.environ.get("SEMSAFE_CACHE") or Path.home() / ".cache" / "semsafe")
    root.mkdir(parents=True)
    for shared in ("models", "data"):
        if (user / shared).exists():
            (root / shared).symlink_to(user / shared)
    if (user / "judges").exists():
        shutil.copytree(user / "judges", root / "judges")
    return root


def run_side(name: str, code: Path, cache: Path, suites: list[str], n: int, extra: list[str] = ()) -> dict:
    argv = ["eval", "--model", MODEL, "--n", str(n)] + [a for s in suites for a in ("--suite", s)] + list(extra)
    env = {**os.environ, "SEMSAFE_CACHE": str(cache), "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    # each side's own judge versions, trained (if that version is not cached) before the clock starts
    subprocess.run([sys.executable, "-c", "from semsafe.judges.harm import harm_judge; "
                    "from semsafe.judges.refusal import refusal_judge; harm_judge(); refusal_judge()"],
                   env=env, cwd=code, check=True, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", DRIVER.format(code=str(code), argv=argv, bench=str(Path(__file__).resolve().parent))],
                          env=env, capture_output=True, text=True, cwd=code)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
    phases = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PHASES "))[7:])
    out = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.index("PHASES ")])["out"]
    return {"wall": wall, "phases": phases, "out": Path(out)}


def peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The best float32 matrix-product rate of this machine: an n x n x n product, best of a few."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def compare_results(before: Path, after: Path, suites: list[str]) -> list[str]:
    """Same answers and same scores? One line per suite."""
    lines = []
    for suite in suites:
        a, b = pd.read_parquet(before / f"{suite}.parquet"), pd.read_parquet(after / f"{suite}.parquet")
        shared = [i for i in a["id"] if i in set(b["id"])]
        if len(shared) < len(a):  # an older commit may draw other held-out prompts (the split changed)
            lines.append(f"  {suite:10s} {len(a) - len(shared)} of {len(a)} prompts differ between the sides; "
                         f"compared on the {len(shared)} both answered")
        a = a.set_index("id").loc[shared].reset_index()
        b = b.set_index("id").loc[shared].reset_index()
        text = "harmful_answer" if suite == "emd" else "response"
        parts = []
        if text in a:
            parts.append(f"answers identical {int((a[text] == b[text]).sum())}/{len(a)}")
        judge_of = {"refusal_prob": "judge_refusal", "harm_prob": "judge_harm", "toxicity": "judge_toxicity"}
        for col in ("refusal_prob", "harm_prob", "toxicity", "emd_mean", "lb_mean"):
            judge = judge_of.get(col)
            if judge in a and judge in b and a[judge].iloc[0] != b[judge].iloc[0]:
                parts.append(f"{col}: judge changed ({a[judge].iloc[0]} -> {b[judge].iloc[0]}), not compared")
                continue
            if col in a and col in b:
                parts.append(f"{col} max |Δ| {np.nanmax(np.abs(a[col].astype(float) - b[col].astype(float))):.1e}")
        for col in ("ppl_reference", "ppl_generated_under_base"):
            if col in a and col in b:
                rel = np.abs(a[col].astype(float) / b[col].astype(float) - 1)
                parts.append(f"{col} max rel Δ {np.nanmax(rel):.1e}")
        if "picked" in a:
            parts.append(f"same choice {int((a['picked'] == b['picked']).sum())}/{len(a)}")
        lines.append(f"  {suite:10s} " + "; ".join(parts))
    return lines


# per suite: the column each prompt contributes to the suite's headline metric, and the rows that count
HEADLINES = {
    "harmful": ("harmful rate", lambda t: t["verdict"] == "harmful", lambda t: t.index == t.index),
    "overalign": ("over-refusal rate (safe prompts)", lambda t: t["verdict"] == "refused", lambda t: t["type"] == "safe"),
    "fluency": ("log perplexity of the answers (base)", lambda t: np.log(t["ppl_generated_under_base"].astype(float)),
                lambda t: t.index == t.index),
    "emd": ("EMD to the harmful answer (mean per token)", lambda t: t["emd_mean"].astype(float), lambda t: t.index == t.index),
    "capability": ("accuracy", lambda t: t["correct"].astype(float), lambda t: t.index == t.index),
}


def headline_deltas(before: Path, after: Path, suites: list[str]) -> list[str]:
    """Each suite's headline metric on both sides, and after − before on the same prompts with
    its paired interval: does the after side's evaluation reach the same conclusions?"""
    sys.path.insert(0, str(ROOT))
    from semsafe.stats import paired_delta

    lines = []
    for suite in suites:
        if suite not in HEADLINES:
            continue
        name, value, counts = HEADLINES[suite]
        a, b = (pd.read_parquet(side / f"{suite}.parquet").set_index("id") for side in (before, after))
        shared = [i for i in a.index if i in b.index]
        a, b = a.loc[shared], b.loc[shared]
        try:
            keep = np.asarray(counts(a)) & np.asarray(counts(b))
            va, vb = value(a)[keep].astype(float).to_numpy(), value(b)[keep].astype(float).to_numpy()
        except KeyError as missing:  # an older commit's rows may lack the column (e.g. no verdicts yet)
            lines.append(f"  {suite:10s} {name}: not compared, a side's rows have no {missing}")
            continue
        judges = [c for c in ("judge_harm", "judge_refusal") if c in a and c in b and a[c].iloc[0] != b[c].iloc[0]]
        if judges:
            lines.append(f"  {suite:10s} {name}: not compared, the judges differ ({', '.join(judges)})")
            continue
        d = paired_delta(va, vb, binary=suite in ("harmful", "overalign", "capability"))
        verdicts = ""
        if "verdict" in a:
            verdicts = f"; same verdict {int((a['verdict'][keep] == b['verdict'][keep]).sum())}/{int(keep.sum())}"
        lines.append(f"  {suite:10s} {name}: {np.nanmean(va):.3f} vs {np.nanmean(vb):.3f}, after − before "
                     f"{d['delta']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] (n={d['n']}"
                     + (f", McNemar exact p {d['p']:.3f}" if d["p"] is not None else "")
                     + f"; {'a difference' if d['significant'] else 'no difference shown'}){verdicts}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="6144186", help="commit to compare against")
    ap.add_argument("--suites", default="harmful,overalign,fluency,emd")
    ap.add_argument("--n", type=int, default=32, help="prompts per suite (the default is 32)")
    ap.add_argument("--after-only", action="store_true", help="time this working tree alone")
    ap.add_argument("--after-args", default="", help='more `semsafe eval` options for the after side, e.g. "--dtype bfloat16"')
    args = ap.parse_args()
    suites = args.suites.split(",")
    work = Path(tempfile.mkdtemp(prefix="semsafe-eval-speed-"))
    try:
        sides = {}
        if not args.after_only:
            with checked_out(args.before, work / "before") as tree:
                sides["before"] = run_side("before", tree, fresh_cache(work / "cache-before"), suites, args.n)
        sides["after"] = run_side("after", ROOT, fresh_cache(work / "cache-after"), suites, args.n,
                                  args.after_args.split())
        print(f"default evaluation of {MODEL}, suites {', '.join(suites)}, {args.n} prompts each, "
              f"{os.cpu_count()} CPU cores" + ("" if args.after_only else f"; before = {args.before}")
              + (f"; after with {args.after_args}" if args.after_args else ""))
        names = sorted({k for s in sides.values() for k in s["phases"]}
                       - {"total (in process)", "linear layers (inside the phases above)", "linear GFLOP"})
        print(f"  {'':36s}" + "".join(f"{k:>10s}" for k in sides) + ("     ratio" if len(sides) == 2 else ""))
        for label in ["wall (whole command)", "total (in process)", *names, "linear layers (inside the phases above)"]:
            values = [s["wall"] if label.startswith("wall") else s["phases"].get(label, 0.0) for s in sides.values()]
            ratio = f"{values[0] / values[1]:9.2f}x" if len(values) == 2 and values[1] > 0 else ""
            print(f"  {label:36s}" + "".join(f"{v:9.1f}s" for v in values) + ratio)
        after = sides["after"]["phases"]
        seconds, gflop = after.get("linear layers (inside the phases above)", 0.0), after.get("linear GFLOP", 0.0)
        if seconds:
            peak = peak_gflops()
            print(f"after: {gflop / 1000:.2f} TFLOP of matrix products in linear layers took {seconds:.1f} s "
                  f"({gflop / seconds:.0f} GFLOP/s); at this machine's best float32 rate ({peak:.0f} GFLOP/s, one large "
                  f"product) they would take {gflop / peak:.1f} s")
            if "before" in sides:
                print(f"3x faster than before means a wall time of {sides['before']['wall'] / 3:.1f} s")
        if len(sides) == 2:
            print("same results?")
            print("\n".join(compare_results(sides["before"]["out"], sides["after"]["out"], suites)))
            print("same conclusions? (headline metrics on the prompts both sides answered)")
            print("\n".join(headline_deltas(sides["before"]["out"], sides["after"]["out"], suites)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
