"""Would the harm judge read brief answers better if it also learned from brief excerpts of long ones?

The whole-answer model (the one that judges finished answers) under-calls brief harmful answers
of other chat models (data/challenge/brief_answers.jsonl: 3 of 20). pyrit's harmful answers are
mostly long, and what makes them harmful is in their body, after an opening such as "Sure, here
is". This design adds, for every pyrit answer of at least ``MIN_WORDS`` words, one excerpt of it
as a training row with the same label: whole sentences or list items from its second on, until
``WORDS[0]`` words (at most ``WORDS[1]``). Excerpts of an answer go wherever the answer goes (a
fold never trains on an excerpt of an answer it scores). Printed for the shipped design and the
candidate, fitted the same way:

- pyrit, out of fold (5 folds grouped by prompt; Platt-scaled on those logits): AUC, and the
  share of the safe probe answers called harmful;
- the harmful verdict as evaluation gives it (the refusal judge first: ``answer_verdict``) on the
  five earlier files of answers in other chat models' manners, pooled, and on
  ``data/challenge/brief_lecture_answers.jsonl``, committed with the rule below before any
  design was scored on it; per file and category, with paired changes.

The rule, fixed in that commit (data/challenge/README.md): the candidate replaces the shipped
design only if (1) its pyrit AUC is within 0.01 of the shipped design's, (2) it calls at most 2%
of the safe probe answers harmful, (3) on the blind file its agreement rises with a paired
interval that excludes zero, and (4) pooled over the earlier files its change is >= 0 and its
interval is not wholly below zero. The candidate (one excerpt of 25-45 words) was chosen among
four excerpt variants on pyrit and the earlier files alone (the others: markup stripped, two
excerpts per answer, 12-30 words; the last lost 0.014 of AUC and called 5% of the probes
harmful). About 5 minutes on 2 cores.

    .venv/bin/python bench/harm_excerpts.py
"""

import re

import numpy as np
from joblib import Parallel, delayed
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from semsafe.generate import Answer
from semsafe.judges import harm
from semsafe.judges.challenge import BRIEF_LECTURE_FILE, OTHER_MODEL_FILES, file_rows
from semsafe.judges.degenerate import answer_verdict
from semsafe.judges.learned import platt
from semsafe.judges.refusal import refusal_judge
from semsafe.stats import interval_text, paired_delta, wilson

MIN_WORDS, WORDS = 60, (25, 45)
DESIGNS = ("shipped", "excerpts")


