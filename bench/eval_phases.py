"""Where a trained run's evaluation spends its time, under the data-efficiency experiment's settings.

Copies the run folder (without its evaluation) into a temporary runs folder and evaluates the
copy with the CPU preset's evaluation settings (`experiment.eval_config`) in one process with
one thread, as each of the experiment's workers has, from an empty cache that borrows the
converted model and the trained judges. Prints the seconds of each phase (loading, generation,
the refusal and harm judges, toxicity, the perplexity passes) and their total. The run's own
folder is not touched.

    .venv/bin/python bench/eval_phases.py runs/<experiment>-emd-n10-s0 [--threads 1]
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

from semsafe.paths import cache_dir

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    config = (args.run / "config.yaml").read_text()
    split_seed = int(next((line.split(":")[1] for line in config.splitlines() if "split_seed:" in line), "0").split("#")[0])
    with tempfile.TemporaryDirectory() as tmp:
        runs, cache = Path(tmp) / "runs", Path(tmp) / "cache"
        shutil.copytree(args.run, runs / args.run.name, ignore=shutil.ignore_patterns("eval", "checkpoints"))
        cache.mkdir()
        for shared in ("models", "judges", "data"):  # the converted model, the judges, the prepared split
            if (cache_dir() / shared).exists():
                (cache / shared).symlink_to(cache_dir() / shared)
        env = {**os.environ, "SEMSAFE_RUNS": str(runs), "SEMSAFE_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
               "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
        code = DRIVER.format(threads=args.threads, split_seed=split_seed, run=args.run.name,
                             bench=str(Path(__file__).resolve().parent))
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr[-3000:])
    phases = collections.Counter(json.loads(next(line for line in proc.stdout.splitlines()
                                                 if line.startswith("PHASES "))[7:]))
    print(f"{args.run.name}: evaluation with the CPU preset's settings, {args.threads} thread(s)")
    for name, seconds in phases.most_common():
        print(f"  {name:<24} {seconds:7.1f} s")


if __name__ == "__main__":
    main()
