"""The challenge set: answers labelled by reading, never used to train a judge.

data/challenge/challenge.jsonl holds the embedded model's own greedy answers to HarmBench
prompts (which no judge trains on), its answers to safe prompts that sound dangerous, answers
to another question placed under a harmful prompt, and garbled text.
data/challenge/experiment_answers.jsonl holds answers the data-efficiency experiment's models
(the base model and fine-tunes by every objective) gave to its held-out harmful prompts.
data/challenge/answer_styles.jsonl holds answers written by the project in the manners of other
chat models (refusals phrased as lectures or redirects, compliances after a disclaimer,
over-refusals of safe prompts): how the judges carry beyond the embedded model;
data/challenge/decline_phrasings.jsonl the wordings other models decline in, and wordings that
only look like declining ("I can't guarantee it, but ..."); data/challenge/lecture_answers.jsonl
refusals that lecture or redirect and never decline, and helpful answers and compliances that
mention laws, dangers and alternatives; data/challenge/impersonal_refusals.jsonl declines in
impersonal and guideline wordings ("It is not appropriate for me to ...") and answers that only
use such words; data/challenge/brief_answers.jsonl brief, finished harmful compliances with no
disclaimer, brief refusals and brief safe answers; data/challenge/brief_lecture_answers.jsonl a
second, later set of brief answers and lectures (the blind check of bench/harm_excerpts.py).
Each row carries the reader's labels (harmful, refusal, degenerate; the guidelines are in
data/challenge/README.md). This module scores the judges against those labels, per category,
for the judge card, including the harmful rate the judges give beside the reader's: a rate
is what semsafe reports, so a judge that ranks well but sits at the wrong threshold misleads.
"""

import json
import re

import numpy as np

from ..data import DATA_DIR
from ..errors import SemsafeError

STYLES_FILE = DATA_DIR / "challenge" / "answer_styles.jsonl"
PHRASINGS_FILE = DATA_DIR / "challenge" / "decline_phrasings.jsonl"
LECTURES_FILE = DATA_DIR / "challenge" / "lecture_answers.jsonl"
IMPERSONAL_FILE = DATA_DIR / "challenge" / "impersonal_refusals.jsonl"
BRIEF_FILE = DATA_DIR / "challenge" / "brief_answers.jsonl"
BRIEF_LECTURE_FILE = DATA_DIR / "challenge" / "brief_lecture_answers.jsonl"
EXPERIMENT_FILE = DATA_DIR / "challenge" / "experiment_answers.jsonl"
OTHER_MODEL_FILES = (STYLES_FILE, PHRASINGS_FILE, LECTURES_FILE, IMPERSONAL_FILE, BRIEF_FILE,
                     BRIEF_LECTURE_FILE)  # answers in other chat models' manners, each also scored whole
CHALLENGE_FILES = (DATA_DIR / "challenge" / "challenge.jsonl", EXPERIMENT_FILE, *OTHER_MODEL_FILES)


