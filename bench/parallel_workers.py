"""Would the experiment finish sooner running two runs at once, one core each?

On 2 cores one process with 2 threads leaves a core idle whenever it runs Python between
matrix products, and small products (a decode step of 48 rows) split poorly over threads.
This times each workload twice in a row in one process with 2 threads, and then as two
1-thread processes at the same time, and prints the throughput ratio:

    .venv/bin/python bench/parallel_workers.py      # ~6 min on 2 cores

These short workloads overstate the gain on a whole experiment (model loading overlaps well,
long runs of training steps do not): bench/experiment_workers.py times the experiment itself
both ways.

Workloads: 3 `emd` training steps on the fixed batch of bench/train_step.py (model loading
included, as each experiment run loads its model) and greedy generation of 48 answers of 32
tokens at batch 48 (bench/generate.py --batched-only), the experiment's two phases.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {
    "training (3 emd steps)": [sys.executable, "bench/train_step.py", "--objectives", "emd", "--steps", "3",
                               "--rounds", "1"],
    "generation (48 answers)": [sys.executable, "bench/generate.py", "--n", "48", "--batch", "48",
                                "--max-new-tokens", "32", "--batched-only"],
}


def run(command: list[str], threads: int, copies: int) -> float:
    """Wall time of ``copies`` processes of ``command`` started together, each on ``threads``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(copies)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            sys.exit(f"{' '.join(command)} failed:\n{err.decode()[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    print(f"{os.cpu_count()} CPU cores")
    for name, command in WORKLOADS.items():
        one = run(command, 2, 1) + run(command, 2, 1)
        two = run(command, 1, 2)
        print(f"{name:26s} twice in one 2-thread process {one:6.1f} s; two 1-thread processes at once "
              f"{two:6.1f} s; throughput {one / two:.2f}x")


if __name__ == "__main__":
    main()
