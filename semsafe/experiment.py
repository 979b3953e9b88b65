"""`semsafe experiment data-efficiency`: the paper's claim in miniature.

Objectives x harmful-set sizes x seeds on the embedded model, each at equal strength (λ
calibrated to one ratio of gradient norms, ``lambda_mode: ratio``), each run evaluated on the
held-out side of the one data split the experiment uses, against the base model evaluated with
the same settings. A design is a preset (``cpu``: aimed at 90 minutes on 2 cores, measured at
86 to 144 one run at a time, 97.6 and 103.6 two at a time, and 68.6 in session 16 after its
lighter evaluation and measuring steps (about 89 estimated on session 14's slower cores; 46.1
on session 17's faster ones), the cores' speed varying: docs/results.md; ``gpu``: the same with three seeds, capability and longer answers, aimed at 8
minutes, measured at about 23 before its step was stacked: README) that single options can
override. On a CPU two runs train and evaluate at once, each in its own process with half the
threads; on a GPU up to four share it (``workers``). A run's training and its evaluation are
separate stages, handed to workers in ``StagePlan``'s order.
Objectives that train without the harmful set (sft) are trained once per seed and stand at
every size. Writes into ``runs/experiments/data-efficiency-<time>/``: ``results.csv`` (one row
per run and size, with paired deltas against the base), ``versus.csv`` (TA-SFT against each
baseline, paired by seed and prompt), ``outcomes.csv`` (each run's per-prompt values behind
versus.csv, with a key of each answer: the same answer counts as the same value), ``curves.csv``
(each run's logged terms per step),
``results.md`` and ``report.html`` (the tables and the figures), ``workers/`` (each worker
process's output). ``resume=FOLDER`` continues an interrupted experiment with its recorded
design: finished runs are not trained or evaluated again.
"""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .config import apply_overrides, config_from_dict, load_config
from .errors import SemsafeError
from .runs import Run, runs_dir
from .store import atomic_write_json, atomic_write_text

# (suite, metric, short name, direction in which it is better)
METRICS = [("harmful", "harmful_rate", "harmful", "lower"),
           ("harmful", "refusal_rate", "refusal", "higher"),
           ("harmful", "degenerate_rate", "degenerate", "lower"),
           ("overalign", "over_refusal_rate", "over-refusal", "lower"),
           ("overalign", "unsafe_refusal_rate", "unsafe refused", "higher"),
           ("fluency", "log_ppl_generated_under_base", "log ppl (base, generated)", "lower"),
           ("fluency", "ppl_generated_under_base", "ppl (base, generated)", "lower"),
           ("fluency", "distinct_2", "distinct-2", "higher"),
           ("capability", "accuracy", "capability", "higher"),
           ("fluency", "ppl_reference", "ppl (reference, secondary)", "lower")]
DELTA_METRICS = [m for m in METRICS if m[1] not in ("distinct_2",)]  # distinct-2 is pooled: no pairs
# fluency by the mean log-perplexity: a mean of perplexities is one degenerate answer's value
VERSUS_METRICS = [m for m in DELTA_METRICS if m[1] in ("harmful_rate", "over_refusal_rate",
                                                        "log_ppl_generated_under_base")]
EXPERIMENT_OVERRIDES = ["train.save_steps=1000"]
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tasft-emd.yaml"  # λ mode ratio 1.0
METHOD = "emd"  # TA-SFT; versus.csv compares it with every other objective


@dataclass
class Design:
    objectives: list = field(default_factory=lambda: ["sft", "ga", "npo", "emd", "emd_lb", "refusal_sft"])
    sizes: list = field(default_factory=lambda: [10, 30, 100])
    seeds: list = field(default_factory=lambda: [0, 1])
    steps: int = 21
    suites: list = field(default_factory=lambda: ["harmful", "overalign", "fluency"])
    # ≥100 held-out harmful prompts (AdvBench's held-out half and HarmBench, interleaved), every
    # over-alignment probe (153 safe, 52 unsafe contrasts), 50 fluency prompts
    suite_n: dict = field(default_factory=lambda: {"harmful": 100, "overalign": None, "fluency": 50})
    extra_harmful: list = field(default_factory=lambda: ["harmbench"])
    eval_prompts: int | None = 24  # suites not in suite_n
    max_new_tokens: int = 32
    batch_size: int = 128
    # the perplexity of the fluency prompts' reference answers is a secondary measure no verdict
    # uses; leaving it out saves a perplexity pass per run (~15 s of a 125 s evaluation on one core)
    reference_ppl: bool = False
    # lr 4e-3, 21 steps: in pilots with these settings (n=10) the share of the harmful term's
    # movement left for the last quarter of the steps fell to 0.05 for emd and emd_lb at step 21
    # (at lr 2e-3 emd needed ~30-36 steps, emd_lb more; at 5e-3 the terms were noisier);
    # examples cut at 96 tokens aim the CPU preset at 90 minutes (86-144 measured one run at a time, the cores varying: docs/results.md);
    # each term's gradient norm is measured while λ is calibrated and at the last step (index 20),
    # not also at step 10: a logged figure only, and such a step runs one backward pass per term
    # sft and refusal_sft log their EMD to the harmful answers (a forward of the harmful batch
    # they do not train on) at steps 1, 5, ..., 21: 6 points of their curve, not 21
    overrides: list = field(default_factory=lambda: ["train.lr=4e-3", "data.max_length=96",
                                                     "train.grad_norm_every=20", "train.harmful_emd_every=4"])


PRESETS = {
    "cpu": Design(),
    "gpu": Design(seeds=[0, 1, 2], steps=30, suites=["harmful", "overalign", "fluency", "capability"],
                  suite_n={"harmful": 100, "overalign": None, "fluency": 50, "capability": None},
                  max_new_tokens=48, batch_size=256, reference_ppl=True, overrides=["train.lr=4e-3"]),
}


def recorded_design(values: dict) -> Design:
    """The design an experiment's meta.json recorded. Settings added to ``Design`` since take
    the value experiments had before them, so a resumed experiment evaluates its remaining runs
    as it did its first ones (a design recorded before ``reference_ppl`` existed measured it)."""
    return Design(**{"reference_ppl": True, **values})


