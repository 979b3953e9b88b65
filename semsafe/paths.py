"""Where semsafe keeps what it builds: converted models, caches, runs."""

import os
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m-instruct"  # the embedded model (here so light modules need not import torch)


def cache_dir() -> Path:
    """Root of semsafe's cache: ``$SEMSAFE_CACHE`` or ``~/.cache/semsafe``."""
    root = os.environ.get("SEMSAFE_CACHE") or Path.home() / ".cache" / "semsafe"
    return Path(root).expanduser()

# answers per generation batch in evaluation; every suite's prompts share the batches (a larger
# batch amortises each decoding step's weight reads: bench/eval_speed.py)
EVAL_BATCH_SIZE = 48
# answers per generation batch in `semsafe prepare` (the same trade-off; greedy answers do not
# depend on it, so it is not part of a prepared folder's key)
PREPARE_BATCH_SIZE = 48
