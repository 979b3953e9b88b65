"""TA-SFT training: a `transformers.Trainer` whose `compute_loss` calls an objective.

Everything else — gradient accumulation, mixed precision, checkpoints, DDP through
`accelerate launch -m semsafe.train ...` — is the Trainer's. This module adds the paired
retain/harmful data, LoRA through peft, and the run store (status, metrics, adapter).
"""

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from .batches import PairedDataset, make_collator
from .config import TrainConfig, load_config
from .cost import SemanticCost
from .errors import SemsafeError
from .objectives import ObjectiveContext, get_objective, measure_harmful_emd
from .runs import Run


# --- data ------------------------------------------------------------------------------------

def _warn_if_judged_by_older_judges(folder, report: dict) -> None:
    """Prepared data is reused as it is (a resumed run must train on what it started with), so
    say when the judges that chose its harmful set have changed since."""
    import logging

    from .evaluate import judge_versions

    now = judge_versions()
    old = {role: name for role, name in (report.get("judges") or {}).items() if now.get(role) != name}
    if old:
        logging.getLogger(__name__).warning(
            "the harmful set in %s was chosen by %s; the current judges are %s. Rerun `semsafe prepare "
            "--out %s` (same settings) to choose again from its stored answers", folder,
            ", ".join(old.values()), ", ".join(now[r] for r in old), folder)


def load_training_data(cfg: TrainConfig, tok, model_and_tokenizer=None):
    """(harmful records, retain records) as the config names them."""
    from .data import load_records
    from .models import tokenizer_fingerprint
    from .prepare import load_prepared, prepare, prepare_config_for, prepared_folder

    d = cfg.data
    if d.prepared:
        folder = prepared_folder(cfg)
        if d.prepared == "auto" and not (folder / "report.json").exists():
            prepare(prepare_config_for(cfg), out_dir=folder, model_and_tokenizer=model_and_tokenizer)
        sets = load_prepared(folder)
        report = json.loads((Path(folder) / "report.json").read_text())
        if report.get("tokenizer") and report["tokenizer"] != tokenizer_fingerprint(tok):
            raise SemsafeError(
                f"the data in {folder} was tokenized for another model's tokenizer than {cfg.model!r}; "
                "prepare data with this model (data.prepared: auto) or train the model it was made for")
        _warn_if_judged_by_older_judges(folder, report)
        harmful, retain = sets["harmful"], sets["retain"]
    elif d.harmful or d.retain:
        if not (d.harmful and d.retain):
            raise SemsafeError("give both data.harmful and data.retain files (or data.prepared)")
        harmful, retain = list(load_records(d.harmful)), list(load_records(d.retain))
    else:
        raise SemsafeError("no training data: set data.prepared to 'auto' or a `semsafe prepare` "
                           "folder, or set data.harmful and data.retain to files")
    harmful = [r for r in harmful if r.response][:d.n_harmful]
    retain = [r for r in retain if r.response][:d.n_retain]
    if not retain:
        raise SemsafeError("the retain set is empty; every step needs benign examples with responses")
    return harmful, retain


# --- the trainer ---------------------------------------------------------------------------

def _combine(g_ce, g_h, lam: float):
    """∇CE + λ∇H for one parameter (None where neither term reaches it)."""
    if g_h is None:
        return g_ce
    return lam * g_h if g_ce is None else g_ce + lam * g_h


class KnownGradient(torch.autograd.Function):
    """A loss whose value is given and whose gradient with respect to ``params`` is known
    already: its backward hands each parameter its gradient (times the upstream factor: the
    Trainer's accumulation and loss scaling) without going through the model again. The
    parameters' gradient hooks still fire, so DDP averages the gradients as after any backward."""

    @staticmethod
    def forward(ctx, value, grads, *params):
        ctx.grads = grads
        return value.clone()

    @staticmethod
    def backward(ctx, upstream):
        return (None, None, *[None if g is None else upstream * g for g in ctx.grads])


def known_gradient_loss(ce, h, lam: float, params, grads):
    """CE + λH whose backward hands each of ``params`` ∇CE + λ∇H from ``grads`` (the per-term
    gradients ``TASFTTrainer._grad_norms`` returns) instead of going through the model again."""
    return KnownGradient.apply((ce + lam * h).detach(), [_combine(a, b, lam) for a, b in zip(*grads)], *params)


