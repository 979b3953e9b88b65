"""UMAP projection of the vocabulary: computed once, cached on disk, reused."""

import numpy as np

from semsafe.cost import SemanticCost
from semsafe.projection import cached_projection, compute_projection, projection_path


def test_projection_is_cached_and_reused(embedded, empty_cache):
    model, _ = embedded
    cost = SemanticCost.from_model(model)
    assert cached_projection("smollm2-135m-instruct", 400, 2) is None
    stages = []
    coords = compute_projection(cost, "smollm2-135m-instruct", 400, 2, on_stage=stages.append)
    assert coords.shape == (400, 2) and np.isfinite(coords).all() and stages
    path = projection_path("smollm2-135m-instruct", 400, 2)
    mtime = path.stat().st_mtime_ns
    again = compute_projection(cost, "smollm2-135m-instruct", 400, 2)
    assert np.array_equal(again, coords) and path.stat().st_mtime_ns == mtime
    path.write_bytes(b"damaged")
    assert cached_projection("smollm2-135m-instruct", 400, 2) is None


def test_project_command_caches_what_the_cost_page_reads(empty_cache, capsys):
    """The CLI's own entry point, in this process: a UMAP run compiles its numba kernels once
    per process (about 15 s), which the test above has already paid here; the empty cache
    borrows the converted model, whose tokenizer the tiny random model uses."""
    from semsafe.cli import main

    assert main(["project", "--model", "tiny-random", "--tokens", "80"]) in (0, None)
    assert "80 tokens x 2 dims" in capsys.readouterr().out
    assert cached_projection("tiny-random", 80, 2) is not None  # where the Cost page reads it
    assert main(["project", "--dims", "4"]) == 2
    assert "--dims must be 2 or 3" in capsys.readouterr().err
