"""Measure peak resident memory of a block of code on Linux (for bench/ and memory tests).

ru_maxrss is a lifetime peak, so set-up that allocated more than the measured code would hide
it. Writing 5 to /proc/self/clear_refs resets the kernel's high-water mark (VmHWM) to the
current RSS, so the peak seen afterwards belongs to the measured block alone.
"""

from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


class PeakRSS:
    """``with PeakRSS() as m: work()`` then ``m.extra_bytes``: peak RSS above the start."""

    supported = _STATUS.exists() and Path("/proc/self/clear_refs").exists()

    def __enter__(self):
        if not self.supported:
            raise RuntimeError("PeakRSS needs Linux /proc (clear_refs)")
        Path("/proc/self/clear_refs").write_text("5")
        self.start_kb = _status_kb("VmRSS")
        return self

    def __exit__(self, *exc):
        self.extra_bytes = max(0, _status_kb("VmHWM") - self.start_kb) * 1024
        return False