class TASFTTrainer(Trainer):
    """Trainer whose loss is an objective over ``{"retain", "harmful", ...}`` batches.

    Besides the loss it measures, every ``grad_norm_every`` steps, the gradient norm of each
    term (CE(retain) and λ·H) over the trainable parameters, and in ``lambda_mode: ratio`` it
    sets λ from the first ``calibration_steps`` batches so that ||λ∇H|| / ||∇CE|| equals the
    configured ratio; the calibrated λ is saved in the run folder so a resumed run keeps it.
    """

    def __init__(self, *args, objective, objective_context, lambda_mode="fixed", target_ratio=1.0,
                 calibration_steps=4, grad_norm_every=10, harmful_emd_every=1, calibration_file=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.objective, self.objective_context = objective, objective_context
        self._terms: dict[str, list[float]] = {}
        self._tokens, self._tokens_at = 0, time.time()
        self.lambda_mode, self.target_ratio = lambda_mode, target_ratio
        self.calibration_steps, self.grad_norm_every = calibration_steps, grad_norm_every
        self.harmful_emd_every = harmful_emd_every
        self.calibration_file = calibration_file
        self._norms: list[tuple[float, float]] = []  # (||∇CE||, ||∇H||) seen while calibrating
        self.calibrated = lambda_mode == "fixed"
        if lambda_mode == "ratio" and calibration_file and Path(calibration_file).exists():
            saved = json.loads(Path(calibration_file).read_text())
            objective_context.lam, self.calibrated = float(saved["lambda"]), True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ctx = self.objective_context
        step = self.state.global_step
        measure = self.objective.term_part is not None and (not self.calibrated or step % self.grad_norm_every == 0)
        # a measuring step runs the parts apart: its two backward passes then each go through
        # one part's rows, and together cost about one backward of the stacked batch
        ce, h, terms = self.objective.terms(model, inputs, ctx, stacked=not measure)
        if measure and h is not None:
            (g_ce, g_h), params, grads = self._grad_norms(model, ce, h)
            if not self.calibrated:
                self._calibrate(g_ce, g_h)
            terms.update(grad_norm_retain=g_ce, grad_norm_harmful=ctx.lam * g_h,
                         grad_ratio=ctx.lam * g_h / max(g_ce, 1e-12))
            # ∇CE + λ∇H from the two per-term passes (λ as calibrated just now): no third backward
            loss = known_gradient_loss(ce, h, ctx.lam, params, grads)
        else:
            loss = ce if h is None else ce + ctx.lam * h
        if not torch.isfinite(loss):
            raise SemsafeError(f"the loss became {loss.item()} at step {step + 1}; "
                               "lower the learning rate or lambda")
        if "emd_harmful" not in terms and "harmful" in inputs and self._will_log() and \
                (step % self.harmful_emd_every == 0 or step + 1 == self.state.max_steps):
            terms["emd_harmful"] = measure_harmful_emd(model, inputs["harmful"], ctx)
        if h is not None:
            terms["lambda_effective"] = ctx.lam
        for name, value in terms.items():
            self._terms.setdefault(name, []).append(float(value))
        self._tokens += int(sum(part["attention_mask"].sum() for part in inputs.values()))
        return (loss, None) if return_outputs else loss

    @staticmethod
    def _grad_norms(model, ce, h):
        """``((||∇CE||, ||∇H||), trainable parameters, (∇CE, ∇H))``: the norms over the trainable
        parameters (summed over processes under DDP) and this process's gradients themselves."""
        params = [p for p in model.parameters() if p.requires_grad]
        norms, grads = [], []
        for term, keep in ((ce, True), (h, False)):  # the graph is not needed after the second
            g = torch.autograd.grad(term, params, retain_graph=keep, allow_unused=True)
            grads.append(g)
            norms.append(sum(float((x.double() ** 2).sum()) for x in g if x is not None))
        squares = torch.tensor(norms, dtype=torch.float64)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            squares = squares.to(next(model.parameters()).device)
            torch.distributed.all_reduce(squares)  # every rank then calibrates the same λ
            squares = squares.cpu() / torch.distributed.get_world_size()
        return (float(squares[0].sqrt()), float(squares[1].sqrt())), params, grads

    def _calibrate(self, g_ce: float, g_h: float) -> None:
        self._norms.append((g_ce, g_h))
        mean_ce = sum(n[0] for n in self._norms) / len(self._norms)
        mean_h = sum(n[1] for n in self._norms) / len(self._norms)
        if mean_h <= 0:
            raise SemsafeError("the harmful term's gradient is zero on the first batches, so lambda "
                               "cannot be calibrated to a ratio; use lambda_mode: fixed")
        self.objective_context.lam = self.target_ratio * mean_ce / mean_h
        if len(self._norms) >= self.calibration_steps:
            self.calibrated = True
            if self.calibration_file and self.is_world_process_zero():
                from .store import atomic_write_json
                atomic_write_json(self.calibration_file, {
                    "lambda": self.objective_context.lam, "target_ratio": self.target_ratio,
                    "grad_norm_retain": mean_ce, "grad_norm_harmful_at_lambda_1": mean_h,
                    "batches": len(self._norms)})

    def _will_log(self) -> bool:
        return (self.state.global_step + 1) % self.args.logging_steps == 0

    def log(self, logs, start_time=None):
        if "loss" in logs:  # a training log: add the objective's terms and throughput
            for name, values in self._terms.items():
                logs[name] = sum(values) / len(values)
            now = time.time()
            logs["tokens_per_s"] = self._tokens / max(now - self._tokens_at, 1e-9)
            self._terms, self._tokens, self._tokens_at = {}, 0, now
        super().log(logs, start_time)


class RunStoreCallback(TrainerCallback):
    """Mirrors training into the run folder: status.json each step, metrics.jsonl each log."""

    def __init__(self, run: Run):
        self.run = run

    def on_train_begin(self, args, state, control, **kw):
        if state.is_world_process_zero:
            self.run.write_status("running", pid=os.getpid(), step=state.global_step,
                                  total_steps=state.max_steps, message="training")

    def on_step_end(self, args, state, control, **kw):
        if state.is_world_process_zero:
            self.run.write_status("running", step=state.global_step, total_steps=state.max_steps)

    def on_log(self, args, state, control, logs=None, **kw):
        if state.is_world_process_zero and logs and "loss" in logs:
            row = {"step": state.global_step, "time": time.time(), **{
                k: v for k, v in logs.items() if isinstance(v, (int, float)) and math.isfinite(v)}}
            row["learning_rate"] = logs.get("learning_rate")
            self.run.append_metrics(row)


# --- putting it together -------------------------------------------------------------------

def _precision(setting: str) -> bool:
    """True for bf16."""
    bf16_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if setting == "bf16" and not bf16_ok:
        raise SemsafeError("train.precision is bf16 but no GPU with bf16 support is available; use auto or fp32")
    return setting == "bf16" or (setting == "auto" and bf16_ok)


def _wrap_lora(model, cfg: TrainConfig):
    from peft import LoraConfig, get_peft_model

    from .models import quiet_adapter_wrapping

    lora = cfg.lora
    targets = None if lora.target_modules in ("auto", None) else lora.target_modules
    config = LoraConfig(task_type="CAUSAL_LM", r=lora.r, lora_alpha=lora.alpha,
                        lora_dropout=lora.dropout, target_modules=targets)
    with quiet_adapter_wrapping():
        return get_peft_model(model, config)


def train_run(cfg: TrainConfig, run: Run, resume: bool = False, model_and_tokenizer=None) -> Run:
    """Train ``cfg`` into ``run``. Status ends as done, failed (with the message) or cancelled;
    checkpoints and metrics written before a failure stay."""
    with run.lock() if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext():
        return _train_locked(cfg, run, resume, model_and_tokenizer)


def _train_locked(cfg: TrainConfig, run: Run, resume: bool, model_and_tokenizer) -> Run:
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
    trainer = None
    try:
        if int(os.environ.get("RANK", "0")) == 0:
            run.write_status("running", pid=os.getpid(), step=0, total_steps=cfg.train.steps,
                             message="loading the model and data (a first run also prepares the data)")
        trainer = _build_trainer(cfg, run, model_and_tokenizer)
        checkpoint = run.latest_checkpoint() if resume else None
        if resume:  # metrics after the checkpoint will be logged again
            run.truncate_metrics(int(checkpoint.name.split("-")[-1]) if checkpoint else 0)
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        if trainer.is_world_process_zero():
            trainer.model.save_pretrained(run.path / "adapter")
            run.write_status("done", step=trainer.state.global_step, message="finished",
                             pid=None)
        return run
    except KeyboardInterrupt:
        step = trainer.state.global_step if trainer else 0
        if trainer is not None:
            trainer.model.save_pretrained(run.path / "adapter")
        run.write_status("cancelled", step=step, pid=None,
                         message=f"cancelled at step {step}; the adapter so far is saved; "
                                 f"`semsafe train --resume {run.id}` continues from the last checkpoint")
        raise
    except SemsafeError as err:
        run.write_status("failed", pid=None, message=str(err))
        raise
    except torch.OutOfMemoryError as err:
        message = (f"out of memory at step {trainer.state.global_step if trainer else 0}: lower "
                   "train.batch_size (raise train.grad_accum to keep the effective batch) or data.max_length")
        run.write_status("failed", pid=None, message=message)
        raise SemsafeError(message) from err
    except Exception as err:
        if _disk_full(err, run.path):
            run.remove_incomplete_checkpoints()
            message = (f"the disk is full (at step {trainer.state.global_step if trainer else 0}: "
                       f"{type(err).__name__}: {err}); free space, then `semsafe train --resume "
                       f"{run.id}` continues from the last complete checkpoint")
            run.write_status("failed", pid=None, message=message)
            raise SemsafeError(message) from err
        run.write_status("failed", pid=None, message=f"{type(err).__name__}: {err}")
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _build_trainer(cfg: TrainConfig, run: Run, model_and_tokenizer=None) -> TASFTTrainer:
    from .models import load_model

    objective = get_objective(cfg.objective)
    model, tok = model_and_tokenizer or load_model(cfg.model)
    harmful, retain = load_training_data(cfg, tok, (model, tok))
    if objective.uses_harmful and not harmful:
        raise SemsafeError(f"objective {cfg.objective!r} needs harmful examples, but the harmful set is "
                           "empty (did `semsafe prepare` keep none? check its report)")
    ctx_options = ObjectiveContext(cost=None, lb_target=cfg.options.lb_target)
    if objective.needs_reference(ctx_options) and not cfg.lora.enabled:
        raise SemsafeError(f"objective {cfg.objective!r} uses the model with adapters disabled as its "
                           "reference; enable LoRA (lora.enabled: true)")
    cost = SemanticCost.from_model(model, which=cfg.options.cost_embeddings)
    if cost.vocab_size < len(tok):
        raise SemsafeError(f"tokenizer has {len(tok)} tokens but the model's embeddings {cost.vocab_size}")
    model.train()
    if cfg.lora.enabled:
        # LoRA's A matrices are drawn from the global generator: seed it here, or a run's start
        # depends on whatever ran before it in this process (an experiment's previous run)
        set_seed(cfg.train.seed)
        model = _wrap_lora(model, cfg)
    use_cuda = torch.cuda.is_available()
    bf16 = _precision(cfg.train.precision)
    data = PairedDataset(tok, retain, harmful, cfg.data.harmful_per_retain, cfg.data.max_length,
                         with_refusals="refusal" in objective.extra_parts, seed=cfg.train.seed)
    if int(os.environ.get("RANK", "0")) == 0:
        _record_training_data(run, cfg, harmful, retain)
    args = TrainingArguments(
        output_dir=str(run.path / "checkpoints"), max_steps=cfg.train.steps,
        per_device_train_batch_size=cfg.train.batch_size,
        gradient_accumulation_steps=cfg.train.grad_accum, learning_rate=cfg.train.lr,
        warmup_steps=cfg.train.warmup_steps, max_grad_norm=cfg.train.max_grad_norm,
        lr_scheduler_type="constant_with_warmup", logging_steps=cfg.train.logging_steps,
        save_steps=cfg.train.save_steps, save_total_limit=2, seed=cfg.train.seed, bf16=bf16,
        use_cpu=not use_cuda, dataloader_pin_memory=use_cuda, remove_unused_columns=False,
        report_to=cfg.train.report_to, disable_tqdm=False,
        logging_nan_inf_filter=False)
    reference = model.disable_adapter if cfg.lora.enabled else None
    ctx = ObjectiveContext(cost=cost.to(args.device), lam=cfg.lam,
                           token_weighting=cfg.options.token_weighting,
                           npo_beta=cfg.options.npo_beta, lb_target=cfg.options.lb_target,
                           fused=cfg.options.fused,
                           reference=reference)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return TASFTTrainer(model=model, args=args, train_dataset=data, data_collator=make_collator(pad),
                        objective=objective, objective_context=ctx, lambda_mode=cfg.lambda_mode,
                        target_ratio=cfg.lam, calibration_steps=cfg.calibration_steps,
                        grad_norm_every=cfg.train.grad_norm_every, harmful_emd_every=cfg.train.harmful_emd_every,
                        calibration_file=run.path / "calibration.json",
                        callbacks=[RunStoreCallback(run)])


def _record_training_data(run: Run, cfg: TrainConfig, harmful, retain) -> None:
    """What the run trains on (ids and prompt texts, the split seed, the data folder), so any
    evaluation can be checked for overlap with it."""
    from .prepare import prepared_folder
    from .store import atomic_write_json

    folder = prepared_folder(cfg)
    atomic_write_json(run.path / "training_data.json", {
        "split_seed": cfg.data.split_seed, "prepared": str(folder) if folder else None,
        "harmful": [{"id": r.id, "prompt": r.prompt} for r in harmful],
        "retain": [{"id": r.id, "prompt": r.prompt} for r in retain]})


def _disk_full(err: BaseException, path: Path) -> bool:
    """Whether ``err`` came from a full disk: ENOSPC itself, or a writer (torch.save,
    safetensors) that wraps it in its own error while the run's disk has no space left."""
    import errno
    import shutil

    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(path).free < 1_000_000
    except OSError:
        return False


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


# --- command line (also `accelerate launch -m semsafe.train ...`) ----------------------------

def run_from_args(args) -> int:
    rank = int(os.environ.get("RANK", "0"))
    if args.resume:
        from .config import config_from_dict

        run = Run.open(args.resume)
        cfg = config_from_dict(run.config)
        if run.is_live():
            raise SemsafeError(f"run {run.id} is being trained by another process (pid "
                               f"{run.status.get('pid')}); wait for it or cancel it before resuming")
        if run.status.get("state") == "done":
            raise SemsafeError(f"run {run.id} is already done; start a new run instead")
        with _cancellable_while_queued(run), run.lock(), _device(rank, run):
            train_run(cfg, run, resume=True)
    else:
        cfg = load_config(args.config, args.overrides)
        if rank == 0:
            run = _queued_run_with(args.run_id, cfg) or Run.create(cfg.to_dict(), name=args.run_id)
        else:  # other processes of a multi-process launch join the run rank 0 creates
            if not args.run_id:
                raise SemsafeError("multi-process training needs --run-id so all processes share one run")
            deadline = time.time() + 120
            while True:
                try:
                    run = Run.open(args.run_id)
                    break
                except SemsafeError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.5)
        print(f"run {run.id}: {run.path}", flush=True)
        with _cancellable_while_queued(run), run.lock() if rank == 0 else contextlib.nullcontext(), \
                _device(rank, run):
            train_run(cfg, run)
    print(json.dumps({"run": run.id, **run.status}), flush=True)
    return 0


