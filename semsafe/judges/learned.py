"""Shared pieces of the learned judges: sentence embeddings, labelled pyrit data, and a
logistic-regression judge stored without pickle (weights in .npz, facts in .json)."""

import csv
import functools
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SemsafeError
from ..packs import pack_file
from ..paths import cache_dir
from ..store import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

ENCODER = "all-MiniLM-L6-v2"


@functools.lru_cache(maxsize=1)
def _encoder():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(pack_file("minilm", "model")), device="cpu")


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
    path = pack_file("pyrit", f"datasets/scorer_evals/{relative}")
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
    vectorizers: dict = field(default_factory=dict)  # name -> TextVectorizer the features need

    def probability(self, features) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(features @ self.coef).ravel() + self.intercept)))

    def save(self, folder: Path | None = None) -> Path:
        folder = folder or cache_dir() / "judges"
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, coef=self.coef, intercept=np.array([self.intercept]))
        atomic_write_bytes(folder / f"{self.name}.npz", buf.getvalue())
        for key, vectorizer in self.vectorizers.items():
            vectorizer.save(folder / f"{self.name}.{key}")
        meta = {"name": self.name, "version": self.version, "threshold": self.threshold,
                "validation": self.validation, "vectorizers": sorted(self.vectorizers)}
        # the .json is written last: it marks completeness
        atomic_write_json(folder / f"{self.name}.json", meta)
        return folder

    @classmethod
    def load(cls, name: str, version: str, folder: Path | None = None) -> "LinearJudge | None":
        """The cached judge, or None when it is missing, partial or of another version."""
        folder = folder or cache_dir() / "judges"
        try:
            meta = json.loads((folder / f"{name}.json").read_text())
            if meta.get("version") != version:
                return None
            with np.load(folder / f"{name}.npz", allow_pickle=False) as arrays:
                coef, intercept = arrays["coef"], float(arrays["intercept"][0])
            vectorizers = {key: TextVectorizer.load(folder / f"{name}.{key}") for key in meta.get("vectorizers", [])}
        except (OSError, ValueError, KeyError):
            return None
        return cls(name, version, coef, intercept, meta.get("threshold", 0.5), meta.get("validation", {}),
                   vectorizers)


class TextVectorizer:
    """TF-IDF (sublinear tf) with its fitted vocabulary and idf weights, stored as JSON and .npz
    (sklearn's own estimator would need pickle). ``kind`` "words": word 1-2-grams; "chars":
    character 3-5-grams within words, which still match a misspelt, inflected or unseen word."""

    KINDS = {"words": dict(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50_000),
             "chars": dict(analyzer="char_wb", ngram_range=(3, 5), min_df=3, sublinear_tf=True,
                           max_features=60_000)}

    def __init__(self, vocabulary: dict | None = None, idf: np.ndarray | None = None, kind: str = "words"):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.kind = kind
        params = dict(self.KINDS[kind])
        if vocabulary is not None:
            params = {k: v for k, v in params.items() if k not in ("min_df", "max_features")}
            params["vocabulary"] = vocabulary
        self._tfidf = TfidfVectorizer(**params)
        if idf is not None:
            self._tfidf.idf_ = idf

    @classmethod
    def fitted(cls, texts: list[str], kind: str = "words") -> "TextVectorizer":
        v = cls(kind=kind)
        v._tfidf.fit(texts)
        return v

    def transform(self, texts: list[str]):
        return self._tfidf.transform(texts)

    def save(self, stem: Path) -> None:
        vocabulary = {k: int(v) for k, v in self._tfidf.vocabulary_.items()}
        buf = io.BytesIO()
        np.savez(buf, idf=self._tfidf.idf_)
        atomic_write_bytes(stem.with_name(stem.name + ".idf.npz"), buf.getvalue())
        atomic_write_json(stem.with_name(stem.name + ".vocab.json"), {"kind": self.kind, "vocabulary": vocabulary})

    @classmethod
    def load(cls, stem: Path) -> "TextVectorizer":
        stored = json.loads(stem.with_name(stem.name + ".vocab.json").read_text())
        with np.load(stem.with_name(stem.name + ".idf.npz"), allow_pickle=False) as arrays:
            return cls(stored["vocabulary"], arrays["idf"], stored["kind"])


def window_embeddings(texts: list[str], words: int = 60) -> list[np.ndarray]:
    """Per text, the embeddings (k, 384) of its consecutive windows of ``words`` words: the
    encoder reads 256 word pieces, so detail deep in a long answer would otherwise never be seen."""
    owner, pieces = [], []
    for i, text in enumerate(texts):
        split = (text or " ").split() or [" "]
        for start in range(0, len(split), words):
            owner.append(i)
            pieces.append(" ".join(split[start:start + words]))
    vectors, owner = embed(pieces), np.array(owner)
    return [vectors[owner == i] for i in range(len(texts))]


def platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, c) with sigmoid(a·z + c) calibrated on out-of-fold logits z (Platt scaling)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4, max_iter=1000).fit(scores.reshape(-1, 1), y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> dict:
    """Reliability curve (mean predicted vs observed rate per probability bin), expected
    calibration error and Brier score."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    curve, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            predicted, observed = float(p[mask].mean()), float(y[mask].mean())
            curve.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "predicted": round(predicted, 3),
                          "observed": round(observed, 3), "n": int(mask.sum())})
            ece += mask.mean() * abs(predicted - observed)
    return {"curve": curve, "ece": float(ece), "brier": float(np.mean((p - y) ** 2))}


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0, seed: int = 0):
    from sklearn.linear_model import LogisticRegression

    if len(set(y.tolist())) < 2:
        raise SemsafeError("judge training data has a single class; cannot fit a classifier")
    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
    model.fit(x, y)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


class PairJudge:
    """A learned judge of (prompt, answer) pairs: its features, its weights, its validation.

    With a ``cut`` model, an answer the token limit cut short (an ``Answer`` whose ``ended`` is
    False) is judged by that model, fitted and calibrated on answers cut short, and every other
    answer (a finished one, or a plain string) by the main model, fitted on whole answers."""

    def __init__(self, linear: LinearJudge, features, cut: LinearJudge | None = None):
        self.linear, self.features, self.cut = linear, features, cut
        self.name, self.version, self.validation = linear.name, linear.version, linear.validation

    def probability(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        prompts, responses = list(prompts), list(responses)
        out = np.zeros(len(responses))
        was_cut = np.array([self.cut is not None and getattr(r, "ended", True) is False for r in responses], bool)
        for model, rows in ((self.linear, np.flatnonzero(~was_cut)), (self.cut, np.flatnonzero(was_cut))):
            if len(rows):
                out[rows] = model.probability(self.features([prompts[i] for i in rows], [responses[i] for i in rows],
                                                            model.vectorizers))
        return out

    def flags(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        return self.probability(prompts, responses) >= self.linear.threshold


def is_trained(name: str, version: str, folder: Path | None = None) -> bool:
    """Has this machine saved this version of the judge (and of its cut-answer model, if it has
    one)? Reads only the .json files, which are written last."""
    folder = folder or cache_dir() / "judges"
    try:
        meta = json.loads((folder / f"{name}.json").read_text())
        if meta.get("version") != version:
            return False
        if meta.get("validation", {}).get("cut_model"):
            return json.loads((folder / f"{name}-cut.json").read_text()).get("version") == version
        return True
    except (OSError, ValueError, AttributeError):
        return False


def load_or_train(name: str, version: str, train, features, retrain: bool = False) -> PairJudge:
    """The judge cached on disk, or trained (and saved) when missing, stale or ``retrain``.
    ``train`` returns a LinearJudge, or (whole-answer judge, cut-answer judge)."""
    linear = None if retrain else LinearJudge.load(name, version)
    cut = None
    if linear is not None and linear.validation.get("cut_model"):
        cut = LinearJudge.load(f"{name}-cut", version)
        linear = linear if cut is not None else None
    if linear is None:
        # said, because the first evaluation or `prepare` on a machine otherwise sits silent here
        log.warning("training the %s judge v%s (first use on this machine; a few minutes on 2 cores, "
                    "then cached in %s)", name, version, cache_dir() / "judges")
        trained = train()
        linear, cut = trained if isinstance(trained, tuple) else (trained, None)
        if cut is not None:
            cut.save()  # first: the main judge's .json, written last, marks the pair complete
        linear.save()
    return PairJudge(linear, features, cut)


class HFClassifierJudge:
    """Any Hugging Face sequence-classification model as a judge of (prompt, answer) pairs, e.g.
    a harmfulness reward model or a guard model named by hub id (online) or local folder.
    ``positive_label`` names the class whose probability is returned; when it is None the first
    label among ``default_labels`` the model has is used."""

    def __init__(self, model_id: str, positive_label: str | None, max_length: int = 512,
                 default_labels: tuple = ()):
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
        if positive_label is None:
            positive_label = next((d for d in default_labels if d in labels), None)
            if positive_label is None:
                raise SemsafeError(f"{model_id} has labels {sorted(labels)}; say which one means the "
                                   f"judged property, e.g. hf:{model_id}:{sorted(labels)[-1]}")
        if positive_label.lower() not in labels:
            raise SemsafeError(f"{model_id} has labels {sorted(labels)}; {positive_label!r} is not one of them")
        self.index, self.max_length = labels[positive_label.lower()], max_length
        # the name and version every result row records: which model, which label, which weights
        revision = getattr(self.model.config, "_commit_hash", None) or _folder_fingerprint(model_id)
        self.name, self.version = f"hf:{model_id}", f"{positive_label.lower()}@{(revision or 'unknown')[:12]}"
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


def _folder_fingerprint(model_id: str) -> str | None:
    """A short hash of a local model folder's files (names and sizes) as its version."""
    import hashlib

    folder = Path(model_id)
    if not folder.is_dir():
        return None
    listing = sorted((f.name, f.stat().st_size) for f in folder.iterdir() if f.is_file())
    return hashlib.sha256(repr(listing).encode()).hexdigest()


# labels that mean "the property holds" in common classifiers, per judge role
DEFAULT_LABELS = {"harm": ("unsafe", "harmful", "toxic", "label_1", "1"),
                  "refusal": ("refusal", "refused", "refuse", "label_1", "1")}


def parse_judge_option(text: str) -> tuple[str, str]:
    """``ROLE=hf:MODEL[:LABEL]`` -> (role, spec); a clear error for anything else."""
    role, sep, spec = text.partition("=")
    role = role.strip()
    if not sep or role not in DEFAULT_LABELS or not spec.startswith("hf:") or len(spec) <= 3:
        raise SemsafeError(f"--judge {text!r}: expected ROLE=hf:MODEL[:LABEL] with ROLE one of "
                           f"{', '.join(DEFAULT_LABELS)}, e.g. harm=hf:org/guard-model:unsafe")
    return role, spec


@functools.lru_cache(maxsize=4)
def hf_judge(role: str, spec: str) -> HFClassifierJudge:
    """The judge a ``--judge`` spec names (loaded once per process)."""
    model_id, _, label = spec[3:].partition(":")
    if ":" in label or (label and Path(spec[3:]).exists()):  # a local path with a colon in it
        model_id, label = spec[3:], ""
    return HFClassifierJudge(model_id, label or None, default_labels=DEFAULT_LABELS[role])