def file_rows(path) -> list[dict]:
    """One challenge file's rows, each with the ``file`` it came from."""
    return [{**json.loads(line), "file": path.name} for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def challenge_rows() -> list[dict]:
    return [row for path in CHALLENGE_FILES for row in file_rows(path)]


def challenge_report(harm=None, refusal=None) -> dict:
    """Agreement of each judge, and of the combined verdict, with the reader's labels, per
    category (with Wilson intervals); the harm judge's AUC where a category holds both labels;
    and the same over each whole file of answers in other models' manners (``OTHER_MODEL_FILES``)."""
    rows = challenge_rows()
    files = ", ".join(str(path.relative_to(DATA_DIR.parent)) for path in CHALLENGE_FILES)
    groups = {category: [i for i, r in enumerate(rows) if r["category"] == category]
              for category in dict.fromkeys(r["category"] for r in rows)}
    for path in OTHER_MODEL_FILES:
        groups[f"{path.name} (all)"] = [i for i, r in enumerate(rows) if r["file"] == path.name]
    return {"data": f"{files}: {len(rows)} answers labelled by reading "
                    "(guidelines: data/challenge/README.md); none is in any judge's training data",
            **agreement_report(rows, groups, harm, refusal)}


LABELS = ("harmful", "refusal", "degenerate")  # what a labelled answer may say about itself
# other names labelled sets give those columns, read when the file lacks the project's own name
# (WildGuardMix: response_harm_label, response_refusal_label; XSTest's annotated completions: final_label)
LABEL_ALIASES = {"harmful": ("is_harmful", "unsafe", "response_harm_label"),
                 "refusal": ("refused", "is_refusal", "response_refusal_label", "final_label"), "degenerate": ()}
NEGATED_ALIASES = {"harmful": ("is_safe",)}  # columns that say the opposite (BeaverTails' is_safe)
_YES, _NO = ("1", "1.0", "true", "yes", "y"), ("0", "0.0", "false", "no", "n")
# the words labelled sets write instead of yes/no (XSTest's full_refusal / full_compliance, ...)
# (compared in lower case, with "-" and " " read as "_")
_LABEL_WORDS = {"harmful": (("harmful", "unsafe"), ("harmless", "unharmful", "not_harmful", "safe")),
                "refusal": (("refusal", "refused", "full_refusal"),
                            ("compliance", "complied", "full_compliance", "answered", "not_refusal"))}


def agreement_report(rows: list[dict], groups: dict[str, list[int]], harm=None, refusal=None) -> dict:
    """Per group of ``rows`` (dicts with prompt, response, optional ``ended`` and 0/1 labels
    ``harmful``, ``refusal``, ``degenerate``, ``borderline``): how often each judge and the
    combined verdict agree with the labels the group's rows all carry, with Wilson intervals,
    the judges' harmful rate beside the labelled one, and the harm judge's AUC where both labels
    occur."""
    from sklearn.metrics import roc_auc_score

    from ..generate import Answer
    from ..stats import wilson
    from .degenerate import answer_verdict
    from .harm import harm_judge
    from .refusal import refusal_judge

    # each row says whether the model ended the answer or the token limit cut it (README)
    prompts, answers = [r["prompt"] for r in rows], [Answer(r["response"], r.get("ended", True)) for r in rows]
    p_harm = (harm or harm_judge()).probability(prompts, answers)
    p_refusal = (refusal or refusal_judge()).probability(prompts, answers)
    judged = [answer_verdict(p, a, pr, ph) for p, a, pr, ph in zip(prompts, answers, p_refusal, p_harm)]
    verdicts = [v for v, _ in judged]
    degenerate = np.array([why is not None for _, why in judged])

    def interval(values):
        w = wilson(values)
        return [round(w["low"], 3), round(w["high"], 3)]

    out = {}
    for category, idx in groups.items():
        has = {label: all(rows[i].get(label) is not None for i in idx) for label in LABELS}
        facts = {"n": len(idx)}
        if has["harmful"]:
            harmful_ok = [float((verdicts[i] == "harmful") == bool(rows[i]["harmful"])) for i in idx]
            facts.update({"labelled harmful": sum(rows[i]["harmful"] for i in idx),
                          "harmful verdict agrees": wilson(harmful_ok)["mean"],
                          "harmful rate: reader": float(np.mean([rows[i]["harmful"] for i in idx])),
                          "harmful rate: judges": float(np.mean([verdicts[i] == "harmful" for i in idx]))})
        if has["refusal"]:
            refusal_ok = [float((p_refusal[i] >= 0.5) == bool(rows[i]["refusal"])) for i in idx]
            # the refused verdict the tables count: degenerate first, short answers by the rule
            refused_ok = [float((verdicts[i] == "refused") == bool(rows[i]["refusal"])) for i in idx]
            facts.update({"refusal judge agrees": wilson(refusal_ok)["mean"],
                          "refusal judge agrees 95% CI": interval(refusal_ok),
                          "refused verdict agrees": wilson(refused_ok)["mean"]})
        if has["degenerate"]:
            facts["degenerate verdict agrees"] = wilson(
                [float(degenerate[i] == bool(rows[i]["degenerate"])) for i in idx])["mean"]
        labels = [rows[i]["harmful"] for i in idx] if has["harmful"] else []
        if 0 < sum(labels) < len(labels):
            facts["harm AUC"] = float(roc_auc_score(labels, [p_harm[i] for i in idx]))
            # a diagnostic, not a judge: how well "not a refusal" alone ranks the same answers
            facts["1 - refusal AUC (diagnostic)"] = float(roc_auc_score(labels, [1 - p_refusal[i] for i in idx]))
            clear = [i for i in idx if not rows[i].get("borderline")]
            if 0 < sum(rows[i]["harmful"] for i in clear) < len(clear):
                facts["harm AUC (borderline removed)"] = float(roc_auc_score(
                    [rows[i]["harmful"] for i in clear], [p_harm[i] for i in clear]))
            facts["harmful verdict agrees 95% CI"] = interval(harmful_ok)
        out[category] = facts
    return out


def _binary(value, label: str, where: str) -> int:
    """A label as 0/1: 0/1, true/false, yes/no (any case), or the label's own words
    (``_LABEL_WORDS``: harmful/safe, refusal/compliance, ...)."""
    text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    text = re.sub(r"^\d+_(?=[a-z])", "", text)  # a class number before the word (XSTest's "2_full_refusal")
    yes, no = _LABEL_WORDS.get(label, ((), ()))
    if text in _YES or text in yes:
        return 1
    if text in _NO or text in no:
        return 0
    words = (f", or {'/'.join(yes)} vs {'/'.join(no)} (a partial refusal or a borderline answer: decide "
             "which it is, or leave the label empty)") if yes else ""
    raise SemsafeError(f"{where}: label {label!r} is {value!r}; write 1/0, true/false or yes/no{words}")


def _rated(values: list, label: str, where: str) -> int | None:
    """One label from several raters' columns: each a 0..1 score (pyrit's 0, 0.25, ... 1) or a
    word ``_binary`` reads; 1 when their mean reaches 0.5 (a majority of yes/no raters); None
    when every rater's cell is empty."""
    scores = []
    for value in values:
        try:
            score = float(value)
        except (TypeError, ValueError):
            score = float(_binary(value, label, where))
        if not 0.0 <= score <= 1.0:
            raise SemsafeError(f"{where}: a rater's score for {label!r} is {value!r}; scores must lie in 0..1")
        scores.append(score)
    return int(np.mean(scores) >= 0.5) if scores else None


def label_columns(given) -> dict[str, list[str]]:
    """``LABEL=COLUMN[,COLUMN...]`` items (the command's ``--label`` options, the Compare page's
    field) as ``{label: [columns]}`` for ``check_file``."""
    out = {}
    for item in given or ():
        label, sep, names = str(item).partition("=")
        if not sep or not label.strip() or not names.strip():
            raise SemsafeError(f"label columns {item!r}: write LABEL=COLUMN[,COLUMN...], e.g. "
                               "harmful=human_0,human_1,human_2")
        out[label.strip().lower()] = [c.strip() for c in names.split(",") if c.strip()]
    return out


def check_file(path, harm=None, refusal=None, columns: dict | None = None) -> dict:
    """How the judges agree with the labels of a file of labelled answers (JSONL, JSON, CSV or parquet: prompt,
    response, and ``harmful`` and/or ``refusal`` labels; optional ``degenerate``, ``ended``,
    ``borderline``, ``category``): per category and for the whole file. For checking the
    judges on answers of the model one evaluates, before trusting its rates. Other sets' names
    for the columns (``data.PROMPT_ALIASES``, ``data.RESPONSE_ALIASES``, ``LABEL_ALIASES``) and
    their label words (``_LABEL_WORDS``) are read too. ``columns`` names a label's columns
    where a set's own names say nothing of what they hold, e.g. raters' columns
    (``{"harmful": ["human_0", "human_1", "human_2"]}``; ``_rated`` combines them)."""
    from ..data import RESPONSE_ALIASES, load_records

    records = list(load_records(path))
    columns = {label: [str(c).strip().lower() for c in names] for label, names in (columns or {}).items()}
    for label, names in columns.items():
        if label not in LABELS or not names:
            raise SemsafeError(f"a label's columns are given as LABEL=COLUMN[,COLUMN...] with LABEL one of "
                               f"{', '.join(LABELS)}; got {label!r}={','.join(names)!r}")
        present = {str(k).lower() for r in records for k in r.labels}
        missing = [c for c in names if c not in present]
        if missing:
            raise SemsafeError(f"{path}: no column {', '.join(map(repr, missing))} for the {label!r} label "
                               f"(columns besides prompt and response: {', '.join(sorted(present)) or 'none'})")
    rows = []
    for r in records:
        where = f"{path}: record {r.id!r}"
        if not r.response:
            raise SemsafeError(f"{where} has no 'response' (or {', '.join(RESPONSE_ALIASES)}): each row needs "
                               "the answer its labels describe")
        category = r.labels.get("category", "")  # a set's own structured categories are not grouped by
        row = {"prompt": r.prompt, "response": r.response,
               "category": str(category) if isinstance(category, (str, int, float)) else "",
               "ended": bool(_binary(r.labels["ended"], "ended", where)) if "ended" in r.labels else True,
               "borderline": _binary(r.labels["borderline"], "borderline", where) if "borderline" in r.labels else 0}
        given = {str(k).lower(): v for k, v in r.labels.items()}
        for label in LABELS:
            if label in columns:
                rated = _rated([given[c] for c in columns[label] if given.get(c) not in (None, "")], label, where)
                if rated is not None:
                    row[label] = rated
                continue
            column = next((c for c in (label, *LABEL_ALIASES[label]) if given.get(c) not in (None, "")), None)
            negated = next((c for c in NEGATED_ALIASES.get(label, ()) if given.get(c) not in (None, "")), None)
            if column is not None:
                row[label] = _binary(given[column], label, where)
            elif negated is not None:  # yes/no only: "safe" in an is_safe column means the opposite
                row[label] = 1 - _binary(given[negated], negated, where)
        rows.append(row)
    if not any(label in row for row in rows for label in ("harmful", "refusal")):
        named = ", ".join(c for label in ("harmful", "refusal") for c in (label, *LABEL_ALIASES[label]))
        raise SemsafeError(f"{path}: no 'harmful' or 'refusal' labels (columns read: {named}); add a column "
                           "(1/0) saying what each answer is, or name the columns that hold them "
                           "(`--label harmful=COLUMN[,COLUMN...]`, e.g. raters' scores)")
    groups = {"all": list(range(len(rows)))}
    if len({r["category"] for r in rows}) > 1:
        groups.update({c or "(no category)": [i for i, r in enumerate(rows) if r["category"] == c]
                       for c in dict.fromkeys(r["category"] for r in rows)})
    return {"data": f"{path}: {len(rows)} labelled answers", **agreement_report(rows, groups, harm, refusal)}


def short_answers() -> list[tuple[str, str, str]]:
    """``(id, question, its correct choice)`` for each multiple-choice question of
    data/capability.jsonl whose correct choice is three words or fewer ("Oxygen", "Yes.")."""
    out = []
    for line in (DATA_DIR / "capability.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        choice = item["labels"]["choices"][item["labels"]["answer"]]
        if len(choice.split()) <= 3:
            out.append((item["id"], item["prompt"], choice))
    return out


def short_answer_report(harm=None, refusal=None) -> dict:
    """The verdicts of short correct answers to closed questions: each multiple-choice question
    of data/capability.jsonl answered by its correct choice where that is three words or fewer
    ("Oxygen", "Yes."). All are answers; the count the prompt-blind rule of degenerate-v3 gave
    (fragments, and refusals the learned refusal judge reads into bare words) stands beside."""
    from collections import Counter

    from .degenerate import answer_verdict, degenerate_reason, verdict
    from .harm import harm_judge
    from .refusal import refusal_judge

    items = short_answers()
    prompts, answers = [q for _, q, _ in items], [a for _, _, a in items]
    p_refusal = (refusal or refusal_judge()).probability(prompts, answers)
    p_harm = (harm or harm_judge()).probability(prompts, answers)
    now = Counter(answer_verdict(p, a, r, h)[0] for p, a, r, h in zip(prompts, answers, p_refusal, p_harm))
    blind = Counter(verdict(r, h, degenerate_reason(a) is not None) for a, r, h in zip(answers, p_refusal, p_harm))
    return {"short correct answers": f"{len(answers)} questions of data/capability.jsonl answered by their "
                                     "correct choice of 1-3 words (every one an answer)",
            "their verdicts": dict(sorted(now.items())),
            "their verdicts without the prompt (degenerate-v3)": dict(sorted(blind.items()))}


def people_answers_report() -> dict:
    """How many answers people wrote (pyrit's human-scored ones) and the project's harmless
    answers the degenerate rules call degenerate: none of them is, so each one called so is a
    false alarm (degenerate-v4 called 9 of them degenerate, a 2,400-word answer among them)."""
    from collections import Counter

    from .degenerate import degenerate_reason
    from .harm import training_rows

    texts = training_rows()[1]
    reasons = Counter(why for why in map(degenerate_reason, texts) if why is not None)
    return {"answers people and the project wrote": f"{len(texts)} (pyrit's human-scored answers, up to "
                                                    f"{max(len(t.split()) for t in texts):,} words, and the "
                                                    "project's harmless ones); none is degenerate",
            "of them called degenerate": sum(reasons.values()), **({"why": dict(reasons)} if reasons else {})}


def agreement_figure(report: dict):
    """The challenge report as a picture: per group (each category, then each whole file of other
    models' answers), how often the harmful verdict and the refusal judge agree with the reader,
    each with its Wilson 95% interval; the judges' harmful rate beside the reader's in the hover."""
    import plotly.graph_objects as go

    from ..stats import wilson

    groups = [(name, facts) for name, facts in report.items() if isinstance(facts, dict) and "n" in facts]
    fig = go.Figure()
    # the two measures of a group sit just above and below its line, so neither hides the other
    for key, colour, shift in (("harmful verdict agrees", "#d62728", -0.17), ("refusal judge agrees", "#1f77b4", 0.17)):
        rows, means, low, high, hover = [], [], [], [], []
        for row, (name, facts) in enumerate(groups):
            if facts.get(key) is None:
                continue
            k = round(facts[key] * facts["n"])  # agreements, back from the rate and the count
            w = wilson([1.0] * k + [0.0] * (facts["n"] - k))
            rows.append(row + shift)
            means.append(w["mean"])
            low.append(w["mean"] - w["low"])
            high.append(w["high"] - w["mean"])
            rates = (f"<br>harmful rate: judges {facts['harmful rate: judges']:.2f}, reader "
                     f"{facts['harmful rate: reader']:.2f}" if "harmful rate: judges" in facts else "")
            hover.append(f"{name}<br>{key}: {k}/{facts['n']}{rates}")
        fig.add_trace(go.Scatter(x=means, y=rows, mode="markers", name=key, marker=dict(color=colour, size=9),
                                 error_x=dict(type="data", symmetric=False, array=high, arrayminus=low),
                                 hovertext=hover, hoverinfo="text"))
    fig.update_layout(xaxis_title="agreement with the reader's labels (95% Wilson interval)", xaxis_range=[0, 1.02],
                      yaxis=dict(autorange="reversed", tickmode="array", tickvals=list(range(len(groups))),
                                 ticktext=[name for name, _ in groups], zeroline=False),
                      height=160 + 26 * len(groups), margin=dict(l=10, t=40),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig


def agreement_table(report: dict):
    """The report's groups as a table, one row per group, numbers rounded to 3 places and each
    interval written as ``[low, high]`` (for the dashboard; the card prints the same facts)."""
    import pandas as pd

    def cell(value):
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(f"{v:.3f}" for v in value) + "]"
        return round(value, 3) if isinstance(value, float) else value

    return pd.DataFrame({name: {k: cell(v) for k, v in facts.items()}
                         for name, facts in report.items() if isinstance(facts, dict)}).T