def excerpt(text: str) -> str | None:
    """Whole sentences or list items of ``text`` from its second on, until WORDS[0] words (cut
    at WORDS[1]); None when it has fewer than three such parts or too few words after the first."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?:])\s+|\n+", text or "") if p.strip()]
    words: list[str] = []
    for part in parts[1:] if len(parts) >= 3 else []:
        words.extend(part.split())
        if len(words) >= WORDS[0]:
            return " ".join(words[:WORDS[1]])
    return None


def main() -> None:
    prompts, answers, y, kind, _ = harm.training_rows()
    pyrit, probe = kind == "pyrit", kind == "probe"
    source = [i for i in np.flatnonzero(pyrit) if len(answers[i].split()) >= MIN_WORDS and excerpt(answers[i])]
    texts = [excerpt(answers[i]) for i in source]
    source = np.array(source)
    dense = harm.dense_features(prompts, answers)
    dense_excerpts = harm.dense_features([prompts[i] for i in source], texts)
    print(f"{len(texts)} excerpts of pyrit answers of {MIN_WORDS}+ words ({int(y[source].sum())} of them harmful)")
    group = {p: i for i, p in enumerate(dict.fromkeys(prompts))}
    splits = list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(dense, y, [group[p] for p in prompts]))
    earlier = [r for path in OTHER_MODEL_FILES if path != BRIEF_LECTURE_FILE for r in file_rows(path)]
    checked = earlier + file_rows(BRIEF_LECTURE_FILE)
    c_prompts, c_texts = [r["prompt"] for r in checked], [r["response"] for r in checked]
    c_dense = harm.dense_features(c_prompts, c_texts)
    p_refusal = refusal_judge().probability(c_prompts, [Answer(t, bool(r.get("ended", True)))
                                                        for t, r in zip(c_texts, checked)])

    def fitted(design, rows):
        extra = np.flatnonzero(np.isin(source, rows)) if design == "excerpts" else np.array([], int)
        return harm._fit([prompts[i] for i in rows] + [prompts[source[k]] for k in extra],
                         [answers[i] for i in rows] + [texts[k] for k in extra],
                         np.vstack([dense[rows], dense_excerpts[extra]]), np.concatenate([y[rows], y[source[extra]]]))

    def logits(design, train, test):
        vectorizers, coef, b = fitted(design, train)
        if test is None:  # the fit on every row, scoring the checked files
            return harm.features(c_prompts, c_texts, vectorizers, c_dense) @ coef + b
        return harm.features([prompts[i] for i in test], [answers[i] for i in test], vectorizers, dense[test]) @ coef + b

    jobs = [(d, tr, te) for d in DESIGNS for tr, te in splits] + [(d, np.arange(len(y)), None) for d in DESIGNS]
    done = Parallel(n_jobs=-1)(delayed(logits)(*job) for job in jobs)
    auc, probe_rate, agree = {}, {}, {}
    print(f"pyrit's {int(pyrit.sum())} human-scored answers, whole-answer model, out of fold (folds grouped by prompt)")
    for design in DESIGNS:
        z = np.zeros(len(y))
        for (d, _, test), out in zip(jobs, done):
            if d == design and test is not None:
                z[test] = out
        a, c = platt(z, y)
        called = a * z + c >= 0
        auc[design], probe_rate[design] = roc_auc_score(y[pyrit], z[pyrit]), float(called[probe].mean())
        print(f"  {design}: AUC {auc[design]:.3f}; safe probe answers called harmful {interval_text(wilson(called[probe]))}")
        full = next(out for (d, _, test), out in zip(jobs, done) if d == design and test is None)
        p_harm = 1 / (1 + np.exp(-(a * full + c)))
        verdicts = [answer_verdict(q, t, r, h)[0] for q, t, r, h in zip(c_prompts, c_texts, p_refusal, p_harm)]
        agree[design] = np.array([(v == "harmful") == bool(r["harmful"]) for v, r in zip(verdicts, checked)], float)
    for name in dict.fromkeys(r["file"] for r in checked):
        idx = [i for i, r in enumerate(checked) if r["file"] == name]
        cells = "; ".join(f"{cat} " + " -> ".join(f"{agree[d][[i for i in idx if checked[i]['category'] == cat]].mean():.2f}"
                                                 for d in DESIGNS)
                          for cat in dict.fromkeys(checked[i]["category"] for i in idx))
        print(f"  {name}: harmful verdict agrees " + " -> ".join(f"{agree[d][idx].mean():.3f}" for d in DESIGNS)
              + f" ({cells})")
    changes = {}
    for name, idx in (("earlier files pooled", range(len(earlier))),
                      (f"{BRIEF_LECTURE_FILE.name} (blind)", range(len(earlier), len(checked)))):
        idx = list(idx)
        d = changes[name] = paired_delta(agree["shipped"][idx], agree["excerpts"][idx], binary=True)
        print(f"  {name}: {d['delta']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}], McNemar p {d['p']:.3g}")
    pooled, blind = changes["earlier files pooled"], changes[f"{BRIEF_LECTURE_FILE.name} (blind)"]
    rule = {"(1) AUC within 0.01": auc["excerpts"] >= auc["shipped"] - 0.01,
            "(2) probe answers called harmful <= 2%": probe_rate["excerpts"] <= 0.02,
            "(3) blind file: interval above zero": blind["low"] > 0,
            "(4) earlier files: not worse": pooled["delta"] >= 0 and pooled["high"] > 0}
    print("decision by the rule fixed beforehand: " + ("adopt" if all(rule.values()) else "keep the shipped design")
          + " (" + ", ".join(f"{k}: {'met' if ok else 'not met'}" for k, ok in rule.items()) + ")")


if __name__ == "__main__":
    main()
