"""How semsafe writes files and names what it stores: one atomic-write helper and one key per
model spec, used by every module that writes status, reports, summaries or results.

A write goes to a uniquely named temporary file in the same folder, is flushed to disk, and
replaces the target in one step, so a reader (the dashboard, a resumed run) sees the old file
or the new one, never half of one; on any error the temporary file is removed and the old
file is untouched (a full disk leaves no 0-byte file behind).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, value, indent: int = 1) -> None:
    atomic_write_text(path, json.dumps(value, indent=indent, ensure_ascii=False, default=_jsonable))


def _jsonable(value):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def model_key(spec: str) -> str:
    """A folder name for a model spec: a readable slug plus a hash of the exact spec, so
    ``org/model``, ``org.model`` and ``org_model`` never share a folder."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", spec).strip("_")[-40:] or "model"
    return f"{slug}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}"


def content_hash(*parts) -> str:
    """A short hash of text or JSON-able values (prompt sets, settings)."""
    h = hashlib.sha256()
    for part in parts:
        h.update((part if isinstance(part, str) else json.dumps(part, sort_keys=True, default=str)).encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def atomic_write_npy(path, array) -> None:
    """A numpy array as .npy (never pickled), atomically."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_parquet(path, frame) -> None:
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def read_resumable_jsonl(path) -> list[dict]:
    """The rows of an append-only JSONL log that a killed process may have cut mid-line: the
    cut fragment is removed from the file (so appending can go on) and unreadable lines are
    skipped (their work is simply redone)."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(raw.rfind(b"\n") + 1)
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


# --- liveness locks: a process holds a file lock for as long as it works on something ---------

_HELD: dict[str, tuple] = {}  # lock path -> (open file, depth): re-entrant within a process


@contextlib.contextmanager
def hold_lock(path, busy_message: str):
    """Hold an exclusive lock on ``path`` (re-entrant in one process); if another process holds
    it, raise SemsafeError(busy_message) at once. The kernel releases it when a process dies."""
    from .errors import SemsafeError

    key = str(path)
    if key in _HELD:
        fh, depth = _HELD[key]
        _HELD[key] = (fh, depth + 1)
    else:
        fh = open(key, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise SemsafeError(busy_message) from None
        _HELD[key] = (fh, 1)
    try:
        yield
    finally:
        fh, depth = _HELD[key]
        if depth > 1:
            _HELD[key] = (fh, depth - 1)
        else:
            del _HELD[key]
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def lock_is_held(path) -> bool:
    """Whether some process (this one included) holds the lock on ``path``."""
    path = Path(path)
    if str(path) in _HELD:
        return True
    if not path.exists():
        return False
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def effective_state(status: dict, lock_path, grace_s: float = 60) -> str:
    """A run's or job's state as it really is: ``died`` when its status says queued or running
    but no process holds its lock (a just-launched one gets ``grace_s`` to take it)."""
    import time

    state = status.get("state", "unknown")
    if state == "queued" and time.time() - status.get("updated", 0) < grace_s:
        return state
    if state in ("queued", "running") and not lock_is_held(lock_path):
        return "died"
    return state


def read_status(path) -> dict:
    """A status.json as written by a run or a job; a missing or half-read one is "unknown"."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"state": "unknown"}