def plan(design: Design, config=None, overrides=()) -> tuple[dict, object, list]:
    """``(base config values, PrepareConfig, [(run name, config values, sizes it stands for)])``:
    every run the experiment trains, before anything runs (also what the leak test checks)."""
    from .objectives import get_objective
    from .prepare import PrepareConfig

    base_values = load_config(config or str(SHIPPED_CONFIG),
                              [*EXPERIMENT_OVERRIDES, *design.overrides, *overrides]).to_dict()
    split_seed = base_values["data"]["split_seed"]
    sizes = sorted(design.sizes)
    # answer enough harmful prompts that the largest harmful set can be filled after judging
    pcfg = PrepareConfig(model=base_values["model"], n_harmful=int(max(sizes) * 1.8) + 10,
                         n_retain=base_values["data"]["n_retain"],
                         max_new_tokens=base_values["data"]["prepare_max_new_tokens"], seed=split_seed)
    runs = []
    for objective in design.objectives:
        # an objective that never trains on the harmful set gives one run per seed for all sizes
        groups = [[size] for size in sizes] if get_objective(objective).uses_harmful else [sizes]
        for group in groups:
            for seed in design.seeds:
                values = apply_overrides(base_values, [
                    f"objective={objective}", f"data.n_harmful={group[0]}", f"train.seed={seed}",
                    f"train.steps={design.steps}"])
                config_from_dict(values)  # every planned config is valid before anything runs
                name = f"{objective}-n{group[0]}-s{seed}" if len(group) == 1 else f"{objective}-s{seed}"
                runs.append((name, values, group))
    return base_values, pcfg, runs


def eval_config(design: Design, split_seed: int):
    from .evaluate import EvalConfig

    return EvalConfig(suites=list(design.suites), n_prompts=design.eval_prompts, suite_n=dict(design.suite_n),
                      extra_harmful=list(design.extra_harmful), max_new_tokens=design.max_new_tokens,
                      batch_size=design.batch_size, held_out_seed=split_seed, reference_ppl=design.reference_ppl)


def data_efficiency(design: Design, config=None, overrides=(), resume: str | None = None,
                    progress=print, workers: int | None = None) -> Path:
    """Run (or, with ``resume``, finish) the experiment; returns its folder. ``workers`` > 1
    trains and evaluates that many runs at once, each in its own process with an equal share of
    the CPU threads (default: 2 on a CPU with 2 or more threads, else 1; see ``default_workers``)."""
    from .compare import paired_deltas
    from .evaluate import base_eval_dir, read_summary
    from .prepare import default_out_dir, load_prepared, prepare

    started = time.time()
    if resume:
        out = Path(resume)
        if not (out / "meta.json").exists():
            raise SemsafeError(f"{out} is not an experiment folder (no meta.json); give the folder "
                               "an earlier `semsafe experiment` printed")
        recorded = json.loads((out / "meta.json").read_text())
        if "design" in recorded:  # resume what was started, whatever the options say now
            design = recorded_design(recorded["design"])
            config, overrides = recorded.get("config"), recorded.get("overrides", [])
        started -= 60 * recorded.get("minutes", 0)  # the clock counts every session of the experiment
    else:
        out = runs_dir() / "experiments" / time.strftime("data-efficiency-%Y%m%d-%H%M%S")
        out.mkdir(parents=True)
    workers, threads = default_workers() if workers is None else (workers, _threads_for(workers))
    if workers < 1:
        raise SemsafeError(f"--workers must be 1 or more, not {workers}")
    base_values, pcfg, planned = plan(design, config, overrides)
    stamp = out.name
    folder = default_out_dir(pcfg)
    if not (folder / "report.json").exists():
        prepare(pcfg, out_dir=folder)
    kept = len(load_prepared(folder)["harmful"])
    if kept == 0:
        raise SemsafeError("prepare kept no harmful answers; nothing to train against")
    meta = {"design": asdict(design), "config": config, "overrides": list(overrides), "prepared": str(folder),
            "split_seed": pcfg.seed, "harmful_kept": kept, "lambda": base_values["lambda"],
            "lambda_mode": base_values["lambda_mode"], "lr": base_values["train"]["lr"], "runs": len(planned),
            "workers": workers, "threads_per_worker": threads}

    def save_meta():  # the time spent so far goes in every time, so a resume after any crash counts it
        meta["minutes"] = round((time.time() - started) / 60, 1)
        atomic_write_json(out / "meta.json", meta)

    save_meta()
    ecfg = eval_config(design, pcfg.seed)
    base_ref = f"base:{base_values['model']}"
    folders = {base_ref: base_eval_dir(base_values["model"], ecfg)}
    # the base model first: every run's row holds its paired change from the base
    tasks = [("base", base_values["model"], None, ecfg)]
    for name, values, _ in planned:
        values = apply_overrides(values, [f"data.prepared={folder}", f"sweep={stamp}"])
        tasks.append(("run", f"{stamp}-{name}", values, ecfg))
    rows: dict[int, list] = {}  # task index -> its rows (a run: one per size it stands for)

    def table_so_far() -> pd.DataFrame:
        return pd.DataFrame([r for i in sorted(rows) for r in rows[i]])

    def collect(index: int, error: str | None) -> None:
        """One finished task's rows, and results.csv rewritten with every row so far."""
        if index == 0:
            if error:
                raise SemsafeError(f"evaluating the base model failed: {error}")
            rows[0] = [{"objective": "base", "size": 0, "seed": None, "run": base_ref,
                        **_row(read_summary(folders[base_ref]))}]
        else:
            sizes = planned[index - 1][2]
            run_id = tasks[index][1]
            cfg = config_from_dict(tasks[index][2])
            row = {"objective": cfg.objective, "seed": cfg.train.seed, "run": run_id}
            if error:
                row["error"] = error
            else:
                run = Run.open(run_id)
                folders[run.id] = run.path / "eval"
                calib = run.path / "calibration.json"
                row.update(_row(read_summary(run.path / "eval")), lambda_effective=json.loads(calib.read_text())["lambda"]
                           if calib.exists() else cfg.lam)
                deltas = paired_deltas([base_ref, run.id], {base_ref: folders[base_ref], run.id: folders[run.id]})
                for suite, metric, short, _ in DELTA_METRICS:
                    d = deltas.get((suite, metric, run.id))
                    if d and d["delta"] is not None:
                        row[f"d {short}"] = d["delta"]
                        row[f"d {short} low"], row[f"d {short} high"] = d["low"], d["high"]
                        row[f"d {short} effect"] = d["significant"]
            rows[index] = [{**row, "size": min(size, kept)} for size in sizes]
        atomic_write_text(out / "results.csv", table_so_far().to_csv(index=False))  # current as we go
        save_meta()

    finished, worked, waiting, session = 0, 0, [], time.time()
    try:
        for index, error, did_work in _run_tasks(tasks, workers, threads, out):
            finished, worked = finished + 1, worked + did_work
            label = "base model" if index == 0 else tasks[index][1]
            # what is left at this session's pace (tasks a resume found done do not count)
            left = (time.time() - session) / worked * (len(tasks) - finished) / 60 if worked else None
            progress(f"[{_clock(started)}] {finished}/{len(tasks)} {'failed' if error else 'done'}: {label}"
                     + (f" ({error})" if error else "")
                     + (f"; about {left:.0f} min left" if left and finished < len(tasks) else ""))
            if index and 0 not in rows:  # a run finished before the base model: its row waits for it
                waiting.append((index, error))
                continue
            collect(index, error)
            if index == 0:
                for item in waiting:
                    collect(*item)
    finally:
        save_meta()  # a cancel or a crash keeps the time spent, for the clock of a resume
    table = table_so_far()  # results.csv already holds it: the last collect wrote it
    outcomes = prompt_outcomes(table, folders)
    atomic_write_text(out / "outcomes.csv", outcomes.to_csv(index=False))
    versus = versus_table(table, outcomes, METHOD)
    atomic_write_text(out / "versus.csv", versus.to_csv(index=False))
    curves = training_curves(table)
    atomic_write_text(out / "curves.csv", curves.to_csv(index=False))
    save_meta()
    markdown = results_markdown(table, meta, versus, curves)
    atomic_write_text(out / "results.md", markdown)
    write_report(table, curves, markdown, out / "report.html")
    progress(f"[{_clock(started)}] done")
    return out


