"""Toxicity: the Jigsaw 6-label BiLSTM from the toxic-comment-classifier pack, in plain torch.

The pack ships Keras weights (HDF5) and a pickled Keras tokenizer. We read the weights with
h5py and the tokenizer with an unpickler that admits only the two classes a Keras tokenizer
is made of, so no code from the file can run. No TensorFlow is needed.
"""

import collections
import functools
import pickle
import re

import h5py
import numpy as np
import torch
from torch import nn

from ..errors import SemsafeError
from ..packs import pack_file

LABELS = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
MAXLEN, VOCAB, EMBED, UNITS = 100, 20000, 50, 50
NAME, VERSION = "jigsaw-bilstm", "toxic-comment-classifier-0.3.0"


class _KerasTokenizerState:
    """Stand-in for keras' Tokenizer: keeps the pickled attributes, runs nothing."""

    def __setstate__(self, state):
        self.__dict__.update(state)


class _RestrictedUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("keras.src.legacy.preprocessing.text", "Tokenizer"): _KerasTokenizerState,
        ("keras.preprocessing.text", "Tokenizer"): _KerasTokenizerState,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("builtins", "int"): int,  # a defaultdict's factory
        ("builtins", "list"): list,
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} from the tokenizer file: only a Keras "
                "Tokenizer's plain data is allowed") from None


def read_keras_tokenizer(path) -> dict:
    """``{"word_index", "num_words", "filters", "lower", "split"}`` from a pickled Keras tokenizer."""
    with open(path, "rb") as fh:
        obj = _RestrictedUnpickler(fh).load()
    state = obj.__dict__
    return {k: state.get(k) for k in ("word_index", "num_words", "filters", "lower", "split")}


class JigsawBiLSTM(nn.Module):
    """Embedding 20000x50 -> BiLSTM(50) -> max over time -> dense 50 relu -> dense 6 sigmoid."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.lstm = nn.LSTM(EMBED, UNITS, batch_first=True, bidirectional=True)
        self.hidden = nn.Linear(2 * UNITS, 50)
        self.out = nn.Linear(50, len(LABELS))

    def forward(self, ids):
        states, _ = self.lstm(self.embedding(ids))
        pooled = states.max(dim=1).values
        return torch.sigmoid(self.out(torch.relu(self.hidden(pooled))))

    def load_keras(self, path) -> "JigsawBiLSTM":
        with h5py.File(path, "r") as f:
            def w(name):
                return torch.from_numpy(np.asarray(f[f"layers/{name}"]))
            self.embedding.weight.data = w("embedding/vars/0")
            # Keras LSTM: kernel (in, 4u), recurrent (u, 4u), one bias; gate order i,f,c,o as torch.
            for keras_dir, suffix in (("forward_layer", ""), ("backward_layer", "_reverse")):
                base = f"bidirectional/{keras_dir}/cell/vars"
                getattr(self.lstm, f"weight_ih_l0{suffix}").data = w(f"{base}/0").T.contiguous()
                getattr(self.lstm, f"weight_hh_l0{suffix}").data = w(f"{base}/1").T.contiguous()
                getattr(self.lstm, f"bias_ih_l0{suffix}").data = w(f"{base}/2")
                getattr(self.lstm, f"bias_hh_l0{suffix}").data = torch.zeros(4 * UNITS)
            self.hidden.weight.data = w("dense/vars/0").T.contiguous()
            self.hidden.bias.data = w("dense/vars/1")
            self.out.weight.data = w("dense_1/vars/0").T.contiguous()
            self.out.bias.data = w("dense_1/vars/1")
        return self.eval()


class ToxicityJudge:
    """Scores texts in [0, 1]: the mean of the six Jigsaw label probabilities (as the pack does),
    with the per-label scores available from ``score_labels``."""

    name, version = NAME, VERSION

    def __init__(self):
        tok = read_keras_tokenizer(pack_file("toxic", "model/tokenizer.pickle"))
        self.word_index = tok["word_index"]
        self.num_words = tok["num_words"] or VOCAB
        self.lower = tok["lower"] if tok["lower"] is not None else True
        self.split = tok["split"] or " "
        filters = tok["filters"] if tok["filters"] is not None else '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
        self._filter = re.compile("[" + re.escape(filters) + "]") if filters else None
        self.model = JigsawBiLSTM().load_keras(pack_file("toxic", "model/model.weights.h5"))

    def encode(self, text: str) -> list[int]:
        """Keras ``texts_to_sequences`` then ``pad_sequences(maxlen=100)`` (pre-pad, keep the end)."""
        if self.lower:
            text = text.lower()
        if self._filter is not None:
            text = self._filter.sub(self.split, text)
        words = [w for w in text.split(self.split) if w]
        ids = [i for i in (self.word_index.get(w) for w in words) if i is not None and i < self.num_words]
        ids = ids[-MAXLEN:]
        return [0] * (MAXLEN - len(ids)) + ids

    @torch.no_grad()
    def score_labels(self, texts: list[str]) -> np.ndarray:
        """(n, 6) probabilities for LABELS."""
        if isinstance(texts, str):
            raise SemsafeError("score_labels takes a list of texts")
        if not texts:
            return np.zeros((0, len(LABELS)))
        ids = torch.tensor([self.encode(t or "") for t in texts])
        return self.model(ids).numpy()

    def score(self, texts: list[str]) -> np.ndarray:
        return self.score_labels(texts).mean(axis=1)


@functools.lru_cache(maxsize=1)
def toxicity_judge() -> ToxicityJudge:
    return ToxicityJudge()
