"""Shared pieces of the learned judges: sentence embeddings, labelled pyrit data, and a
logistic-regression judge stored without pickle (weights in .npz, facts in .json)."""

import csv
import functools
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SemsafeError
from ..packs import pack_dir
from ..paths import cache_dir
from ..store import atomic_write_bytes, atomic_write_json

ENCODER = "all-MiniLM-L6-v2"


@functools.lru_cache(maxsize=1)
def _encoder():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(pack_dir("minilm") / "model"), device="cpu")


_EMBEDDED: dict[str, np.ndarray] = {}  # text -> embedding: both learned judges read the same texts
_EMBEDDED_MAX = 50_000  # about 75 MB


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """(n, 384) unit-norm MiniLM sentence embeddings; each distinct text is encoded once per
    process (the refusal and harm judges embed the same prompts and answers)."""
    texts = [t if t else " " for t in texts]
    missing = list(dict.fromkeys(t for t in texts if t not in _EMBEDDED))
    if missing:
        vectors = _encoder().encode(missing, batch_size=batch_size, normalize_embeddings=True,
                                    show_progress_bar=False, convert_to_numpy=True)
        if len(_EMBEDDED) + len(missing) > _EMBEDDED_MAX:
            _EMBEDDED.clear()
        _EMBEDDED.update(zip(missing, vectors))
    if not texts:
        return np.zeros((0, _encoder().get_sentence_embedding_dimension()), dtype=np.float32)
    return np.stack([_EMBEDDED[t] for t in texts])


def read_pyrit_csv(relative: str) -> list[dict]:
    """Rows of one of pyrit's scorer-eval CSVs (leading '# ...' lines are metadata)."""
    path = pack_dir("pyrit") / "datasets" / "scorer_evals" / relative
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        start += 1
    csv.field_size_limit(10**8)
    return list(csv.DictReader(io.StringIO("".join(lines[start:]))))


@dataclass
class LinearJudge:
    """p(positive) = sigmoid(features @ coef + intercept), with the validation it came with."""

    name: str
    version: str
    coef: np.ndarray
    intercept: float
    threshold: float = 0.5
    validation: dict = field(default_factory=dict)

    def probability(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(features @ self.coef + self.intercept)))

    def save(self, folder: Path | None = None) -> Path:
        folder = folder or cache_dir() / "judges"
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, coef=self.coef, intercept=np.array([self.intercept]))
        atomic_write_bytes(folder / f"{self.name}.npz", buf.getvalue())
        meta = {"name": self.name, "version": self.version, "threshold": self.threshold,
                "validation": self.validation}
        # the .json is written last: it marks completeness
        atomic_write_json(folder / f"{self.name}.json", meta)
        return folder

    @classmethod
    def load(cls, name: str, version: str, folder: Path | None = None) -> "LinearJudge | None":
        """The cached judge, or None when it is missing, partial or of another version."""
        folder = folder or cache_dir() / "judges"
        try:
            meta = json.loads((folder / f"{name}.json").read_text())
            with np.load(folder / f"{name}.npz", allow_pickle=False) as arrays:
                coef, intercept = arrays["coef"], float(arrays["intercept"][0])
        except (OSError, ValueError, KeyError):
            return None
        if meta.get("version") != version:
            return None
        return cls(name, version, coef, intercept, meta.get("threshold", 0.5), meta.get("validation", {}))


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0, seed: int = 0):
    from sklearn.linear_model import LogisticRegression

    if len(set(y.tolist())) < 2:
        raise SemsafeError("judge training data has a single class; cannot fit a classifier")
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
    model.fit(x, y)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


class PairJudge:
    """A learned judge of (prompt, answer) pairs: its features, its weights, its validation."""

    def __init__(self, linear: LinearJudge, features):
        self.linear, self.features = linear, features
        self.name, self.version, self.validation = linear.name, linear.version, linear.validation

    def probability(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        return self.linear.probability(self.features(list(prompts), list(responses)))

    def flags(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        return self.probability(prompts, responses) >= self.linear.threshold


def load_or_train(name: str, version: str, train, features, retrain: bool = False) -> PairJudge:
    """The judge cached on disk, or trained (and saved) when missing, stale or ``retrain``."""
    linear = None if retrain else LinearJudge.load(name, version)
    if linear is None:
        linear = train()
        linear.save()
    return PairJudge(linear, features)


class HFClassifierJudge:
    """Any Hugging Face sequence-classification model as a judge of (prompt, answer) pairs, e.g.
    a harmfulness reward model or a guard model named by hub id (online) or local folder.
    ``positive_label`` names the class whose probability is returned."""

    def __init__(self, model_id: str, positive_label: str, max_length: int = 512):
        import os

        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        local = Path(model_id).exists() or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_id, local_files_only=local)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                model_id, local_files_only=local, trust_remote_code=False).eval()
        except Exception as err:
            raise SemsafeError(f"cannot load classifier {model_id!r} ({err}); give a local folder, "
                               "or a hub id while online") from None
        labels = {v.lower(): int(k) for k, v in self.model.config.id2label.items()}
        if positive_label.lower() not in labels:
            raise SemsafeError(f"{model_id} has labels {sorted(labels)}; {positive_label!r} is not one of them")
        self.index, self.max_length = labels[positive_label.lower()], max_length
        self.name, self.version = f"hf:{model_id}", positive_label
        self.validation = {"data": "not validated by semsafe; see the model's own card"}

    def probability(self, prompts: list[str], responses: list[str], batch_size: int = 16) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(prompts), batch_size):
            enc = self.tokenizer(list(prompts[i:i + batch_size]), list(responses[i:i + batch_size]),
                                 truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
            with torch.no_grad():
                out.append(self.model(**enc).logits.softmax(-1)[:, self.index].numpy())
        return np.concatenate(out) if out else np.zeros(0)
