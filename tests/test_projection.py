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
