"""Does the harm judge under-call short, finished answers, and would the cut-answer model fix it?

harm-v6 calls 12 of 30 brief compliances harmful (v5: 11) in data/challenge/answer_styles.jsonl (answers
written in other chat models' manners, 26 of them under 40 words). This checks the same thing
on pyrit's human-scored answers, with out-of-fold scores from fits that never saw the answer's
prompt (5 folds grouped by prompt): per length band, the harmful answers each model calls
harmful (recall), the harmless ones it calls harmful, and the harmful rate it gives against
the human one, for the whole-answer model (which judges finished answers) and for the
cut-answer model applied to the same finished answers. Then the routing that would follow
from it (finished answers under 40 words judged by the cut-answer model), on pyrit out of
fold and, with the shipped models, on the challenge set. About 2.5 minutes on 2 cores.

    .venv/bin/python bench/harm_short_answers.py
"""

import numpy as np
from joblib import Parallel, delayed
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from semsafe.generate import Answer
from semsafe.judges import harm
from semsafe.judges.challenge import challenge_rows
from semsafe.judges.degenerate import answer_verdict
from semsafe.judges.learned import platt
from semsafe.judges.refusal import refusal_judge

BANDS = ((0, 30), (30, 60), (60, 120), (120, 300), (300, None))


def out_of_fold():
    """Calibrated out-of-fold probabilities of both models on every training row's whole answer."""
    prompts, answers, y, kind, _ = harm.training_rows()
    views = [[harm.cut(a, words) for a in answers] for words in harm.VIEWS]
    dense = [harm.dense_features(prompts, texts) for texts in views]
    group = {p: i for i, p in enumerate(dict.fromkeys(prompts))}
    splits = list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(dense[0], y, [group[p] for p in prompts]))

    def held_out(train, test):
        out = []
        for used in ([0], [0, 1, 2]):  # the whole-answer model's views, the cut-answer model's
            vectorizers, coef, b = harm._fit([prompts[i] for i in train] * len(used),
                                             [views[v][i] for v in used for i in train],
                                             np.vstack([dense[v][train] for v in used]), np.tile(y[train], len(used)))
            out.append([harm.features([prompts[i] for i in test], [views[v][i] for i in test], vectorizers,
                                      dense[v][test]) @ coef + b for v in used])
        return out

    whole, cut_on_whole, cut_on_cut = np.zeros(len(y)), np.zeros(len(y)), np.zeros((2, len(y)))
    for (_, test), (w, c) in zip(splits, Parallel(n_jobs=-1)(delayed(held_out)(tr, te) for tr, te in splits)):
        whole[test], cut_on_whole[test], cut_on_cut[:, test] = w[0], c[0], np.stack(c[1:])
    a_w, c_w = platt(whole, y)  # each model calibrated as the shipped one is
    a_c, c_c = platt(cut_on_cut.ravel(), np.tile(y, 2))
    p_whole = 1 / (1 + np.exp(-(a_w * whole + c_w)))
    p_cut = 1 / (1 + np.exp(-(a_c * cut_on_whole + c_c)))
    return answers, y, kind, p_whole, p_cut


def main() -> None:
    answers, y, kind, p_whole, p_cut = out_of_fold()
    words = np.array([len(a.split()) for a in answers])
    pyrit = kind == "pyrit"
    print("pyrit's answers, out of fold (fits without the answer's prompt), finished answers")
    print(f"{'words':>9s} {'model':>6s} {'n':>4s} {'harmful':>8s} {'recall':>7s} {'harmless called':>16s} {'rate':>6s} {'human':>6s}")
    for low, high in BANDS:
        band = pyrit & (words >= low) & (words < (high or 10**9))
        for name, p in (("whole", p_whole), ("cut", p_cut)):
            bad, good = band & (y == 1), band & (y == 0)
            label = f"{low}-{high}" if high else f"{low}+"
            print(f"{label:>9s} {name:>6s} {band.sum():4d} {bad.sum():8d} {np.mean(p[bad] >= .5):7.2f} "
                  f"{np.mean(p[good] >= .5):16.2f} {np.mean(p[band] >= .5):6.2f} {y[band].mean():6.2f}")
    routed = np.where(words < harm.CUT_WORDS, p_cut, p_whole)
    print(f"\nfinished answers under {harm.CUT_WORDS} words judged by the cut-answer model, out of fold:")
    for name, p in (("shipped routing", p_whole), ("short -> cut model", routed)):
        print(f"  {name:20s} pyrit AUC {roc_auc_score(y[pyrit], p[pyrit]):.3f}, harmful rate {np.mean(p[pyrit] >= .5):.3f} "
              f"(human {y[pyrit].mean():.3f}), harmless rows called harmful {np.mean(p[~pyrit] >= .5):.3f}, "
              f"safe probe answers {np.mean(p[kind == 'probe'] >= .5):.3f}")

    rows = challenge_rows()
    prompts = [r["prompt"] for r in rows]
    shipped = [Answer(r["response"], r.get("ended", True)) for r in rows]
    routed_answers = [Answer(r["response"], r.get("ended", True) and len(r["response"].split()) >= harm.CUT_WORDS)
                      for r in rows]
    p_refusal = refusal_judge().probability(prompts, shipped)
    print("\nthe shipped models on the challenge set: harmful verdict agrees (harmful rate: judges / reader)")
    for name, given in (("shipped routing", shipped), ("short -> cut model", routed_answers)):
        p_harm = harm.harm_judge().probability(prompts, given)
        verdicts = [answer_verdict(q, a, r, h)[0] for q, a, r, h in zip(prompts, shipped, p_refusal, p_harm)]
        cells = []
        for category in dict.fromkeys(r["category"] for r in rows):
            idx = [i for i, r in enumerate(rows) if r["category"] == category]
            agree = np.mean([(verdicts[i] == "harmful") == bool(rows[i]["harmful"]) for i in idx])
            rate = np.mean([verdicts[i] == "harmful" for i in idx])
            cells.append(f"{category} {agree:.3f} ({rate:.2f}/{np.mean([rows[i]['harmful'] for i in idx]):.2f})")
        print(f"  {name}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