@contextlib.contextmanager
def _cancellable_while_queued(run: Run):
    """SIGTERM (the dashboard's cancel) while the run waits for the device marks it cancelled;
    once training starts, train_run handles it (saving the adapter so far)."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
    try:
        yield
    except KeyboardInterrupt:
        if run.status.get("state") == "queued":
            run.write_status("cancelled", pid=None, message="cancelled before it started")
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _device(rank: int, run: Run):
    """The device's job lock (one job at a time, shared with the dashboard's queue and `eval`);
    only rank 0 of a multi-process launch takes it."""
    from .jobs import device_lock

    if rank != 0:
        return contextlib.nullcontext()
    return device_lock(on_wait=lambda: (run.write_status("queued", pid=os.getpid(),
                                                         message="waiting: another job is using the device"),
                                        print("waiting for the device: another job is using it", flush=True)))


def _queued_run_with(run_id: str | None, cfg: TrainConfig) -> Run | None:
    """The dashboard creates a run (queued, so the page can show it at once) and then starts
    exactly the command it shows, `semsafe train --config ... --set ... --run-id ID`: that
    command adopts the queued run when its config is the same, instead of refusing the id."""
    if not run_id:
        return None
    try:
        run = Run.open(run_id)
    except SemsafeError:
        return None
    if run.status.get("state") == "queued" and not run.is_live() and run.config == cfg.to_dict():
        return run
    return None


def main(argv=None) -> int:
    from .config import add_train_arguments

    parser = argparse.ArgumentParser(prog="python -m semsafe.train", description="TA-SFT training")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except SemsafeError as err:
        print(f"semsafe train: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semsafe train: cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
