"""Does the experiment finish sooner with two runs at once (``--workers 2``, one thread each)
than one at a time with both threads, and are its results the same?

Runs one small experiment of the CPU preset's settings twice, side by side in this one
invocation, each in its own runs folder: ``--workers 1`` (one process, 2 threads) and
``--workers 2`` (two processes, 1 thread each). The data and the base model's evaluation are
prepared first, outside the timing, so both sides do the same work: 4 runs (ga and emd, n=100,
seeds 0 and 1, 8 steps) trained and evaluated on 40 harmful, 40 over-alignment and 20 fluency
prompts. Prints each side's wall time, the ratio, and whether every per-prompt value is the
same (bench/same_outcomes.py's comparison).

    .venv/bin/python bench/experiment_workers.py      # ~15 min on 2 cores
"""

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from same_outcomes import keyed, matched  # noqa: E402

from semsafe.experiment import run_label  # noqa: E402

OPTIONS = ["--objectives", "ga,emd", "--sizes", "100", "--seeds", "0,1", "--steps", "8",
           "--suite-n", "harmful=40", "--suite-n", "overalign=40", "--suite-n", "fluency=20"]


def warm_up() -> None:
    """The prepared data and the base model's evaluation both sides will find in the cache."""
    from semsafe.evaluate import base_eval_dir, evaluate, evaluated_with, load_subject
    from semsafe.experiment import PRESETS, eval_config, plan
    from semsafe.prepare import default_out_dir, prepare

    design = replace(PRESETS["cpu"], objectives=["ga", "emd"], sizes=[100], seeds=[0, 1], steps=8,
                     suite_n={"harmful": 40, "overalign": 40, "fluency": 20})
    base_values, pcfg, _ = plan(design)
    if not (default_out_dir(pcfg) / "report.json").exists():
        prepare(pcfg, out_dir=default_out_dir(pcfg))
    ecfg = eval_config(design, pcfg.seed)
    if not evaluated_with(base_eval_dir(base_values["model"], ecfg), ecfg):
        evaluate(load_subject(model_spec=base_values["model"], cfg=ecfg), ecfg, progress=False)


def side(workers: int, root: Path) -> tuple[float, Path]:
    env = {**os.environ, "SEMSAFE_RUNS": str(root), "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "semsafe.cli", "experiment", "data-efficiency", *OPTIONS,
                           "--workers", str(workers)], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"--workers {workers} failed:\n{done.stderr[-3000:]}")
    return seconds, Path(done.stdout.strip().splitlines()[-1])


def main() -> None:
    print("preparing the data and the base model's evaluation (not timed) ...", flush=True)
    warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        one, out_one = side(1, Path(tmp) / "one")
        print(f"--workers 1 (1 process x 2 threads): {one:7.1f} s", flush=True)
        two, out_two = side(2, Path(tmp) / "two")
        print(f"--workers 2 (2 processes x 1 thread): {two:7.1f} s", flush=True)
        print(f"ratio (1 worker / 2 workers): {one / two:.2f}x")
        a = keyed(str(out_one / "results.csv"), str(out_one / "outcomes.csv"))
        b = keyed(str(out_two / "results.csv"), str(out_two / "outcomes.csv"))
        both, only = matched(a, b)
        print(f"per-prompt values identical: {int(both['same'].sum())} of {len(both)} ({only} in one side only)")
        losses = [pd.read_csv(o / "curves.csv") for o in (out_one, out_two)]
        for c in losses:
            c["run"] = c["run"].map(run_label)
        curves = losses[0].merge(losses[1], on=["run", "step", "name"], suffixes=(" a", " b"))
        print(f"logged training terms identical: {int((curves['value a'] == curves['value b']).sum())} of "
              f"{len(curves)}")


if __name__ == "__main__":
    main()
