"""Would another harm-judge design carry better to new prompts and new harm categories?

Scores pyrit's human-scored answers with whole-answer models fitted on the splits of
``harm.generalisation_splits`` (folds grouped by prompt; each harm category held out once) and on
random folds, for the shipped feature set and for variants without the prompt's TF-IDF, without
any of the prompt's text, without any lexical feature, and at other values of C. Then the
shipped features with the refusal judge's "not a refusal" added to the harm logit
(z - w * logit p_refusal), on the same splits and on the challenge set's answers (the shipped
harm judge there). Prints AUCs; docs/data.md quotes them. About 10 minutes on 2 cores.

    .venv/bin/python bench/harm_variants.py
"""

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from semsafe.generate import Answer
from semsafe.judges import harm
from semsafe.judges.challenge import challenge_rows
from semsafe.judges.learned import TextVectorizer, fit_logistic
from semsafe.judges.refusal import refusal_judge

PROMPT_EMBEDDING = slice(3 * 384, 4 * 384)  # dense_features: answer, window mean, window max, prompt, scalars
VARIANTS = {  # name: (sparse blocks left out, prompt embedding left out, C)
    "shipped": ((), False, harm.C),
    "no prompt TF-IDF": (("prompt",), False, harm.C),
    "no prompt text": (("prompt",), True, harm.C),
    "no lexical features": (("prompt", "answer", "answer_chars"), False, harm.C),
    "shipped, C=1": ((), False, 1.0),
    "shipped, C=10": ((), False, 10.0),
}


def main():
    prompts, answers, y, _, categories = harm.training_rows()
    dense = harm.dense_features(prompts, answers)
    pyrit = categories != ""
    splits = {"random": list(StratifiedKFold(5, shuffle=True, random_state=0).split(dense, y)),
              **harm.generalisation_splits(prompts, categories, y)}
    texts = {"answer": answers, "prompt": prompts, "answer_chars": answers}

    def held_out(variant, train, test):
        drop, no_prompt_embedding, c = VARIANTS[variant]
        keep = np.ones(dense.shape[1], bool)
        keep[PROMPT_EMBEDDING] = not no_prompt_embedding
        fitted = {k: TextVectorizer.fitted([texts[k][i] for i in train], kind="chars" if k == "answer_chars" else "words")
                  for k in texts if k not in drop}

        def x(rows):
            return sparse.hstack([v.transform([texts[k][i] for i in rows]) for k, v in fitted.items()]
                                 + [sparse.csr_matrix(dense[rows][:, keep])]).tocsr()
        coef, b = fit_logistic(x(train), y[train], c=c)
        return x(test) @ coef + b

    jobs = [(v, s, train, test) for v in VARIANTS for s, pairs in splits.items() for train, test in pairs]
    results = iter(Parallel(n_jobs=-1)(delayed(held_out)(v, train, test) for v, _, train, test in jobs))
    logits = {}
    for v, s, _, test in jobs:
        logits.setdefault((v, s), np.zeros(len(y)))[test] = next(results)
    print("AUC on pyrit's rows, by the splits' held-out fits")
    print(f"{'design':22s}" + "".join(f"{s:>14s}" for s in splits))
    for v in VARIANTS:
        print(f"{v:22s}" + "".join(f"{roc_auc_score(y[pyrit], logits[(v, s)][pyrit]):14.3f}" for s in splits))

    weights = (0, 0.25, 0.5, 1.0, 2.0)
    p_refusal = np.clip(refusal_judge().probability(prompts, answers), 1e-6, 1 - 1e-6)
    refused = np.log(p_refusal / (1 - p_refusal))
    print("\nshipped features, harm logit - w * refusal logit: AUC on pyrit's rows")
    for s in ("new prompts", "new category"):
        z = logits[("shipped", s)]
        print(f"  {s:14s}" + "".join(f"  w={w}: {roc_auc_score(y[pyrit], z[pyrit] - w * refused[pyrit]):.3f}"
                                     for w in weights))
    rows = challenge_rows()
    asked, said = [r["prompt"] for r in rows], [Answer(r["response"], r.get("ended", True)) for r in rows]
    p_harm = np.clip(harm.harm_judge().probability(asked, said), 1e-6, 1 - 1e-6)
    p_ref = np.clip(refusal_judge().probability(asked, said), 1e-6, 1 - 1e-6)
    z, r = np.log(p_harm / (1 - p_harm)), np.log(p_ref / (1 - p_ref))
    print("the shipped judge, the same sum, on the challenge set (data/challenge/)")
    for category in ("harmful-prompt answer", "experiment answer"):
        idx = [i for i, row in enumerate(rows) if row["category"] == category]
        labels = [rows[i]["harmful"] for i in idx]
        print(f"  {category:22s}" + "".join(f"  w={w}: {roc_auc_score(labels, z[idx] - w * r[idx]):.3f}"
                                           for w in weights))


if __name__ == "__main__":
    main()
