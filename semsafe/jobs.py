"""Background jobs for the dashboard: the UI builds a CLI command, shows it, and starts it as a
separate process (never inside Streamlit). One job at a time per device: each job takes an
exclusive lock on ``runs/.device-<name>.lock`` for its whole life, so later jobs wait, visibly
queued, until it is free. Cancel sends SIGTERM; the job marks itself cancelled."""

import contextlib
import fcntl
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from .errors import SemsafeError
from .runs import Run, runs_dir
from .store import atomic_write_json, effective_state, hold_lock, read_status


def device_name() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def device_lock(root: Path | None = None, device: str | None = None, on_wait=None):
    """Hold the device's job lock; calls ``on_wait()`` once if another job holds it."""
    root = root or runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".device-{device or device_name()}.lock"
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)  # blocks until the running job ends
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def train_command(config_path: str | None, overrides: dict) -> list[str]:
    """The `semsafe train` command for a config file plus overrides (shown to the user as-is)."""
    cmd = ["semsafe", "train"]
    if config_path:
        cmd += ["--config", str(config_path)]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def shell_text(cmd: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


def launch_training(config_path: str | None, overrides: dict, root: Path | None = None) -> Run:
    """Create the run (state queued, so the page shows it at once) and start exactly the command
    the page shows, ``semsafe train --config ... --set ... --run-id ID``, detached from the
    dashboard; that command adopts the queued run. Output goes to ``runs/<id>/log.txt``. No
    shell is involved."""
    from .config import load_config

    cfg = load_config(config_path, [f"{k}={v}" for k, v in overrides.items()])  # bad input fails here
    run = Run.create(cfg.to_dict(), root=root)
    cmd = [*train_command(config_path, overrides), "--run-id", run.id]
    env = dict(os.environ)
    if root:
        env["SEMSAFE_RUNS"] = str(root)
    log = open(run.path / "log.txt", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "semsafe.cli", *cmd[1:]], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    log.close()
    run.write_status("queued", pid=proc.pid, message="waiting for the device", command=shell_text(cmd))
    return run


def cancel(run: Run) -> bool:
    """SIGTERM the run's process; it saves what it has and marks itself cancelled. Only a
    process that holds the run's lock is signalled: a recorded pid of a process that died may
    since belong to anything else."""
    status = run.status
    pid = status.get("pid")
    if status.get("state") not in ("queued", "running") or not pid:
        return False
    if not run.is_live():
        run.write_status("failed", pid=None, message=f"the process died (last step {status.get('step', 0)}); "
                                                     f"`semsafe train --resume {run.id}` continues it")
        return False
    try:
        os.kill(int(pid), signal.SIGTERM)
    except ProcessLookupError:
        run.write_status("failed", pid=None, message="the process had already exited")
        return False
    return True


def log_tail(run: Run, lines: int = 30) -> str:
    path = run.path / "log.txt"
    if not path.exists():
        return ""
    data = path.read_bytes()[-20000:].decode("utf-8", errors="replace")
    # progress bars rewrite one line with carriage returns: keep the last state of each line
    cleaned = [part.split("\r")[-1] for part in data.split("\n")]
    return "\n".join(cleaned[-lines:])


def eta_seconds(run: Run) -> float | None:
    status, rows = run.status, run.metrics()
    step, total = status.get("step") or 0, status.get("total_steps") or 0
    if len(rows) < 2 or not step or not total:
        return None
    rate = (rows[-1]["time"] - rows[0]["time"]) / max(rows[-1]["step"] - rows[0]["step"], 1)
    return max(0.0, (total - step) * rate)


def wait_for(run: Run, states=("done", "failed", "cancelled"), timeout: float = 600) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = run.status
        if status.get("state") in states:
            return status
        time.sleep(0.5)
    raise SemsafeError(f"run {run.id} did not reach {states} within {timeout} s")


# --- evaluation jobs: `semsafe eval ... --job ID`, with status, log, progress and a queue --------

class Job:
    """A background evaluation: ``runs/.jobs/<id>/`` holds status.json (state, command, progress
    per suite) and log.txt. The process holds ``.lock`` while it works, so a job whose process
    died shows as died, never as running forever."""

    def __init__(self, job_id: str, root: Path | None = None):
        self.id = job_id
        self.path = (root or runs_dir()) / ".jobs" / job_id

    @property
    def status(self) -> dict:
        return read_status(self.path / "status.json")

    def write_status(self, **fields) -> None:
        atomic_write_json(self.path / "status.json", {**self.status, **fields, "updated": time.time()})

    @property
    def state(self) -> str:
        return effective_state(self.status, self.path / ".lock")

    def running(self):
        return hold_lock(self.path / ".lock", f"job {self.id} is already being run by another process")

    def progress(self, suite: str, done: int, total: int) -> None:
        status = self.status
        progress = {**status.get("progress", {}), suite: [done, total]}
        self.write_status(state="running", progress=progress,
                          started=status.get("started") or time.time())

    def fraction(self) -> float:
        """Share of the job's work done: each suite's scored rows and each generation phase
        ("answers", "base answers") count as one part; parts not started yet count as 0."""
        status = self.status
        suites = status.get("suites") or []
        progress = status.get("progress", {})
        if not suites:
            return 0.0
        parts = list(suites) + [k for k in progress if k not in suites]
        return sum(d / t if t else 0.0 for d, t in (progress.get(s, [0, 1]) for s in parts)) / len(parts)

    def eta_seconds(self) -> float | None:
        started, frac = self.status.get("started"), self.fraction()
        if not started or frac <= 0:
            return None
        return (time.time() - started) * (1 - frac) / frac

    def log_tail(self, lines: int = 20) -> str:
        path = self.path / "log.txt"
        if not path.exists():
            return ""
        data = path.read_bytes()[-20000:].decode("utf-8", errors="replace")
        return "\n".join(part.split("\r")[-1] for part in data.split("\n")[-lines:])


def launch_eval(args: list[str], subject: str, suites: list[str], root: Path | None = None) -> Job:
    """Start ``semsafe eval ARGS`` as a background job (no shell); returns at once."""
    import secrets

    job = Job(time.strftime("eval-%Y%m%d-%H%M%S-") + secrets.token_hex(2), root)
    job.path.mkdir(parents=True)
    cmd = ["semsafe", "eval", *args]
    job.write_status(state="queued", subject=subject, suites=suites, command=shell_text(cmd),
                     message="waiting for the device", created=time.time())
    env = dict(os.environ)
    if root:
        env["SEMSAFE_RUNS"] = str(root)
    log = open(job.path / "log.txt", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "semsafe.cli", "eval", *args, "--job", job.id],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    log.close()
    job.write_status(pid=proc.pid)
    return job


def list_jobs(root: Path | None = None) -> list[Job]:
    folder = (root or runs_dir()) / ".jobs"
    if not folder.exists():
        return []
    jobs = [Job(p.name, root) for p in folder.iterdir() if (p / "status.json").exists()]
    return sorted(jobs, key=lambda j: j.status.get("created", 0), reverse=True)
