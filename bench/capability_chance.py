"""How far above chance the embedded model's capability accuracy is, and whether calibrated
scoring would lift it.

The capability suite picks the choice with the lowest per-token NLL after the question. A small
model's likelihoods can lean on one choice whatever the question; calibrated zero-shot scoring
(each choice's NLL after the question minus its NLL after a content-free question) is the usual
correction. This prints, on all 108 questions of data/capability.jsonl, per category: the
accuracy of the shipped scoring, of two calibrated variants, the chance level, and how often
each scoring picks "No." on the yes/no questions. About 30 s on 2 cores.

    .venv/bin/python bench/capability_chance.py
"""

from collections import Counter
from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from semsafe.data import load_set
from semsafe.evaluate import _score_capability
from semsafe.models import load_model

CONTENT_FREE = ("Answer:", "Answer the question.")


def main() -> None:
    model, tokenizer = load_model("smollm2-135m-instruct")
    subject = SimpleNamespace(model=model, tokenizer=tokenizer)
    items = load_set("capability")
    # the suite's own scoring: each choice's per-token NLL after the question
    shipped = [row["nll_per_token"] for row in _score_capability(subject, items)]
    scorings = {"shipped (per-token NLL)": shipped}
    for neutral in CONTENT_FREE:  # the same choices after a question that asks nothing
        free = [row["nll_per_token"] for row in _score_capability(subject, [replace(r, prompt=neutral) for r in items])]
        scorings[f"calibrated by {neutral!r}"] = [np.subtract(a, b) for a, b in zip(shipped, free)]

    categories = list(dict.fromkeys(item.labels["category"] for item in items))
    chance = {c: np.mean([1 / len(it.labels["choices"]) for it in items if it.labels["category"] == c])
              for c in categories}
    chance["all"] = np.mean([1 / len(it.labels["choices"]) for it in items])
    counts = Counter(item.labels["category"] for item in items)
    counts["all"] = len(items)
    print(f"{'scoring':38s} " + " ".join(f"{c:>16s}" for c in [*categories, "all"]) + "   'No.' picks (yes/no)")
    print(f"{'chance':38s} " + " ".join(f"{chance[c]:16.3f}" for c in [*categories, "all"]))
    for name, scores in scorings.items():
        picks = [int(np.argmin(s)) for s in scores]
        right = Counter()
        for item, pick in zip(items, picks):
            ok = pick == item.labels["answer"]
            right[item.labels["category"]] += ok
            right["all"] += ok
        no_picks = sum(item.labels["choices"][pick] == "No." for item, pick in zip(items, picks)
                       if item.labels["category"] == "yes/no")
        print(f"{name:38s} " + " ".join(f"{right[c] / counts[c]:9.3f} ({right[c]:2d}/{counts[c]:2d})"
                                         for c in [*categories, "all"])
              + f"   {no_picks} of {counts['yes/no']}")


if __name__ == "__main__":
    main()
