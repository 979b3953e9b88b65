"""Shared fixtures. Tests never touch the network: hub look-ups are forced offline."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def embedded():
    """The real embedded SmolLM2-135M-Instruct (converted and cached on first use)."""
    from semsafe.models import load_model

    return load_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def tiny():
    """A tiny random Llama with the embedded tokenizer, for fast plumbing tests."""
    from semsafe.models import load_model

    return load_model("tiny-random")


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty semsafe cache (``SEMSAFE_CACHE``, returned) that borrows the user cache's
    converted models and trained judges: a test starts clean without converting the embedded
    model (about 45 s) or training a judge again."""
    from semsafe.paths import cache_dir

    shared_root, cache = cache_dir(), tmp_path / "cache"
    cache.mkdir()
    for shared in ("models", "judges"):
        (shared_root / shared).mkdir(parents=True, exist_ok=True)
        (cache / shared).symlink_to(shared_root / shared)
    monkeypatch.setenv("SEMSAFE_CACHE", str(cache))
    return cache


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


def wait_until(condition, timeout: float = 300, every: float = 0.1) -> bool:
    """Poll ``condition()`` (exceptions count as False) until it holds or ``timeout`` passes."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if condition():
                return True
        except (OSError, ValueError):
            pass
        time.sleep(every)
    return False
