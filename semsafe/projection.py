"""UMAP projection of a model's vocabulary embeddings, computed once and cached on disk (.npy).

On 2 cores the full 49,152-token vocabulary takes minutes; ``n_tokens`` projects the first n
token ids instead (BPE ids grow roughly with rarity, so the first ids are the common tokens).
"""

import hashlib

import numpy as np

from .paths import cache_dir
from .store import atomic_write_json, atomic_write_npy


def projection_path(model_spec: str, n_tokens: int, dims: int, which: str = "input"):
    key = hashlib.sha256(f"{model_spec}|{n_tokens}|{dims}|{which}".encode()).hexdigest()[:12]
    return cache_dir() / "projections" / f"{key}.npy"


def projection_estimate_s(n_tokens: int) -> float:
    """Rough seconds for a projection on 2 cores, from bench/projection.py's measurements
    (2,000 tokens 24 s, 5,000 46 s with 200 epochs; larger sets run 100 epochs)."""
    return 15 + n_tokens * (0.006 if n_tokens <= 10_000 else 0.0008)


def cached_projection(model_spec: str, n_tokens: int, dims: int = 2, which: str = "input"):
    path = projection_path(model_spec, n_tokens, dims, which)
    if path.exists():
        try:
            coords = np.load(path, allow_pickle=False)
            if coords.shape == (n_tokens, dims):
                return coords
        except (OSError, ValueError):
            pass  # a damaged file: recompute
    return None


def compute_projection(cost, model_spec: str, n_tokens: int | None = None, dims: int = 2,
                       which: str = "input", seed: int = 0, on_stage=None) -> np.ndarray:
    """(n_tokens, dims) UMAP coordinates of the unit embeddings under cosine distance."""
    import umap

    n_tokens = min(n_tokens or cost.vocab_size, cost.vocab_size)
    cached = cached_projection(model_spec, n_tokens, dims, which)
    if cached is not None:
        return cached
    if on_stage:
        on_stage(f"UMAP on {n_tokens:,} tokens: nearest-neighbour graph, then layout")
    reducer = umap.UMAP(n_components=dims, metric="cosine", n_neighbors=15, min_dist=0.1,
                        random_state=seed, n_jobs=1, low_memory=True, verbose=False,  # a seed means one job
                        n_epochs=200 if n_tokens <= 10_000 else 100)
    coords = reducer.fit_transform(cost.unit[:n_tokens].float().numpy()).astype(np.float32)
    path = projection_path(model_spec, n_tokens, dims, which)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_npy(path, coords)
    atomic_write_json(path.with_suffix(".json"), {"model": model_spec, "n_tokens": n_tokens, "dims": dims})
    return coords
