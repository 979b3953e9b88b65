"""Time the UMAP projection of the embedded model's vocabulary (the Cost matrix page's 2-D view).

    .venv/bin/python bench/projection.py        # ~2-3 min on 2 cores

Runs in a temporary cache so nothing is reused: the first projection includes numba's one-off
compilation of UMAP's kernels; the later ones show the steady cost.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    from semsafe.cost import SemanticCost
    from semsafe.models import load_model

    model, _ = load_model()
    cost = SemanticCost.from_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SEMSAFE_CACHE"] = tmp  # projections only; the model is already loaded
        from semsafe.projection import compute_projection
        for n in (2000, 5000, cost.vocab_size):
            t = time.perf_counter()
            compute_projection(cost, "bench", n, 2)
            print(f"{n:>6} tokens: {time.perf_counter() - t:6.1f} s", flush=True)


if __name__ == "__main__":
    main()
