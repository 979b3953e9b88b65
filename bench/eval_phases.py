"""Where a trained run's evaluation spends its time, under the data-efficiency experiment's settings.

Copies the run folder (without its evaluation) into a temporary runs folder and evaluates the
copy with the CPU preset's evaluation settings (`experiment.eval_config`) in one process with
one thread, as each of the experiment's workers has, from an empty cache that borrows the
converted model and the trained judges. Prints the seconds of each phase (loading, generation,
the refusal and harm judges, toxicity, the perplexity passes) and their total. The run's own
folder is not touched. With ``--before COMMIT`` the same evaluation first runs on that commit's
code (a temporary git worktree, its own preset's settings), and the two are printed side by
side with their ratios and whether they gave the same answers and scores.

    .venv/bin/python bench/eval_phases.py runs/<experiment>-emd-n10-s0 [--threads 1] [--before COMMIT]
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DRIVER = r"""
import json, sys, time
import torch
torch.set_num_threads({threads})
sys.path.append({bench!r})
from phase_timer import phases, timed
import semsafe.evaluate as ev, semsafe.generate, semsafe.judges.fluency, semsafe.judges.learned, semsafe.judges.toxicity
from semsafe.experiment import PRESETS, eval_config
timed(semsafe.generate, "generate_answers", "generation")
timed(semsafe.judges.learned.PairJudge, "probability", "refusal + harm judges")
timed(semsafe.judges.toxicity.ToxicityJudge, "score", "toxicity judge")
timed(semsafe.judges.fluency, "response_perplexity", "perplexity passes")
cfg = eval_config(PRESETS["cpu"], {split_seed})
start = time.perf_counter()
subject = ev.load_subject(run_id={run!r}, cfg=cfg)
phases["loading the run"] = time.perf_counter() - start
ev.evaluate(subject, cfg, progress=False)
phases["total"] = time.perf_counter() - start
print("PHASES " + json.dumps(phases))
"""


def evaluate_with(code: Path, run: Path, threads: int, tmp: Path) -> tuple[collections.Counter, Path]:
    """``(seconds per phase, the evaluation folder)`` of ``run`` evaluated by the code in ``code``."""
    config = (run / "config.yaml").read_text()
    split_seed = int(next((line.split(":")[1] for line in config.splitlines() if "split_seed:" in line), "0").split("#")[0])
    from eval_speed import fresh_cache

    runs, cache = tmp / "runs", fresh_cache(tmp / "cache")  # borrows the converted model, judges, prepared data
    shutil.copytree(run, runs / run.name, ignore=shutil.ignore_patterns("eval", "checkpoints"))
    env = {**os.environ, "SEMSAFE_RUNS": str(runs), "SEMSAFE_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(code)}
    driver = DRIVER.format(threads=threads, split_seed=split_seed, run=run.name, bench=str(Path(__file__).resolve().parent))
    proc = subprocess.run([sys.executable, "-c", driver], env=env, capture_output=True, text=True, cwd=code)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    phases = collections.Counter(json.loads(next(line for line in proc.stdout.splitlines()
                                                 if line.startswith("PHASES "))[7:]))
    return phases, runs / run.name / "eval"


def main():
    from eval_speed import checked_out, compare_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--before", metavar="COMMIT", help="also time this commit's code, first, and compare")
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        sides = {}
        if args.before:
            with checked_out(args.before, Path(tmp) / "before-code") as tree:
                sides["before"] = evaluate_with(tree, args.run.resolve(), args.threads, Path(tmp) / "before")
        sides["after" if args.before else "this tree"] = evaluate_with(root, args.run.resolve(), args.threads,
                                                                       Path(tmp) / "after")
        print(f"{args.run.name}: evaluation with the CPU preset's settings, {args.threads} thread(s)"
              + (f"; before = {args.before}" if args.before else ""))
        names = sorted({k for phases, _ in sides.values() for k in phases},
                       key=lambda k: -max(phases.get(k, 0.0) for phases, _ in sides.values()))
        print(f"  {'':26s}" + "".join(f"{k:>11s}" for k in sides) + ("      ratio" if len(sides) == 2 else ""))
        for name in names:
            values = [phases.get(name, 0.0) for phases, _ in sides.values()]
            ratio = f"{values[0] / values[1]:10.2f}x" if len(values) == 2 and values[1] > 0 else ""
            print(f"  {name:<26s}" + "".join(f"{v:9.1f} s" for v in values) + ratio)
        if len(sides) == 2:
            print("same results?")
            folders = [folder for _, folder in sides.values()]
            suites = sorted(p.stem for p in folders[0].glob("*.parquet"))
            print("\n".join(compare_results(*folders, suites)))


if __name__ == "__main__":
    main()
