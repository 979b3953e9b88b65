"""Seconds per phase of a process's work, by wrapping the functions that do it. Imported by the
driver processes of bench/eval_speed.py and bench/eval_phases.py."""

import collections
import time

phases = collections.Counter()


def timed(owner, name: str, phase: str) -> None:
    """Add the time every call of ``owner.name`` takes to ``phases[phase]`` (a generator is
    timed as it is consumed). Nothing happens if ``owner`` has no such attribute (older code)."""
    inner = getattr(owner, name, None)
    if inner is None:
        return

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            result = inner(*args, **kwargs)
            if hasattr(result, "__next__"):
                result = list(result)
            return result
        finally:
            phases[phase] += time.perf_counter() - start

    setattr(owner, name, wrapper)
