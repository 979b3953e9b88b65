"""Where semsafe keeps what it builds: converted models, caches, runs."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of semsafe's cache: ``$SEMSAFE_CACHE`` or ``~/.cache/semsafe``."""
    root = os.environ.get("SEMSAFE_CACHE") or Path.home() / ".cache" / "semsafe"
    return Path(root).expanduser()
