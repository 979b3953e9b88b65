"""The experiment's stage order, replayed on a finished experiment's own stage times.

Reads each run's training time (run folder created -> adapter saved) and evaluation time
(adapter saved -> eval/summary.json written; where the evaluation waited for a worker, from
its eval_config.json, written once it began) from the file times of an experiment that ran
with two or more workers, and the base model's evaluation time from when the pool started to
when the next run could start (the order of experiments before `StagePlan`). Then it replays two orders on those times with the experiment's
worker count: one task per run, training then evaluation, in plan order (how experiments ran
before `StagePlan`; the replay should land near the measured time, which checks the replay),
and `semsafe.experiment.StagePlan` (the order the experiment uses now). It prints the measured
time, both replays and the bound no order can beat (all stage time over the workers). The
times of stages are taken as they were: a replay does not model two stages slowing each other
down differently in another order.

    .venv/bin/python bench/schedule.py runs/experiments/data-efficiency-<time>
"""

import argparse
import heapq
import json
import time
from pathlib import Path

from semsafe.experiment import StagePlan
from semsafe.runs import runs_dir


def stage_times(experiment: Path) -> tuple[float, float, list, int]:
    """``(minutes before the pool started, base evaluation minutes, [(train, eval) minutes per run
    in plan order], workers)``."""
    meta = json.loads((experiment / "meta.json").read_text())
    began = time.mktime(time.strptime(experiment.name.removeprefix("data-efficiency-"), "%Y%m%d-%H%M%S"))
    runs = []
    for folder in runs_dir().glob(f"{experiment.name}-*"):
        created = (folder / "config.yaml").stat().st_mtime
        trained = (folder / "adapter" / "adapter_model.safetensors").stat().st_mtime
        scoring = (folder / "eval" / "eval_config.json").stat().st_mtime  # written once the model is loaded
        evaluated = (folder / "eval" / "summary.json").stat().st_mtime
        # under StagePlan an evaluation may wait in the queue after its training: then it is timed
        # from its own start (without the few seconds of loading the model)
        began_eval = trained if scoring - trained < 60 else scoring
        runs.append((created, (trained - created) / 60, (evaluated - began_eval) / 60))
    runs.sort()
    workers = meta.get("workers", 1)
    if workers < 2:
        raise SystemExit("this experiment ran one stage at a time: its file times do not say how long the base model took")
    pool_start = runs[0][0]
    base = (runs[workers - 1][0] - pool_start) / 60  # the base model held a worker until then
    return (pool_start - began) / 60, base, [(t, e) for _, t, e in runs], workers


def replay(base: float, runs: list, workers: int, staged: bool) -> float:
    """Minutes from the pool's start to the last stage's end."""
    tasks = [("base", None, None, None)] + [("run", None, None, None)] * len(runs)
    minutes = {(0, "eval"): base}
    for i, (train, evaluate) in enumerate(runs, start=1):
        minutes[i, "train"], minutes[i, "eval"] = train, evaluate
    if staged:
        plan = StagePlan(tasks, workers)
    else:  # one task per run, in order: its training and evaluation back to back
        order = [(i, "whole") for i in range(len(tasks))]
        minutes.update({(i, "whole"): minutes.get((i, "train"), 0) + minutes[i, "eval"] for i in range(len(tasks))})
    clock, running = 0.0, []
    while True:
        while len(running) < workers:
            item = plan.pop() if staged else (order.pop(0) if order else None)
            if item is None:
                break
            heapq.heappush(running, (clock + minutes[item], item))
        if not running:
            return clock
        clock, (index, stage) = heapq.heappop(running)
        if staged:
            plan.done(index, stage, None, True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", type=Path)
    args = ap.parse_args()
    before, base, runs, workers = stage_times(args.experiment)
    measured = json.loads((args.experiment / "meta.json").read_text()).get("minutes")
    work = base + sum(t + e for t, e in runs)
    print(f"{args.experiment.name}: {len(runs)} runs, {workers} workers; {before:.1f} min before the pool "
          f"started (prepare); stage time {work:.1f} min in all (training {sum(t for t, _ in runs):.1f}, "
          f"evaluation {sum(e for _, e in runs) + base:.1f} with the base model's {base:.1f})")
    print(f"measured (meta.json)                      {measured:6.1f} min")
    print(f"replayed, one task per run, in plan order {before + replay(base, runs, workers, False):6.1f} min")
    print(f"replayed, StagePlan                       {before + replay(base, runs, workers, True):6.1f} min")
    print(f"no order can beat                         {before + work / workers:6.1f} min")


if __name__ == "__main__":
    main()
