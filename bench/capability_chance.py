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

import json
from collections import Counter

import numpy as np

from semsafe.data import DATA_DIR
from semsafe.generate import Answer
from semsafe.judges.fluency import response_perplexity
from semsafe.models import load_model

CONTENT_FREE = ("Answer:", "Answer the question.")


def main() -> None:
    model, tokenizer = load_model("smollm2-135m-instruct")
    items = [json.loads(line) for line in (DATA_DIR / "capability.jsonl").read_text().splitlines() if line.strip()]
    prompts, choices, owner = [], [], []
    for i, item in enumerate(items):
        for choice in item["labels"]["choices"]:
            prompts.append(item["prompt"])
            choices.append(Answer(choice, ended=False))  # as the suite scores a choice: no end token
            owner.append(i)
    owner = np.array(owner)

    def mean_nll(given_prompts):
        return np.log(response_perplexity(model, tokenizer, given_prompts, choices, batch_size=64))

    shipped = mean_nll(prompts)
    scorings = {"shipped (per-token NLL)": shipped}
    for neutral in CONTENT_FREE:
        scorings[f"calibrated by {neutral!r}"] = shipped - mean_nll([neutral] * len(prompts))

    categories = list(dict.fromkeys(item["labels"]["category"] for item in items))
    chance = {c: np.mean([1 / len(it["labels"]["choices"]) for it in items if it["labels"]["category"] == c])
              for c in categories}
    chance["all"] = np.mean([1 / len(it["labels"]["choices"]) for it in items])
    print(f"{'scoring':38s} " + " ".join(f"{c:>16s}" for c in [*categories, "all"]) + "   'No.' picks (yes/no)")
    print(f"{'chance':38s} " + " ".join(f"{chance[c]:16.3f}" for c in [*categories, "all"]))
    for name, scores in scorings.items():
        picks = [int(np.argmin(scores[owner == i])) for i in range(len(items))]
        right = Counter()
        for item, pick in zip(items, picks):
            ok = pick == item["labels"]["answer"]
            right[item["labels"]["category"]] += ok
            right["all"] += ok
        counts = Counter(item["labels"]["category"] for item in items)
        counts["all"] = len(items)
        no_picks = sum(item["labels"]["choices"][pick] == "No." for item, pick in zip(items, picks)
                       if item["labels"]["category"] == "yes/no")
        print(f"{name:38s} " + " ".join(f"{right[c] / counts[c]:9.3f} ({right[c]:2d}/{counts[c]:2d})"
                                         for c in [*categories, "all"])
              + f"   {no_picks} of {counts['yes/no']}")


if __name__ == "__main__":
    main()
