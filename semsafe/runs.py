"""The run store: one folder per run, written atomically, readable while the run is live.

    runs/<run_id>/config.yaml     the full config that ran
                  status.json     state (queued|running|done|failed|cancelled), pid, step,
                                  total steps, message, times
                  metrics.jsonl   one line per logging step
                  checkpoints/    Trainer checkpoints (resume from the latest)
                  adapter/        the trained LoRA adapter (PeftModel.from_pretrained loads it)
"""

import json
import os
import re
import secrets
import time
from pathlib import Path

import yaml

from .errors import SemsafeError
from .store import atomic_write_text, effective_state, hold_lock, lock_is_held, read_status

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
STATES = ("queued", "running", "done", "failed", "cancelled")


def runs_dir() -> Path:
    """``$SEMSAFE_RUNS`` or ``./runs``."""
    return Path(os.environ.get("SEMSAFE_RUNS") or "runs").resolve()


atomic_write = atomic_write_text  # kept name for callers; the one implementation is in store.py


class Run:
    def __init__(self, run_id: str, root: Path | None = None):
        root = (root or runs_dir()).resolve()
        if not _RUN_ID.match(run_id or "") or run_id in (".", ".."):
            raise SemsafeError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-'")
        path = (root / run_id).resolve()
        if path.parent != root:
            raise SemsafeError(f"run id {run_id!r} escapes the runs folder {root}")
        self.id, self.root, self.path = run_id, root, path

    # --- creation and lookup ---
    @classmethod
    def create(cls, config_dict: dict, name: str | None = None, root: Path | None = None) -> "Run":
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run = cls(name or f"{stamp}-{config_dict.get('objective', 'run')}-{secrets.token_hex(2)}", root)
        if run.path.exists():
            raise SemsafeError(f"run {run.id} already exists in {run.root}")
        run.path.mkdir(parents=True)
        atomic_write(run.path / "config.yaml", yaml.safe_dump(config_dict, sort_keys=False))
        run.write_status("queued", message="waiting to start")
        return run

    @classmethod
    def open(cls, run_id: str, root: Path | None = None) -> "Run":
        run = cls(run_id, root)
        if not (run.path / "config.yaml").exists():
            if run.path.is_dir():  # a folder without its settings: not listed as a run, so say why
                raise SemsafeError(f"{run.path} has no config.yaml, so it is not a run semsafe can open "
                                   "(its creation was cut short, or the file was removed); restore the file "
                                   "or remove the folder")
            raise SemsafeError(f"no run {run_id!r} in {run.root}")
        return run

    # --- files ---
    @property
    def config(self) -> dict:
        """The run's settings; a damaged config.yaml is a clear error, not a parser's trace."""
        path = self.path / "config.yaml"
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            mark = getattr(err, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            raise SemsafeError(f"run {self.id}: {path} cannot be read ({str(err).splitlines()[0]}{where}); "
                               "restore it or remove the run's folder") from None
        if not isinstance(config, dict):
            raise SemsafeError(f"run {self.id}: {path} holds no settings (a YAML mapping); restore it or "
                               "remove the run's folder")
        return config

    @property
    def status(self) -> dict:
        return read_status(self.path / "status.json")

    def write_status(self, state: str, **fields) -> dict:
        if state not in STATES:
            raise ValueError(state)
        status = {**self.status, **fields, "state": state, "updated": time.time()}
        status.setdefault("created", status["updated"])
        text = json.dumps(status, indent=1)
        try:
            atomic_write(self.path / "status.json", text)
        except OSError as err:
            import errno

            if err.errno != errno.ENOSPC:
                raise
            # a full disk has no room for a second file, but the old status's own blocks can be
            # overwritten: the run's state (failed, and why) must still reach the user
            with open(self.path / "status.json", "r+", encoding="utf-8") as fh:
                fh.write(text)
                fh.truncate()
        return status

    # --- liveness: a lock held by the training process for its whole life ---
    def lock(self):
        """Hold this run's lock (re-entrant in one process). Another live process holding it
        means the run is being trained: refuse rather than write the same files twice."""
        return hold_lock(self.path / ".lock",
                         f"run {self.id} is being trained by another process (pid {self.status.get('pid')}); "
                         f"wait for it to finish or cancel it (`semsafe cancel {self.id}`)")

    def is_live(self) -> bool:
        """Whether some process holds this run's lock (is training or waiting to train it)."""
        return lock_is_held(self.path / ".lock")

    @property
    def state(self) -> str:
        """The status's state, or ``died`` when it says queued/running but no process holds the
        run (killed, crashed machine): its last step and checkpoints are still there."""
        return effective_state(self.status, self.path / ".lock")

    def append_metrics(self, row: dict) -> None:
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()

    def metrics(self) -> list[dict]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line being written right now
        return rows

    def truncate_metrics(self, last_step: int) -> None:
        """Keep only complete lines up to ``last_step`` (used when resuming from a checkpoint,
        whose later steps will be logged again)."""
        rows = [r for r in self.metrics() if r.get("step", 0) <= last_step]
        atomic_write(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    def load_model(self, device=None, dtype=None):
        """``(model, tokenizer)``: the run's base model with its trained adapter; the base model
        is the same object with ``model.disable_adapter()``, so one copy serves before and after."""
        from peft import PeftModel

        from .models import load_model, quiet_adapter_wrapping

        if not (self.path / "adapter" / "adapter_config.json").exists():
            raise SemsafeError(f"run {self.id} has no adapter yet (state: {self.state}); "
                               "wait for it to finish, or resume it")
        base, tok = load_model(self.config["model"], device=device, dtype=dtype)
        with quiet_adapter_wrapping():
            return PeftModel.from_pretrained(base, self.path / "adapter").eval(), tok

    def remove_incomplete_checkpoints(self) -> list[str]:
        """Delete checkpoint folders a crash left half-written (see ``_complete_checkpoint``):
        they can never be resumed from, and hold the space a full disk needs back."""
        import shutil

        removed = []
        for ckpt in (self.path / "checkpoints").glob("checkpoint-*"):
            if ckpt.is_dir() and not _complete_checkpoint(ckpt):
                shutil.rmtree(ckpt, ignore_errors=True)
                removed.append(ckpt.name)
        return removed

    def latest_checkpoint(self) -> Path | None:
        ckpts = sorted((self.path / "checkpoints").glob("checkpoint-*"),
                       key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
        complete = [c for c in ckpts if _complete_checkpoint(c)]
        return complete[-1] if complete else None


def _complete_checkpoint(ckpt: Path) -> bool:
    """The Trainer writes trainer_state.json last, so a checkpoint is complete when that file
    reads as JSON; a full disk can leave it present but empty or cut short."""
    try:
        json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):
        return False


def list_runs(root: Path | None = None) -> list[Run]:
    root = (root or runs_dir())
    if not root.exists():
        return []
    return sorted((Run(p.name, root) for p in root.iterdir()
                   if p.is_dir() and _RUN_ID.match(p.name) and (p / "config.yaml").exists()),
                  key=lambda r: r.status.get("created", 0), reverse=True)
