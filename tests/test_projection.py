"""UMAP projection of the vocabulary: computed once, cached on disk, reused."""

import numpy as np

from semsafe.cost import SemanticCost
from semsafe.projection import cached_projection, compute_projection, projection_path


def test_projection_is_cached_and_reused(embedded, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSAFE_CACHE", str(tmp_path))
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


def test_project_command_caches_what_the_cost_page_reads(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, SEMSAFE_CACHE=str(tmp_path), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "semsafe.cli", "project", "--model", "tiny-random", "--tokens", "80"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "80 tokens x 2 dims" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "semsafe.cli", "project", "--dims", "4"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode == 2 and "--dims must be 2 or 3" in bad.stderr