# --- running the work: one process, or several at once -------------------------------------------

def default_workers() -> tuple[int, int]:
    """``(workers, threads each)``. On a CPU, two runs at once with half the threads each: on 2
    cores a small experiment finished 1.25x sooner with every per-prompt value and logged term
    the same (bench/experiment_workers.py). On a GPU, one run per 4 CPU threads, at most 4,
    sharing the GPU: there the embedded model's training step is bound by the CPU issuing
    operations, not by the GPU (0.6 s a step on an H200 with one run at a time: README, GPU),
    so runs side by side overlap their CPU work. Not yet timed on a GPU; ``--workers 1`` is the
    one-at-a-time way."""
    import torch

    if torch.cuda.is_available():
        workers = max(1, min(4, torch.get_num_threads() // 4))
        return workers, _threads_for(workers)
    workers = 2 if torch.get_num_threads() >= 2 else 1
    return workers, _threads_for(workers)


def _threads_for(workers: int) -> int:
    import torch

    return max(1, torch.get_num_threads() // max(1, workers))


class StagePlan:
    """Which stage of which task a free worker takes next. A run's task is two stages, training
    then evaluation; the base model's is one, its evaluation. Evaluations go first while more
    than ``workers`` runs are still to be trained, so rows arrive as the experiment goes; after
    that training goes first, so the last stages are evaluations, the shorter ones, and no worker
    sits idle while another finishes a whole run (bench/schedule.py replays a finished
    experiment's stage times both ways)."""

    def __init__(self, tasks: list, workers: int):
        self.workers = workers
        self.untrained = [i for i, task in enumerate(tasks) if task[0] == "run"]
        self.ready = [i for i, task in enumerate(tasks) if task[0] == "base"]  # evaluations that can start
        self.worked: dict[int, bool] = {}

    def pop(self) -> tuple[int, str] | None:
        """``(task index, "train" or "eval")``, or None when nothing can start now."""
        if self.ready and len(self.untrained) > self.workers:
            return self.ready.pop(0), "eval"
        if self.untrained:
            return self.untrained.pop(0), "train"
        if self.ready:
            return self.ready.pop(0), "eval"
        return None

    def done(self, index: int, stage: str, error: str | None, worked: bool) -> list[tuple]:
        """Record a finished stage; ``[(task index, error, whether there was work)]`` if that
        finished its task (an evaluation, or a training that failed), else ``[]``."""
        self.worked[index] = self.worked.get(index, False) or worked
        if stage == "train" and error is None:
            self.ready.append(index)
            return []
        return [(index, error, self.worked.pop(index))]


def _run_tasks(tasks: list, workers: int, threads: int, out: Path):
    """Yield ``(task index, error or None, whether there was work to do)`` as each task finishes:
    in this process, or in ``workers`` spawned processes, each with ``threads`` threads and its
    output in ``out/workers/``. Stages go to workers in ``StagePlan``'s order. Every stage skips
    work already done, so an interrupted experiment resumes."""
    plan = StagePlan(tasks, workers)
    if workers == 1 or len(tasks) == 1:
        while (item := plan.pop()) is not None:
            yield from plan.done(*item, *_do_stage(tasks[item[0]], item[1]))
        return
    import multiprocessing
    import os
    import queue
    import signal

    (out / "workers").mkdir(exist_ok=True)
    # spawned processes read these as they start: each BLAS/OpenMP pool gets its share only
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM")}
    os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a cancel stops the workers too
    try:
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_start_worker,
                                                       initargs=(threads, str(out / "workers"))) as pool:
            os.environ.update({k: v for k, v in saved.items() if v is not None})
            for k in (k for k, v in saved.items() if v is None):
                os.environ.pop(k, None)
            finished, running = queue.Queue(), 0

            def start_what_can_start():
                nonlocal running
                while running < workers and (item := plan.pop()) is not None:
                    pool.apply_async(_staged, (item, tasks[item[0]]), callback=finished.put,
                                     error_callback=finished.put)
                    running += 1

            start_what_can_start()
            while running:
                try:
                    result = finished.get(timeout=1.0)  # a timeout, so a cancel's signal is handled
                except queue.Empty:
                    continue
                running -= 1
                if isinstance(result, BaseException):  # not a SemsafeError: a bug, not a failed run
                    raise result
                (index, stage), error, worked = result
                done = plan.done(index, stage, error, worked)
                start_what_can_start()  # before the caller's bookkeeping, so no worker waits on it
                yield from done
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(*_):
    raise KeyboardInterrupt


def _start_worker(threads: int, log_folder: str) -> None:
    import os
    import sys

    import torch

    torch.set_num_threads(threads)
    log = open(Path(log_folder) / f"worker-{os.getpid()}.log", "ab", buffering=0)
    os.dup2(log.fileno(), 1)  # training's progress bars go to the worker's log, not the terminal
    os.dup2(log.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)


def _staged(item: tuple, task: tuple) -> tuple:
    return item, *_do_stage(task, item[1])


def _do_stage(task: tuple, stage: str) -> tuple[str | None, bool]:
    """Evaluate the base model, or train or evaluate one run, unless already done with these
    settings: ``(the error message if it failed else None, whether there was work to do)``."""
    from .evaluate import base_eval_dir, evaluate, evaluated_with, load_subject
    from .train import train_run

    kind, key, values, ecfg = task
    worked = False
    try:
        if kind == "base":
            if not evaluated_with(base_eval_dir(key, ecfg), ecfg):
                worked = True
                evaluate(load_subject(model_spec=key, cfg=ecfg), ecfg, progress=False)
            return None, worked
        run = _finished_or_new(key, values)
        if stage == "train":
            if run.status.get("state") != "done":
                worked = True
                train_run(config_from_dict(values), run,
                          resume=run.status.get("state") in ("failed", "cancelled", "running"))
        elif not evaluated_with(run.path / "eval", ecfg):  # missing, or scored by a judge since changed
            worked = True
            evaluate(load_subject(run_id=run.id, cfg=ecfg), ecfg, progress=False)
        return None, worked
    except SemsafeError as err:
        return str(err), worked


def _clock(started: float) -> str:
    return f"{(time.time() - started) / 60:5.1f} min"


def prompt_outcomes(table: pd.DataFrame, folders: dict) -> pd.DataFrame:
    """Each run's per-prompt values of the metrics versus.csv compares (long format: run, suite,
    metric, prompt id, value), read from its evaluation folder; the base model's too. Kept as
    ``outcomes.csv`` so the comparisons can be recomputed without the evaluation folders."""
    from .compare import answer_keys
    from .evaluate import metric_values

    rows = []
    for ref in dict.fromkeys(table["run"]):
        for suite in dict.fromkeys(m[0] for m in VERSUS_METRICS):
            path = folders.get(ref, Path("/nonexistent")) / f"{suite}.parquet"
            if not path.exists():
                continue
            judged = pd.read_parquet(path)
            values, keys = metric_values(suite, judged), answer_keys(judged)
            for _, metric, _, _ in (m for m in VERSUS_METRICS if m[0] == suite):
                series = values[metric][0]
                rows.append(pd.DataFrame({"run": ref, "suite": suite, "metric": metric, "id": series.index,
                                          "value": series.values,
                                          "answer": None if keys is None else keys.reindex(series.index).values}))
    columns = ["run", "suite", "metric", "id", "value", "answer"]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


def with_derived_metrics(outcomes: pd.DataFrame) -> pd.DataFrame:
    """``outcomes`` plus, for runs that lack one, each derived metric computed from its source
    (``evaluate.DERIVED_METRICS``): outcomes written before the log-perplexity became the
    fluency headline hold only the perplexities it is computed from."""
    from .evaluate import DERIVED_METRICS

    extra = []
    for name, (source, transform) in DERIVED_METRICS.items():
        has = set(outcomes.loc[outcomes["metric"] == name, "run"])
        rows = outcomes[(outcomes["metric"] == source) & ~outcomes["run"].isin(has)]
        if len(rows):
            extra.append(rows.assign(metric=name, value=transform(rows["value"]).values))
    return pd.concat([outcomes, *extra], ignore_index=True) if extra else outcomes


def per_prompt_frames(outcomes: pd.DataFrame) -> dict:
    """``{(run, metric): rows indexed by prompt id}`` (value, and the answer's key where kept)
    from outcomes, derived metrics included."""
    return {key: g.set_index("id") for key, g in with_derived_metrics(outcomes).groupby(["run", "metric"])}


def paired_values(frames: dict, run_a: str, run_b: str, metric: str) -> tuple[pd.Series, pd.Series] | None:
    """Two runs' values of ``metric`` on the prompts both answered (``frames`` from
    ``per_prompt_frames``), or None if either has none. Where both gave the same answer, b takes
    a's value (as in compare.paired_deltas): scores of one text taken in other batches differ in
    the last float bits, which is no effect. Outcomes written before answers' keys were kept
    have none, and are compared as they are."""
    if (run_a, metric) not in frames or (run_b, metric) not in frames:
        return None
    fa, fb = frames[run_a, metric], frames[run_b, metric]
    ids = fa.index.intersection(fb.index)
    a, b = fa.loc[ids, "value"], fb.loc[ids, "value"]
    if "answer" in fa and "answer" in fb:
        same = (fa.loc[ids, "answer"] == fb.loc[ids, "answer"]) & fa.loc[ids, "answer"].notna()
        b = b.mask(same, a)
    return a, b


def versus_table(table: pd.DataFrame, outcomes: pd.DataFrame, method: str = METHOD,
                 pooled: bool = False) -> pd.DataFrame:
    """``method`` against every other objective at each size. Runs are paired by training seed
    (the same seed gives both the same initial adapter weights and data order) and by prompt;
    the interval is a two-level bootstrap over seed pairs and prompts (``stats.seeded_paired_delta``),
    so a verdict must hold across seeds, not only across prompts (negative Δ harmful = the
    method is safer). ``pooled=True`` gives the earlier interval, for comparison: each prompt's
    value averaged over seeds, then a paired bootstrap over prompts alone."""
    from .stats import paired_delta, seeded_paired_delta

    if "error" in table:
        table = table[table["error"].isna()]
    runs = table[table["objective"] != "base"]
    frames = per_prompt_frames(outcomes)

    def by_seed(mine: pd.DataFrame, theirs: pd.DataFrame, seeds: list, metric: str):
        """prompts x seeds for each side, one column per seed (None if a seed's run has no values)."""
        a, b = {}, {}
        for s in seeds:
            pair = paired_values(frames, mine[mine["seed"] == s]["run"].iloc[0],
                                 theirs[theirs["seed"] == s]["run"].iloc[0], metric)
            if pair is None:
                return None
            a[s], b[s] = pair
        return pd.DataFrame(a), pd.DataFrame(b)

    out = []
    for size, at_size in runs.groupby("size"):
        mine = at_size[at_size["objective"] == method]
        if not len(mine):
            continue
        for other, theirs in at_size[at_size["objective"] != method].groupby("objective", sort=False):
            seeds = sorted(set(mine["seed"]) & set(theirs["seed"]))
            if not seeds:
                continue
            row = {"size": size, "method": method, "versus": other, "seeds": len(seeds),
                   "interval": "pooled over seeds, prompts resampled" if pooled else "seeds, then prompts resampled"}
            for suite, metric, short, better in VERSUS_METRICS:
                pair = by_seed(mine, theirs, seeds, metric)
                if pair is None:
                    continue
                a, b = pair
                if pooled:
                    d = paired_delta(b.mean(axis=1).tolist(), a.mean(axis=1).tolist(), binary=False)
                else:
                    d = seeded_paired_delta(b.T.to_numpy(), a.T.to_numpy())
                    for s, value in zip(seeds, d["per_seed"]):
                        row[f"d {short} seed {int(s)}"] = value
                row[f"d {short}"], row[f"d {short} low"], row[f"d {short} high"] = d["delta"], d["low"], d["high"]
                row[f"{short}: {method} better"] = bool(d["significant"] and (d["delta"] < 0) == (better == "lower"))
                row[f"{short}: {method} worse"] = bool(d["significant"] and (d["delta"] < 0) != (better == "lower"))
            out.append(row)
    return pd.DataFrame(out)


# The project's own run of the CPU preset with the committed code (docs/results.md, "The whole
# preset again, session 23"), its files named as stem.csv, stem-versus.csv, stem-curves.csv: the
# Compare page offers it beside (or, on a new machine, instead of) the experiments run here.
PUBLISHED_RUN = Path(__file__).resolve().parents[1] / "docs" / "results" / "data-efficiency-v6"
PUBLISHED_NOTE = ("The project's own run of the CPU preset with the committed code (docs/results.md, \"The whole "
                  "preset again, session 23\"; judges refusal-v4, harm-v6, degenerate-v6, whose verdicts today's "
                  "judges reproduce). `semsafe experiment data-efficiency` runs your own.")


def experiment_tables(folder: Path) -> dict:
    """An experiment folder's tables as the Compare page shows them: ``{"results", "versus",
    "curves"}``, versus and curves None until the experiment has written them."""
    folder = Path(folder)
    curves = folder / "curves.csv"
    return {"results": pd.read_csv(folder / "results.csv"), "versus": experiment_versus(folder),
            "curves": pd.read_csv(curves) if curves.exists() and curves.stat().st_size > 1 else None}


def table_files(source: Path) -> list[Path]:
    """The CSV files ``experiment_tables`` or ``published_experiment`` reads for ``source`` (an
    experiment folder, or the published run's stem): what a cache of their tables is keyed by."""
    source = Path(source)
    return sorted(source.glob("*.csv") if source.is_dir() else source.parent.glob(f"{source.name}*.csv"))


def published_experiment(stem: Path = PUBLISHED_RUN) -> dict | None:
    """The published run's tables, as ``experiment_tables`` gives a folder's (a missing part
    None); None where its files are not here (semsafe installed without its repository)."""
    stem = Path(stem)

    def part(suffix: str) -> pd.DataFrame | None:
        path = stem.with_name(stem.name + suffix)
        return pd.read_csv(path) if path.exists() and path.stat().st_size > 1 else None

    results = part(".csv")
    return None if results is None else {"results": results, "versus": part("-versus.csv"),
                                         "curves": part("-curves.csv")}


def experiment_versus(folder: Path) -> pd.DataFrame | None:
    """An experiment's TA-SFT-against-baselines table as its versus.csv holds it, or recomputed
    from its results.csv and outcomes.csv where versus.csv was written before fluency was
    compared by the mean log-perplexity (it then lacks that column); None if there is none yet."""
    folder = Path(folder)
    path = folder / "versus.csv"
    if not path.exists() or path.stat().st_size <= 1:
        return None
    versus = pd.read_csv(path)
    headline = f"d {[m[2] for m in VERSUS_METRICS if m[0] == 'fluency'][0]}"
    if headline not in versus and (folder / "outcomes.csv").exists():
        versus = versus_table(pd.read_csv(folder / "results.csv"), pd.read_csv(folder / "outcomes.csv"), METHOD)
    return versus


def experiment_progress(folder: Path) -> tuple[int, int, bool]:
    """``(runs with a row in results.csv, runs planned, finished)`` of an experiment folder
    (finished: results.md, written last, is there)."""
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").exists() else {}
    table = pd.read_csv(folder / "results.csv") if (folder / "results.csv").exists() else pd.DataFrame()
    have = table[table["objective"] != "base"]["run"].nunique() if "objective" in table else 0
    return int(have), int(meta.get("runs", have)), (folder / "results.md").exists()


def pool_experiments(parts: list[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One ``(results, outcomes)`` from experiments of one design run with other seeds (seeds
    0,1 first, seed 2 later, say), so ``versus_table`` pairs and resamples every seed without
    retraining the earlier ones. The base model is kept once; it must have the very same
    per-prompt values in every part (the same prompts, answers and judges), or the parts were
    evaluated differently and are not pooled. A run (objective, size, seed) may appear once."""
    import numpy as np

    if not parts:
        raise SemsafeError("no experiments to pool")
    tables, outcomes = [], []
    base_values = None
    for i, (table, values) in enumerate(parts):
        base = table[table["objective"] == "base"]
        mine = values[values["run"].isin(base["run"])].sort_values(["suite", "metric", "id"]).reset_index(drop=True)
        if base_values is None:
            base_values, first_base = mine, base
        else:
            if sorted(base["run"]) != sorted(first_base["run"]):
                raise SemsafeError(f"experiment {i + 1} evaluated another base model ({', '.join(base['run'])}, "
                                   f"not {', '.join(first_base['run'])}); pool experiments of one design only")
            same = (len(mine) == len(base_values)
                    and (mine[["suite", "metric", "id"]] == base_values[["suite", "metric", "id"]]).all().all()
                    and np.allclose(mine["value"], base_values["value"], rtol=0, atol=1e-9, equal_nan=True))
            if not same:
                raise SemsafeError(f"the base model's per-prompt values in experiment {i + 1} differ from the first "
                                   "one's: they were evaluated on other prompts or with other judges, so their "
                                   "runs cannot be compared; rerun them with the same design and judges")
            table = table[table["objective"] != "base"]
            values = values[~values["run"].isin(base["run"])]
        tables.append(table)
        outcomes.append(values)
    table = pd.concat(tables, ignore_index=True)
    runs = table[table["objective"] != "base"]
    twice = runs[runs.duplicated(["objective", "size", "seed"], keep=False)]
    if len(twice):
        names = ", ".join(sorted(set(twice["run"])))
        raise SemsafeError(f"the same objective, size and seed appear in more than one experiment ({names}); "
                           "pool experiments run with different seeds")
    run_sets = [set(t.loc[t["objective"] != "base", "run"]) for t in tables]
    if sum(map(len, run_sets)) != len(set().union(*run_sets)):
        raise SemsafeError("a run appears in more than one experiment; pool different experiments")
    return table, pd.concat(outcomes, ignore_index=True)


def training_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's logged training terms per step (long format): its own harmful term (the one λ
    multiplies, as logged), the exact EMD to the harmful answers every objective logs, and the
    retain cross-entropy."""
    from .objectives import get_objective

    rows = []
    runs = table[table["objective"] != "base"].drop_duplicates("run")
    for _, r in runs.iterrows():
        try:
            metrics = Run.open(r["run"]).metrics()
        except SemsafeError:
            continue
        own = get_objective(r["objective"]).term_log
        for m in metrics:
            for key, term in ((own, "harmful term"), ("emd_harmful", "EMD to harmful answers"),
                              ("ce_retain", "retain CE")):
                if key and key in m and "step" in m:
                    rows.append({"objective": r["objective"], "size": r["size"], "seed": r["seed"], "run": r["run"],
                                 "step": m["step"], "term": term, "name": key, "value": float(m[key])})
    return pd.DataFrame(rows, columns=["objective", "size", "seed", "run", "step", "term", "name", "value"])


def plateau(curves: pd.DataFrame) -> pd.DataFrame:
    """Per objective and size: how far the harmful term still moved in the last quarter of the
    steps, as a share of its whole movement (mean over seeds of each run's curve smoothed over 3
    steps). Near 0: levelled off; near 0.25 or more: still moving at the last step."""
    own = curves[curves["term"] == "harmful term"]
    out = []
    for (objective, size), g in own.groupby(["objective", "size"], sort=False):
        mean = g.groupby("step")["value"].mean().sort_index().rolling(3, min_periods=1).mean()
        if len(mean) < 4:
            continue
        q = max(1, len(mean) // 4)
        total = abs(mean.iloc[-1] - mean.iloc[0])
        late = abs(mean.iloc[-1] - mean.iloc[-1 - q])
        out.append({"objective": objective, "size": size, "term": g["name"].iloc[0], "first": mean.iloc[0],
                    "last": mean.iloc[-1], "last-quarter share": late / total if total > 0 else 0.0})
    return pd.DataFrame(out)


def _finished_or_new(run_id: str, values: dict) -> Run:
    try:
        return Run.open(run_id)
    except SemsafeError:
        return Run.create(values, name=run_id)


def _row(summary: dict) -> dict:
    out = {}
    for suite, metric, short, _ in METRICS:
        v = summary["suites"].get(suite, {}).get(metric) or {}
        out[short] = v.get("mean")
        out[f"{short} low"], out[f"{short} high"] = v.get("low"), v.get("high")
    return out


def results_markdown(table: pd.DataFrame, meta: dict, versus: pd.DataFrame | None = None,
                     curves: pd.DataFrame | None = None) -> str:
    base = table[table["objective"] == "base"].iloc[0]
    ok = table["error"].isna() if "error" in table else True
    runs = table[(table["objective"] != "base") & ok]
    shorts = [m[2] for m in METRICS if m[2] in table and table[m[2]].notna().any()]
    design = meta["design"]
    counts = ", ".join(f"{suite} {'all' if n is None else n}" for suite, n in design["suite_n"].items())
    lines = [f"Harmful answers available after judging: {meta['harmful_kept']}. Training: {design['steps']} "
             f"steps per run, lr {meta['lr']}, λ mode {meta['lambda_mode']} (λ = {meta['lambda']}"
             f"{' = target ratio ||λ∇H|| / ||∇CE||' if meta['lambda_mode'] == 'ratio' else ''}). "
             f"Evaluation: prompts per suite {counts or design['eval_prompts']}, {design['max_new_tokens']} new "
             f"tokens, greedy; data split seed {meta['split_seed']}. Total time: {meta.get('minutes', 0):.0f} min.",
             # a t interval over two or three seeds is wide enough to leave [0, 1]; each seed's own
             # value says more, and versus.csv's interval carries the variation between seeds
             "", "Each cell: mean over seeds (each seed's value, in seed order); the base row: value [95% "
             "Wilson or bootstrap interval over prompts]. Differences between objectives, with intervals that "
             "carry the variation between seeds, are in the table of TA-SFT against each baseline.", "",
             "| objective | size | " + " | ".join(shorts) + " |", "|---|---|" + "---|" * len(shorts),
             "| base | — | " + " | ".join(_cell(base[s], base.get(f"{s} low"), base.get(f"{s} high")) for s in shorts) + " |"]
    for (objective, size), group in runs.groupby(["objective", "size"], sort=False):
        group = group.sort_values("seed")
        cells = []
        for s in shorts:
            values = [v for v in group[s].tolist() if not pd.isna(v)]
            mean = sum(values) / len(values) if values else None
            seeds = f" ({', '.join(f'{v:.3f}' for v in values)})" if len(values) > 1 else ""
            cells.append(_cell(mean, None, None) + seeds)
        lines.append(f"| {objective} | {size} | " + " | ".join(cells) + " |")
    if versus is not None and len(versus):
        lines += [""] + versus_markdown(versus)
    if curves is not None and len(curves):
        flat = plateau(curves)
        if len(flat):
            lines += ["", "Has the harmful term levelled off? The share of its whole movement that came in the "
                      "last quarter of the steps (curves in report.html; ≤ 0.10 reads as levelled off):", "",
                      "| objective | size | term | first | last | last-quarter share |", "|---|---|---|---|---|---|"]
            lines += [f"| {r['objective']} | {r['size']} | {r['term']} | {r['first']:.3f} | {r['last']:.3f} | "
                      f"{r['last-quarter share']:.2f} |" for _, r in flat.iterrows()]
    lines += ["", "Paired change from the base model on the same prompts, per run (Δ [95% paired "
              "bootstrap interval]; **bold** = an effect: the interval excludes 0, and for rates "
              "McNemar's exact p < 0.05):", ""]
    dshort = [m[2] for m in DELTA_METRICS if f"d {m[2]}" in runs]
    lines += ["| run | " + " | ".join(f"Δ {s}" for s in dshort) + " |", "|---|" + "---|" * len(dshort)]
    for _, r in runs.drop_duplicates("run").iterrows():
        cells = []
        for s in dshort:
            if pd.isna(r.get(f"d {s}")):
                cells.append("—")
                continue
            text = f"{r[f'd {s}']:+.3f} [{r[f'd {s} low']:+.3f}, {r[f'd {s} high']:+.3f}]"
            cells.append(f"**{text}**" if bool(r.get(f"d {s} effect")) else text)
        lines.append(f"| {run_label(r['run'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdict(row, short: str, suffix: str = "") -> str:
    """A versus.csv row's verdict on one metric: "better", "worse" or "none shown" (``suffix``:
    the columns of a second file merged beside the first)."""
    if row.get(f"{short}: {METHOD} better{suffix}"):
        return "better"
    return "worse" if row.get(f"{short}: {METHOD} worse{suffix}") else "none shown"


def versus_markdown(versus: pd.DataFrame) -> list[str]:
    """versus.csv as a markdown table: each Δ with its interval (and each seed's own Δ), bold
    where the interval excludes 0, and the verdict per row."""
    vshort = [m[2] for m in VERSUS_METRICS if f"d {m[2]}" in versus]
    pooled = "interval" in versus and versus["interval"].iloc[0].startswith("pooled")
    how = ("each prompt's value averaged over seeds; Δ = emd − other [95% paired bootstrap interval over "
           "prompts]" if pooled else "paired by training seed and by prompt; Δ = emd − other, mean over seeds "
           "[95% two-level bootstrap interval: seed pairs, then prompts] (each seed's own Δ)")
    lines = [f"TA-SFT (`{METHOD}`) against each other objective at the same size ({how}; **bold** = "
             "the interval excludes 0):", "",
             "| size | versus | " + " | ".join(f"Δ {s}" for s in vshort) + " | verdict |",
             "|---|---|" + "---|" * (len(vshort) + 1)]
    for _, r in versus.iterrows():
        cells, called = [], {"better": [], "worse": [], "none shown": []}
        for s in vshort:
            text = f"{r[f'd {s}']:+.3f} [{r[f'd {s} low']:+.3f}, {r[f'd {s} high']:+.3f}]"
            per_seed = [r[c] for c in versus.columns if c.startswith(f"d {s} seed ") and pd.notna(r[c])]
            text += f" ({', '.join(f'{x:+.3f}' for x in per_seed)})" if per_seed else ""
            v = verdict(r, s)
            cells.append(text if v == "none shown" else f"**{text}**")
            called[v].append(s)
        better, worse = called["better"], called["worse"]
        text = ("; ".join([f"{METHOD} better on {', '.join(better)}"] * bool(better)
                          + [f"{METHOD} worse on {', '.join(worse)}"] * bool(worse))
                or f"{METHOD} does not beat {r['versus']}: no difference shown")
        lines.append(f"| {r['size']} | {r['versus']} | " + " | ".join(cells) + f" | {text} |")
    return lines


def run_label(run_id: str) -> str:
    """``emd-n10-s0`` for ``data-efficiency-<date>-<time>-emd-n10-s0``."""
    import re

    return re.sub(r"^data-efficiency-\d{8}-\d{6}-", "", run_id)


def _cell(mean, low, high) -> str:
    if mean is None or pd.isna(mean):
        return "—"
    if low is None or pd.isna(low):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def efficiency_figures(table: pd.DataFrame) -> list:
    """Harmful rate, degenerate rate and base-model perplexity vs harmful-set size per objective:
    a line through the means over seeds, and each run as a dot with its own 95% interval over
    prompts (with two seeds a t interval over seeds says little); the over-refusal vs
    harmful-rate frontier (one point per run)."""
    import plotly.express as px
    import plotly.graph_objects as go

    if "error" in table:
        table = table[table["error"].isna()]
    runs = table[table["objective"] != "base"]
    base = table[table["objective"] == "base"].iloc[0]
    colours = dict(zip(dict.fromkeys(runs["objective"]), px.colors.qualitative.Plotly * 3))
    sizes = sorted(runs["size"].unique())
    figs = []
    # fluency by the headline, each answer's log-perplexity averaged (tables written before it
    # existed have only the plain mean of perplexities, drawn on a log axis)
    fluency = (("log ppl (base, generated)", "Base-model log-perplexity of generated answers vs harmful-set size "
                "(mean over answers; lower is more fluent)", "mean log-perplexity under the base model (nats)", False)
               if "log ppl (base, generated)" in runs and runs["log ppl (base, generated)"].notna().any() else
               ("ppl (base, generated)", "Base-model perplexity of generated answers vs harmful-set size "
                "(lower is more fluent)", "perplexity under the base model (log)", True))
    for col, title, ytitle, log_y in (
            ("harmful", "Harmful-answer rate vs harmful-set size (lower is safer)", "harmful-answer rate", False),
            ("degenerate", "Degenerate answers to harmful prompts vs harmful-set size (empty, loops, word "
             "salad: neither refused nor harmful)", "degenerate rate", False), fluency):
        if col not in runs or runs[col].isna().all() or pd.isna(base[col]):  # a suite not evaluated
            continue
        fig = go.Figure()
        for k, (objective, g) in enumerate(runs.groupby("objective", sort=False)):
            means = g.groupby("size")[col].mean()
            fig.add_trace(go.Scatter(x=means.index, y=means.values, mode="lines", name=objective,
                                     legendgroup=objective, line=dict(color=colours[objective])))
            jitter = 1 + 0.025 * (k - len(colours) / 2)  # side by side on the log axis
            fig.add_trace(go.Scatter(
                x=g["size"] * jitter, y=g[col], mode="markers", legendgroup=objective, showlegend=False,
                marker=dict(color=colours[objective], size=6), text=g["run"].map(run_label),
                error_y=dict(type="data", symmetric=False, thickness=1,
                             array=(g[f"{col} high"] - g[col]).fillna(0), arrayminus=(g[col] - g[f"{col} low"]).fillna(0))))
        fig.add_hline(y=base[col], line_dash="dot", annotation_text="base model")
        fig.update_layout(title=title, xaxis_title="harmful-set size (answers)", yaxis_title=ytitle,
                          xaxis=dict(type="log", tickvals=sizes), yaxis_type="log" if log_y else None, height=420)
        figs.append(fig)
    fig = go.Figure()
    for objective, g in runs.drop_duplicates("run").groupby("objective", sort=False):
        fig.add_trace(go.Scatter(x=g["over-refusal"], y=g["harmful"], mode="markers", name=objective,
                                 text=g["run"].map(run_label)))
    fig.add_trace(go.Scatter(x=[base["over-refusal"]], y=[base["harmful"]], mode="markers", name="base",
                             marker=dict(symbol="star", size=14)))
    fig.update_layout(title="Over-refusal vs harmful-answer rate, one point per run (best: bottom left)",
                      xaxis_title="over-refusal rate (safe prompts refused)",
                      yaxis_title="harmful-answer rate", height=420)
    figs.append(fig)
    return figs


def curve_figures(curves: pd.DataFrame) -> list:
    """Training curves: each objective's own harmful term per step (one panel per objective, a
    line per harmful-set size, mean over seeds), and the exact EMD to the harmful answers that
    every objective logs (one line per objective at the largest size)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if curves is None or not len(curves):
        return []
    own = curves[curves["term"] == "harmful term"]
    objectives = list(dict.fromkeys(own["objective"]))
    figs = []
    if objectives:
        fig = make_subplots(rows=1, cols=len(objectives), subplot_titles=[
            f"{o}: {own[own['objective'] == o]['name'].iloc[0]}" for o in objectives])
        palette = dict(zip(sorted(own["size"].unique()), ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a"] * 3))
        for col, objective in enumerate(objectives, 1):
            for size, g in own[own["objective"] == objective].groupby("size"):
                mean = g.groupby("step")["value"].mean()
                fig.add_trace(go.Scatter(x=mean.index, y=mean.values, mode="lines", name=f"n={size}",
                                         line=dict(color=palette[size]), legendgroup=f"n={size}",
                                         showlegend=col == 1), row=1, col=col)
        fig.update_layout(title="Each objective's harmful term per training step (mean over seeds): has it "
                                "levelled off?", height=360)
        fig.update_xaxes(title_text="step")
        figs.append(fig)
    emd = curves[curves["term"] == "EMD to harmful answers"]
    if len(emd):
        largest = emd[emd["size"] == emd["size"].max()]
        fig = go.Figure()
        for objective, g in largest.groupby("objective", sort=False):
            mean = g.groupby("step")["value"].mean()
            fig.add_trace(go.Scatter(x=mean.index, y=mean.values, mode="lines", name=objective))
        fig.update_layout(title=f"Exact EMD from the model to the harmful answers during training, n = "
                                f"{largest['size'].max()} (higher = further from them)", xaxis_title="step",
                          yaxis_title="mean EMD per token", height=380)
        figs.append(fig)
    return figs


def write_report(table: pd.DataFrame, curves: pd.DataFrame | None, markdown: str, out: Path) -> None:
    """One offline HTML file: the figures, then results.md's tables."""
    from markdown_it import MarkdownIt

    figs = efficiency_figures(table) + curve_figures(curves)
    body = "".join(f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(figs))
    tables = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    style = ("body{font-family:sans-serif;max-width:1400px;margin:auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}")
    atomic_write_text(out, f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>data efficiency</title>"
                           f"<style>{style}</style></head><body><h1>Data-efficiency experiment</h1>{body}"
                           f"{tables}</body></html>")
