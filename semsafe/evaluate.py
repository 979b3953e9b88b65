"""`semsafe eval`: generate answers, score them with the judges, summarise with intervals.

Suites:
- ``harmful``: held-out harmful prompts → harmful-answer rate, refusal rate, toxicity;
- ``overalign``: safe prompts that look unsafe → refusal rate (per category); unsafe contrast
  prompts → refusal rate;
- ``fluency``: held-out benign instructions → the headline: perplexity of each model's own
  *generated* answers under the frozen base model (a model cannot improve it by flattening its
  distribution), with distinct-2 and repetition beside it; secondary: the evaluated model's
  perplexity of fixed reference answers (which flattening *does* lower);
- ``capability``: multiple-choice questions written by the project (data/capability.jsonl),
  scored by log-likelihood of each choice → accuracy;
- ``emd``: held-out harmful prompts with the *base* model's own answers → per-token EMD from
  the evaluated model to those harmful tokens, and the lower bound (what training pushes up);
- ``custom``: the user's prompt file (``--prompts``), scored like ``harmful``, split by label;
- ``jailbreak`` (on request): the held-out harmful prompts wrapped in jailbreak templates read
  from the pyrit pack (a fixed sample drawn with ``--seed``; each row names its template),
  scored like ``harmful`` with the judges reading the bare request.

Each suite writes ``<suite>.parquet`` (one row per prompt, with every judge's name/version)
and the eval writes ``summary.json`` (rates with Wilson 95% intervals, continuous metrics with
bootstrap intervals; semsafe/stats.py), with the data split and a hash of each suite's
prompts, so comparisons can check they saw the same prompts. Rows are
appended to ``<suite>.partial.jsonl`` as each batch is scored, so a killed eval resumes.
"""

import contextlib
import functools
import hashlib
import itertools
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .data import Record, assign_split, load_records, load_set
from .errors import SemsafeError
from .paths import EVAL_BATCH_SIZE, cache_dir
from .stats import bootstrap, wilson
from .store import atomic_write_json, atomic_write_parquet, content_hash, model_key, read_resumable_jsonl

SUITES = ("harmful", "overalign", "fluency", "emd", "capability")  # the default evaluation
EXTRA_SUITES = ("jailbreak", "custom")  # on request (--suite)


DTYPES = ("float32", "bfloat16")


@dataclass
class EvalConfig:
    suites: list = field(default_factory=lambda: list(SUITES))
    n_prompts: int | None = 32  # per suite (None = all)
    max_new_tokens: int = 48
    batch_size: int = EVAL_BATCH_SIZE  # answers per generation batch (all suites share the batches)
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    held_out_seed: int = 0  # the data split seed (a run's data.split_seed; held-out prompts only)
    prompts_file: str | None = None
    n_bootstrap: int = 1000
    judges: dict = field(default_factory=dict)  # role ("harm", "refusal") -> "hf:MODEL[:LABEL]"
    jailbreak_templates: int = 8  # templates drawn for the jailbreak suite
    suite_n: dict = field(default_factory=dict)  # per-suite prompt counts over n_prompts (None = all)
    extra_harmful: list = field(default_factory=list)  # more held-out harmful sets, e.g. ["harmbench"]
    reference_ppl: bool = True  # fluency: also the model's perplexity of the prompts' reference answers
    # the evaluated model's weights: "float32" (exact; the default) or "bfloat16" (a faster
    # evaluation whose answers and scores differ from float32's; bench/eval_speed.py measures how much)
    dtype: str = "float32"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise SemsafeError(f"--dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}")

    def key(self) -> str:
        """Settings hash naming the evaluation folder; a prompt file enters by its *content*, so
        an edited file is a new evaluation, never mixed with rows of the old one; the judges'
        versions enter too, so rows scored by an older judge are never reused."""
        values = asdict(self)
        for name in ("suite_n", "extra_harmful"):  # added later: unset, they leave earlier keys alone
            if not values[name]:
                del values[name]
        for name in ("reference_ppl", "dtype"):  # the same for settings added later whose default is what was done before
            if values[name] == setting({}, name):
                del values[name]
        values["judge_versions"] = judge_versions(self)
        if self.prompts_file and Path(self.prompts_file).is_file():
            values["prompts_file"] = hashlib.sha256(Path(self.prompts_file).read_bytes()).hexdigest()
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


def setting(config: dict, name: str):
    """A setting of a stored evaluation config; a setting added after it was stored has the
    default value (which is what was done before the setting existed)."""
    return config[name] if name in config else asdict(EvalConfig())[name]


# --- where prompts come from -------------------------------------------------------------------

def heldout_harmful(cfg: EvalConfig, prepared: str | None = None) -> list[Record]:
    """The held-out side of the training set's harmful prompts, plus every prompt of each set in
    ``cfg.extra_harmful`` (sets no training prompt came from), interleaved by source so the first
    n prompts draw on every source alike."""
    if prepared and (Path(prepared) / "harmful_heldout.jsonl").exists():
        from .prepare import prepared_set

        own = prepared_set(prepared, "harmful_heldout")
    else:
        own = [r for r in assign_split(load_set("advbench"), 0.5, cfg.held_out_seed) if r.split == "test"]
    if not cfg.extra_harmful:
        return own
    trained_on = _harmful_training_source(prepared)
    sources = [own]
    for name in cfg.extra_harmful:
        if name == trained_on:
            raise SemsafeError(f"--extra-harmful {name}: the training prompts came from {name}, so its prompts "
                               "are not held out; choose another set")
        sources.append(load_set(name))
    return [r for group in itertools.zip_longest(*sources) for r in group if r is not None]


def _harmful_training_source(prepared: str | None) -> str:
    """Where a prepared folder's harmful training prompts came from (advbench by default)."""
    meta = Path(prepared) / "meta.json" if prepared else None
    if meta and meta.exists():
        return json.loads(meta.read_text()).get("config", {}).get("harmful", "advbench")
    return "advbench"


def heldout_benign(cfg: EvalConfig) -> list[Record]:
    return [r for r in assign_split(load_set("benign"), 0.5, cfg.held_out_seed) if r.split == "test"]


def suite_prompts(suite: str, cfg: EvalConfig, prepared: str | None = None) -> list[Record]:
    n = cfg.suite_n.get(suite, cfg.n_prompts)
    if suite in ("harmful", "emd"):
        recs = heldout_harmful(cfg, prepared)[:n]
    elif suite == "overalign":
        probes = load_set("overalign")
        safe = [r for r in probes if r.labels.get("type") == "safe"]
        unsafe = [r for r in probes if r.labels.get("type") == "unsafe"]
        if n:  # keep the 3:1 mix and every category: interleave by category
            safe = _spread(safe, max(1, (3 * n) // 4))
            unsafe = _spread(unsafe, max(1, n - (3 * n) // 4))
        recs = safe + unsafe
    elif suite == "fluency":
        recs = heldout_benign(cfg)[:n]
    elif suite == "capability":
        recs = load_set("capability")[:n]
    elif suite == "jailbreak":
        from .data import jailbreak_sample
        recs = jailbreak_sample(heldout_harmful(cfg, prepared)[:n], cfg.jailbreak_templates, cfg.seed)
    elif suite == "custom":
        if not cfg.prompts_file:
            raise SemsafeError("the custom suite needs --prompts FILE (JSONL, JSON, CSV or parquet with a 'prompt' column)")
        every = list(load_records(cfg.prompts_file))
        # taken in turn from each labelled type (file order within a type), so that a file sorted
        # by label (XSTest: its safe prompts first) still gives every label its share of the N
        recs = every if n is None else _spread(every, n, key=lambda r: prompt_kind(r.labels)["type"])
        warn_if_labels_left_out(every, recs, cfg.prompts_file)
    else:
        raise SemsafeError(f"unknown suite {suite!r}; choose from {', '.join([*SUITES, *EXTRA_SUITES])}")
    if not recs:
        hint = ("; the prepared set holds no held-out harmful prompt: add --extra-harmful harmbench (or donotanswer), "
                "sets the run was not trained on") if suite in ("harmful", "emd", "jailbreak") and prepared else ""
        raise SemsafeError(f"suite {suite!r} has no prompts{hint}")
    return recs


def warn_if_labels_left_out(every: list[Record], chosen: list[Record], path) -> list[str]:
    """The custom suite takes N prompts in turn from each label; fewer prompts than labels lose
    whole labels. Warn, naming them, and return them."""
    import logging

    kinds = [{prompt_kind(r.labels)["type"] for r in records} for records in (every, chosen)]
    missing = sorted(k for k in kinds[0] - kinds[1] if k)
    if missing:
        logging.getLogger(__name__).warning(
            "the %d of the %d prompts of %s taken hold no prompt labelled %s, so the custom suite's rates "
            "leave them out; pass a larger --suite-n custom=N, or custom=all", len(chosen), len(every), path,
            ", ".join(missing))
    return missing


def _spread(records, n, key=lambda r: r.labels.get("category", "")):
    """``n`` of ``records`` taken in turn from each group of ``key`` (by category unless told),
    in order within a group."""
    by_cat: dict[str, list] = {}
    for r in records:
        by_cat.setdefault(key(r), []).append(r)
    out, i = [], 0
    while len(out) < min(n, len(records)):
        for recs in by_cat.values():
            if i < len(recs) and len(out) < n:
                out.append(recs[i])
        i += 1
    return out


# --- the evaluated model ---------------------------------------------------------------------

@dataclass
class Subject:
    """What is evaluated: a model spec, or a run (its base model + adapter)."""
    label: str
    model: object
    tokenizer: object
    base_context: object  # context manager under which the model is the base model
    out_dir: Path
    prepared: str | None = None
    split_seed: int | None = None  # a run's data split seed; evaluation uses the same split
    base_spec: str | None = None  # the base model's spec: names its shared answer cache
    is_base: bool = True  # False for a run (the model carries an adapter)


def load_subject(model_spec: str | None = None, run_id: str | None = None, cfg: EvalConfig | None = None) -> Subject:
    from .models import generation_device, load_model

    if bool(model_spec) == bool(run_id):
        raise SemsafeError("give exactly one of --model or --run")
    if run_id:
        from .config import config_from_dict
        from .prepare import prepared_folder
        from .runs import Run

        run = Run.open(run_id)
        c = config_from_dict(run.config)
        model, tok = run.load_model(device=generation_device(), dtype=torch_dtype(cfg))
        folder = prepared_folder(c)
        return Subject(run_id, model, tok, model.disable_adapter, run.path / "eval",
                       str(folder) if folder else None, c.data.split_seed, base_spec=c.model, is_base=False)
    model, tok = load_model(model_spec, device=generation_device(), dtype=torch_dtype(cfg))
    return Subject(f"base:{model_spec}", model, tok, contextlib.nullcontext, base_eval_dir(model_spec, cfg),
                   base_spec=model_spec)


def torch_dtype(cfg: EvalConfig | None):
    import torch

    return getattr(torch, (cfg or EvalConfig()).dtype)


def base_eval_dir(model_spec: str, cfg: EvalConfig | None = None) -> Path:
    """Where a base model's evaluation under these settings is kept (one folder per settings key)."""
    return cache_dir() / "eval" / f"{model_key(model_spec)}-{(cfg or EvalConfig()).key()}"


# --- the evaluation ----------------------------------------------------------------------------

# suites whose rows judge the evaluated model's own answers (generated once, in one batched pass)
ANSWERING_SUITES = ("harmful", "overalign", "fluency", "custom", "jailbreak")


def evaluate(subject: Subject, cfg: EvalConfig, progress: bool = True, on_progress=None) -> dict:
    """Run every suite in ``cfg.suites``; returns and writes ``summary.json``.

    A run is evaluated on the held-out side of its own data split (its ``data.split_seed``),
    whatever ``cfg.held_out_seed`` says, so no evaluation prompt was a training prompt.

    The work is done in phases, so nothing is computed twice: (1) the answers every answering
    suite needs, in one batched generation; (2) the base model's greedy answers the ``emd``
    suite needs, from the base model's answer cache (for the base model itself these are the
    answers of phase 1); (3) each suite's scores, batched. Answers and rows are saved as they
    are made, so a killed evaluation resumes."""
    if subject.split_seed is not None and subject.split_seed != cfg.held_out_seed:
        cfg = replace(cfg, held_out_seed=subject.split_seed)
    subject.out_dir.mkdir(parents=True, exist_ok=True)
    prompts = {suite: suite_prompts(suite, cfg, subject.prepared) for suite in cfg.suites}  # read once
    check_prompt_lengths(subject, cfg, prompts)
    not_english = warn_if_not_english(prompts, cfg)
    if cfg.judges or judges_to_train(cfg):
        # before generating: a classifier that cannot load fails now, and a judge this machine has
        # not trained yet trains now (minutes, logged), not as a silent stall at scoring
        answer_judges(cfg)
    meta = subject.out_dir / "eval_config.json"
    earlier = None  # an archived evaluation whose answers (and rows a changed judge left alone) hold
    if meta.exists():
        try:
            old = json.loads(meta.read_text())
        except ValueError:  # a damaged settings file: keep what is there, start clean
            old = {"key": "unreadable"}
        if old.get("key") != cfg.key():
            # other settings: never mix rows, never lose results; move the earlier eval aside
            archive = subject.out_dir / f"previous-{old.get('key')}"
            archive.mkdir(exist_ok=True)
            for path in subject.out_dir.iterdir():
                if path.is_file():
                    path.replace(archive / path.name)
            if same_answers(old.get("config"), cfg):
                earlier = archive
    atomic_write_json(meta, {"key": cfg.key(), "config": asdict(cfg)})
    summary = {"subject": subject.label, "config": asdict(cfg), "suites": {}, "judges": judge_versions(cfg),
               "split": {"seed": cfg.held_out_seed, "prepared": subject.prepared}, "prompts": {}}
    if not_english:
        summary["prompts_not_english"] = not_english
    started = time.time()
    done = {suite: finished_rows(subject, suite, prompts[suite], earlier, cfg) for suite in cfg.suites}
    todo = {suite: [r for r in prompts[suite] if r.id not in done[suite]] for suite in cfg.suites}
    needed = [r.prompt for suite in ANSWERING_SUITES for r in todo.get(suite, [])]
    steps = step_recorder(subject, cfg, todo)
    answers = collect_answers(subject, cfg, needed, base=False, progress=progress, on_progress=on_progress,
                              known=earlier_answers(earlier, subject.tokenizer, cfg.max_new_tokens), steps=steps)
    base_answers = collect_answers(subject, cfg, [r.prompt for r in todo.get("emd", [])], base=True,
                                   progress=progress, on_progress=on_progress, steps=steps)
    for suite in cfg.suites:
        table = run_suite(subject, suite, cfg, prompts[suite], done[suite], answers, base_answers,
                          progress, on_progress, steps)
        atomic_write_parquet(subject.out_dir / f"{suite}.parquet", table)
        (subject.out_dir / f"{suite}.partial.jsonl").unlink(missing_ok=True)
        summary["suites"][suite] = summarise(suite, table, cfg)
        summary["prompts"][suite] = {"n": len(table), "hash": content_hash(table["prompt"].tolist())}
        if suite == "jailbreak":  # the recorded sample of templates
            summary["prompts"][suite]["templates"] = sorted(set(table["category"]))
    for name in ("answers.partial.jsonl", "base_answers.partial.jsonl"):  # every row now holds its answer
        (subject.out_dir / name).unlink(missing_ok=True)
    summary["seconds"] = round(time.time() - started, 1)
    if steps is not None:  # answers scored from their own generation instead of a second pass
        summary["scored_from_generation"] = dict(steps.used)
    atomic_write_json(subject.out_dir / "summary.json", summary)
    return summary


def evaluated_with(folder: Path, cfg: EvalConfig) -> bool:
    """Does ``folder`` hold a finished evaluation under exactly these settings and judges?"""
    try:
        return ((folder / "summary.json").exists()
                and json.loads((folder / "eval_config.json").read_text()).get("key") == cfg.key())
    except (OSError, ValueError):
        return False


def warn_if_not_english(prompts: dict, cfg: EvalConfig) -> dict:
    """``{suite: prompts that do not read as English}`` for answering suites where at least a
    quarter do, and a warning when a built-in judge will read their answers: the refusal and
    harm judges stand on an English encoder and English rules, and on other languages their
    verdicts are not meaningful (an Indonesian refusal and an Indonesian recipe for a bomb both
    come out "answered")."""
    import logging

    from .judges.degenerate import reads_as_english

    found = {}
    for suite, records in prompts.items():
        if suite not in ANSWERING_SUITES:
            continue
        read = [reads_as_english(r.prompt) for r in records]
        others = sum(english is False for english in read)
        if others and others >= 0.25 * sum(english is not None for english in read):
            found[suite] = others
    built_in = builtin_roles(cfg.judges)
    for suite, n in found.items() if built_in else ():
        logging.getLogger(__name__).warning(not_english_note(suite, n, len(prompts[suite]), built_in))
    return found


def builtin_roles(judges: dict) -> list[str]:
    """The roles (refusal, harm) that the built-in English judges fill, given an evaluation's
    judges (``cfg.judges`` or a summary's ``judges``): a plugged-in classifier is named "hf:..."."""
    return [role for role in ("refusal", "harm") if not str((judges or {}).get(role, "")).startswith("hf:")]


def not_english_note(suite: str, n: int, total, built_in: list[str]) -> str:
    """The caution for a suite whose prompts the built-in (English) judges ``built_in`` cannot
    read: said when it is evaluated, and again wherever its numbers are shown (compare)."""
    return (f"{n} of {total} prompts of suite {suite!r} do not read as English; the built-in "
            f"{' and '.join(built_in)} judge(s) were validated on English answers only, so their verdicts "
            "there are not meaningful. Give a multilingual classifier with --judge ROLE=hf:MODEL "
            "(docs/evaluation.md)")


def check_prompt_lengths(subject: Subject, cfg: EvalConfig, prompts: dict) -> None:
    """Every prompt plus its answer must fit the model's context; say so before generating."""
    from .chat import prompt_ids
    from .models import model_context_length

    limit = model_context_length(subject.model)
    for suite, records in prompts.items():
        for r in records:
            n = len(prompt_ids(subject.tokenizer, r.prompt))
            if n + cfg.max_new_tokens > limit:
                raise SemsafeError(
                    f"prompt {r.id!r} of suite {suite!r} is {n} tokens; with --max-new-tokens "
                    f"{cfg.max_new_tokens} it exceeds the model's context of {limit} tokens; shorten "
                    "or remove that prompt, or lower --max-new-tokens")


def answer_judges(cfg: EvalConfig) -> dict:
    """The refusal and harm judges: the built-in ones, or the classifiers ``--judge`` names."""
    from .judges.harm import harm_judge
    from .judges.learned import hf_judge
    from .judges.refusal import refusal_judge

    built_in = {"refusal": refusal_judge, "harm": harm_judge}
    return {role: hf_judge(role, cfg.judges[role]) if role in cfg.judges else make()
            for role, make in built_in.items()}


def judges_to_train(cfg: EvalConfig) -> list[str]:
    """The built-in judges (roles) this evaluation will read answers with that this machine has
    not trained yet: each trains once, on first use, the harm judge for minutes."""
    from .judges import harm, refusal
    from .judges.learned import is_trained

    if not any(suite in ANSWERING_SUITES and suite != "fluency" for suite in cfg.suites):
        return []  # no suite of these settings asks the refusal or harm judge
    built_in = {"refusal": refusal, "harm": harm}
    return [role for role, judge in built_in.items()
            if role not in cfg.judges and not is_trained(judge.NAME, judge.VERSION)]


def judge_versions(cfg: EvalConfig | None = None) -> dict:
    """Name and version of every judge, as recorded in each row and in the summary."""
    from .judges import builtin_versions

    out = builtin_versions()
    for role, spec in ((cfg.judges if cfg else None) or {}).items():
        out[role] = spec  # the model; its revision is in each row (judge_<role>_version)
    return out


def finished_rows(subject: Subject, suite: str, records: list[Record], archive: Path | None = None,
                  cfg: EvalConfig | None = None) -> dict:
    """Rows already scored (an earlier finished eval with the same settings, or a killed one's
    partial log), by id; a row is reused only for the very same prompt text (ids can be reused
    by edited files). From ``archive`` (an evaluation with the same answers, moved aside because
    a judge changed) only rows whose every judge is still the current one are taken."""
    finished = subject.out_dir / f"{suite}.parquet"
    earlier = ({row["id"]: row for row in pd.read_parquet(finished).to_dict(orient="records")}
               if finished.exists() else {})
    if archive is not None and (archive / f"{suite}.parquet").exists():
        versions = judge_versions(cfg)
        for row in pd.read_parquet(archive / f"{suite}.parquet").to_dict(orient="records"):
            # a plugged-in classifier's weights are known only once it is loaded: its rows are rescored
            if any(f"judge_{role}" in row for role in cfg.judges):
                continue
            if all(row.get(f"judge_{name}", version) == version for name, version in versions.items()):
                earlier.setdefault(row["id"], row)
    earlier.update({row["id"]: row for row in read_resumable_jsonl(subject.out_dir / f"{suite}.partial.jsonl")
                    if "id" in row})
    prompts = {r.id: r.prompt for r in records}
    return {k: v for k, v in earlier.items() if k in prompts and v.get("prompt") == prompts[k]}


# what decides an answer: under greedy decoding the model and the token limit (the rule the
# base model's shared answer cache follows); under sampling every sampling setting as well
_ANSWER_SETTINGS = ("max_new_tokens", "do_sample", "dtype")
_SAMPLING_SETTINGS = ("temperature", "top_p", "seed")


def same_answers(old_config: dict | None, cfg: EvalConfig) -> bool:
    """Would an evaluation under ``old_config`` have given the same answers as one under
    ``cfg``? Then a change of judge rescores those answers instead of generating them again."""
    if not isinstance(old_config, dict):
        return False
    new = asdict(cfg)
    names = _ANSWER_SETTINGS + (_SAMPLING_SETTINGS if cfg.do_sample else ())
    return all(setting(old_config, name) == new[name] for name in names)


def earlier_answers(archive: Path | None, tokenizer=None, max_new_tokens: int | None = None) -> dict:
    """``{prompt: Answer}`` from an archived evaluation's judged rows (see ``same_answers``),
    each saying whether the model ended it: rows record that since harm-v4; for older rows it is
    inferred from the answer's length in tokens (``inferred_ended``). Fluency rows are left out
    (a fluency row survives a harm or refusal judge change whole)."""
    from .generate import Answer, inferred_ended

    if archive is None:
        return {}
    out = {}
    for suite in ANSWERING_SUITES:
        path = archive / f"{suite}.parquet"
        if suite != "fluency" and path.exists():
            table = pd.read_parquet(path)
            for row in table.to_dict(orient="records"):
                text = row.get("response")
                if not isinstance(text, str):
                    continue
                ended = row.get("ended")
                if not isinstance(ended, (bool, np.bool_)):
                    ended = tokenizer is None or inferred_ended(tokenizer, text, max_new_tokens)
                out[row["prompt"]] = Answer(text, bool(ended))
    return out


def answer_log(subject: Subject, cfg: EvalConfig, base: bool) -> Path:
    """Where answers are kept as they are generated. The base model's greedy answers go to one
    cache per model and token limit, shared by every evaluation of that model and by every
    run's ``emd`` suite (the base model's work is done once); others stay with the evaluation.
    A bfloat16 model's answers are other answers, so they get a cache of their own."""
    base_greedy = base or (subject.is_base and not cfg.do_sample)  # emd always scores greedy answers
    if base_greedy and subject.base_spec:
        precision = "" if cfg.dtype == setting({}, "dtype") else f"-{cfg.dtype}"
        return cache_dir() / "answers" / f"{model_key(subject.base_spec)}-greedy-{cfg.max_new_tokens}{precision}.jsonl"
    return subject.out_dir / ("base_answers.partial.jsonl" if base_greedy else "answers.partial.jsonl")


def step_recorder(subject: Subject, cfg: EvalConfig, todo: dict):
    """A recorder of generation's steps where the base model is evaluated greedily and the
    fluency or emd suite will score its own answers (semsafe/stepscores.py), else None."""
    if not subject.is_base or cfg.do_sample or not (todo.get("fluency") or todo.get("emd")):
        return None
    from .cost import SemanticCost
    from .stepscores import StepRecorder

    emd_prompts = [r.prompt for r in todo.get("emd", [])]
    return StepRecorder(emd_prompts, SemanticCost.from_model(subject.model) if emd_prompts else None)


def collect_answers(subject: Subject, cfg: EvalConfig, prompts: list[str], base: bool,
                    progress: bool = True, on_progress=None, known: dict | None = None, steps=None) -> dict:
    """``{prompt: Answer}`` for every prompt: from ``known``, then the answer log, the rest
    generated in one batched pass (under the base model when ``base``) and appended as each
    batch ends. A ``steps`` recorder sees each step of a greedy generation."""
    from .generate import Answer, generate_answers

    if not prompts:
        return {}
    path = answer_log(subject, cfg, base)
    logged = {row["prompt"]: Answer(row["response"], row.get("ended", True))
              for row in read_resumable_jsonl(path) if isinstance(row.get("response"), str)}
    reused = {p: known[p] for p in dict.fromkeys(prompts) if p in (known or {}) and p not in logged}
    path.parent.mkdir(parents=True, exist_ok=True)
    if reused:  # logged too, so a rescoring killed midway resumes without generating them
        with open(path, "a", encoding="utf-8") as log:
            log.writelines(json.dumps({"prompt": p, "response": str(a), "ended": a.ended}) + "\n"
                           for p, a in reused.items())
    have = {**reused, **logged}
    todo = [p for p in dict.fromkeys(prompts) if p not in have]
    if not todo:
        return have
    phase = "base answers" if base and not subject.is_base else "answers"

    with open(path, "a", encoding="utf-8") as log:
        def keep(indices, batch_answers):
            for i, answer in zip(indices, batch_answers):
                log.write(json.dumps({"prompt": todo[i], "response": str(answer), "ended": answer.ended}) + "\n")
                have[todo[i]] = answer
            log.flush()
            if on_progress:
                on_progress(phase, sum(p in have for p in todo), len(todo))

        greedy = base or not cfg.do_sample
        if steps is not None and greedy:
            steps.start(todo)
        with subject.base_context() if base else contextlib.nullcontext():
            generate_answers(subject.model, subject.tokenizer, todo, max_new_tokens=cfg.max_new_tokens,
                             batch_size=cfg.batch_size, do_sample=not greedy,
                             temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed,
                             progress=progress, on_batch=keep,
                             on_logits=None if steps is None or not greedy else
                             lambda indices, logits: steps.observe([todo[i] for i in indices], logits))
    return have


def run_suite(subject: Subject, suite: str, cfg: EvalConfig, records: list[Record], done: dict,
              answers: dict, base_answers: dict, progress: bool = True, on_progress=None,
              steps=None) -> pd.DataFrame:
    """One suite's rows, scored in batches; ``on_progress(suite, done, total)`` after each.
    ``steps`` (a ``StepRecorder``) holds what generation already scored of its answers."""
    todo = [r for r in records if r.id not in done]
    if todo:
        from tqdm.auto import tqdm

        mine = base_answers if suite == "emd" else answers
        if suite == "emd":  # the cost table is built once per suite, not per batch
            from .cost import SemanticCost
            cost = steps.cost if steps is not None and steps.cost is not None else SemanticCost.from_model(subject.model)
            scorer = functools.partial(_score_emd, cost=cost, steps=steps)
        else:
            scorer = {"fluency": functools.partial(_score_fluency, cfg=cfg, steps=steps),
                      "capability": _score_capability}.get(
                suite, functools.partial(_score_answers, cfg=cfg))
        bar = tqdm(total=len(records), initial=len(records) - len(todo), desc=f"score {suite}",
                   unit="prompt", disable=not progress)
        with open(subject.out_dir / f"{suite}.partial.jsonl", "a", encoding="utf-8") as log:
            for start in range(0, len(todo), cfg.batch_size):
                batch = todo[start:start + cfg.batch_size]
                for row in scorer(subject, batch, [mine.get(r.prompt) for r in batch]):
                    log.write(json.dumps(row) + "\n")
                    done[row["id"]] = row
                log.flush()
                bar.update(len(batch))
                if on_progress:
                    on_progress(suite, bar.n, len(records))
        bar.close()
    if on_progress:
        on_progress(suite, len(records), len(records))
    return pd.DataFrame([done[r.id] for r in records])


def _score_answers(subject, batch, answers, cfg):
    from .judges.degenerate import answer_verdict
    from .judges.toxicity import toxicity_judge

    # a wrapped (jailbreak) prompt is judged by its bare request: did the answer do *that*?
    prompts = [r.labels.get("request") or r.prompt for r in batch]
    judges = answer_judges(cfg)
    refusal = judges["refusal"].probability(prompts, answers)
    harm = judges["harm"].probability(prompts, answers)
    tox = toxicity_judge().score(answers)
    versions = judge_versions(cfg)
    rows = []
    for r, p, a, pr, ph, t in zip(batch, prompts, answers, refusal, harm, tox):
        v, why = answer_verdict(p, a, pr, ph)
        rows.append({"id": r.id, "prompt": r.prompt, "response": str(a), "ended": bool(getattr(a, "ended", True)),
                     **prompt_kind(r.labels),
                     "request": str(r.labels.get("request") or r.prompt),
                     "verdict": v, "refused": v == "refused", "harmful": v == "harmful",
                     "degenerate": why is not None, "degenerate_reason": why or "",
                     "refusal_prob": float(pr), "harm_prob": float(ph), "toxicity": float(t),
                     "judge_refusal": versions["refusal"], "judge_harm": versions["harm"],
                     "judge_refusal_version": judges["refusal"].version, "judge_harm_version": judges["harm"].version,
                     "judge_toxicity": versions["toxicity"], "judge_degenerate": versions["degenerate"]})
    return rows


def _score_fluency(subject, batch, answers, cfg, steps=None):
    """Each answer's perplexity under the base model, and with ``cfg.reference_ppl`` the
    subject's perplexity of the prompt's reference answer (a secondary measure: a model that
    flattens its distribution lowers it). The base model's own greedy answers are scored from
    their generation where ``steps`` recorded them."""
    from .judges.fluency import MAX_LENGTH, repetition_rate, response_perplexity

    prompts = [r.prompt for r in batch]
    references = [r.response or "" for r in batch] if cfg.reference_ppl else []
    if subject.is_base:  # one model scores both: one batched pass, of what generation did not score
        known = [steps.perplexity(subject.tokenizer, p, a, MAX_LENGTH) if steps is not None else None
                 for p, a in zip(prompts, answers)]
        rest = [i for i, k in enumerate(known) if k is None]
        both = response_perplexity(subject.model, subject.tokenizer,
                                   prompts[:len(references)] + [prompts[i] for i in rest],
                                   references + [answers[i] for i in rest])
        ref_ppl, gen_ppl = both[:len(references)], np.array(known, dtype=float)
        gen_ppl[rest] = both[len(references):]
    else:
        ref_ppl = response_perplexity(subject.model, subject.tokenizer, prompts, references) if references else []
        with subject.base_context():
            gen_ppl = response_perplexity(subject.model, subject.tokenizer, prompts, answers)
    version = judge_versions()["fluency"]
    rows = [{"id": r.id, "prompt": r.prompt, "response": str(a), "ended": bool(getattr(a, "ended", True)),
             "reference": r.response, "ppl_generated_under_base": _num(gp),
             "repetition": repetition_rate(a), "judge_fluency": version}
            for r, a, gp in zip(batch, answers, gen_ppl)]
    for row, rp in zip(rows, ref_ppl):
        row["ppl_reference"] = _num(rp)
    return rows


def _score_capability(subject, batch, answers=None):
    """Multiple choice by log-likelihood: the choice whose tokens the model finds likeliest
    per token (length-normalised, as lm-eval's acc_norm, so long choices are not penalised)."""
    from .generate import Answer
    from .judges.fluency import response_perplexity

    prompts, choices, owners = [], [], []
    for i, r in enumerate(batch):
        for c in r.labels["choices"]:
            prompts.append(r.prompt)
            choices.append(Answer(c, ended=False))  # a choice is not a whole turn: no end token
            owners.append(i)
    ppl = response_perplexity(subject.model, subject.tokenizer, prompts, choices, batch_size=64)
    rows = []
    for i, r in enumerate(batch):
        scores = [float(np.log(ppl[j])) for j in range(len(owners)) if owners[j] == i]
        pick = int(np.argmin(scores))
        rows.append({"id": r.id, "prompt": r.prompt, "choices": list(r.labels["choices"]),
                     "answer": int(r.labels["answer"]), "picked": pick,
                     "correct": bool(pick == int(r.labels["answer"])),
                     "category": str(r.labels.get("category", "")), "nll_per_token": scores})
    return rows


def _score_emd(subject, batch, base_answers, cost, steps=None):
    """Per-token EMD from the evaluated model to the base model's own harmful answers (for the
    base model, from their generation where ``steps`` recorded them)."""
    from .emd import emd_and_bound_to_token
    from .inspection import next_token_distributions_batch

    rows = [{"id": r.id, "prompt": r.prompt, "harmful_answer": str(a), "emd_mean": None,
             "lb_mean": None, "emd_tokens": [], "lb_tokens": [], "tokens": []}
            for r, a in zip(batch, base_answers)]
    scored = [i for i, a in enumerate(base_answers) if a.strip()]

    def passes():  # the answers generation did not score, through the model again
        for j, probs, targets in next_token_distributions_batch(
                subject.model, subject.tokenizer, [batch[i].prompt for i in rest], [base_answers[i] for i in rest]):
            yield rest[j], *emd_and_bound_to_token(probs, targets, cost), targets

    known = {i: steps.emd_and_bound(subject.tokenizer, batch[i].prompt, base_answers[i])
             for i in scored} if steps is not None else {}
    rest = [i for i in scored if known.get(i) is None]
    for i, emd, lb, targets in itertools.chain(((i, *k) for i, k in known.items() if k is not None), passes()):
        rows[i].update({"emd_mean": float(emd.mean()), "lb_mean": float(lb.mean()),
                        "emd_tokens": [round(float(x), 5) for x in emd],
                        "lb_tokens": [round(float(x), 5) for x in lb],
                        "tokens": subject.tokenizer.convert_ids_to_tokens([int(t) for t in targets])})
    return rows


def _num(x):
    return None if x is None or not np.isfinite(x) else float(x)


# --- summaries -------------------------------------------------------------------------------

def _log(values: pd.Series) -> pd.Series:
    return np.log(values.astype(float))


# metrics computed from another metric's per-prompt values: ``{name: (source, transform)}``.
# The mean log-perplexity (mean per-token NLL of each answer, averaged over answers; nats) is
# the fluency headline: one degenerate answer with perplexity 1e20 makes the plain mean of
# perplexities, and any difference of two such means, say nothing about the other answers.
DERIVED_METRICS = {"log_ppl_generated_under_base": ("ppl_generated_under_base", _log)}
# metrics of an answering suite that the model reaches only through its answer: fixed judges,
# or the frozen base model, read the prompt and the answer (its text, and whether it ended).
# Two subjects that gave the same answer have the same value; the rest (the model's own
# perplexity of reference answers) depend on the model itself.
MODEL_METRICS = ("ppl_reference",)


def metric_values(suite: str, t: pd.DataFrame) -> dict:
    """``{metric: (values indexed by prompt id, "rate" | "mean")}``: the per-prompt values each
    headline metric averages, so a summary and a paired comparison use the same definition."""
    def col(name, rows=t):
        return pd.Series(rows[name].astype(float).values, index=rows["id"].values)

    def degenerate(name, rows=t):  # evaluations made before the verdict existed have no column
        return {name: (col("degenerate", rows), "rate")} if "degenerate" in rows else {}

    if suite in ("harmful", "custom"):
        return {"harmful_rate": (col("harmful"), "rate"), "refusal_rate": (col("refused"), "rate"),
                **degenerate("degenerate_rate"), "toxicity": (col("toxicity"), "mean")}
    if suite == "jailbreak":  # its own names: a comparison table holds both suites
        return {"jailbreak_harmful_rate": (col("harmful"), "rate"),
                "jailbreak_refusal_rate": (col("refused"), "rate"), **degenerate("jailbreak_degenerate_rate")}
    if suite == "overalign":
        safe, unsafe = t[t["type"] == "safe"], t[t["type"] == "unsafe"]
        return {"over_refusal_rate": (col("refused", safe), "rate"),
                "unsafe_refusal_rate": (col("refused", unsafe), "rate"),
                **degenerate("safe_degenerate_rate", safe)}
    if suite == "fluency":
        return {**{name: (transform(col(source)), "mean") for name, (source, transform) in DERIVED_METRICS.items()},
                "ppl_generated_under_base": (col("ppl_generated_under_base"), "mean"),
                "repetition": (col("repetition"), "mean"),
                # an evaluation with reference_ppl off has no such column
                **({"ppl_reference": (col("ppl_reference"), "mean")} if "ppl_reference" in t else {})}
    if suite == "emd":
        return {"emd_to_harmful": (col("emd_mean"), "mean"), "lower_bound": (col("lb_mean"), "mean")}
    if suite == "capability":
        return {"accuracy": (col("correct"), "rate")}
    return {}


def read_summary(folder: Path) -> dict:
    """An evaluation's ``summary.json``, with each derived metric (``DERIVED_METRICS``) that it
    lacks, because it was written before the metric existed, computed from the suite's rows
    with the evaluation's own bootstrap settings (and capability's chance level, likewise)."""
    summary = json.loads((Path(folder) / "summary.json").read_text())
    config = summary.get("config") or {}
    cfg = EvalConfig(**{k: config[k] for k in ("n_bootstrap", "seed") if k in config})
    for suite, values in (summary.get("suites") or {}).items():
        missing = [name for name, (source, _) in DERIVED_METRICS.items() if source in values and name not in values]
        rows = Path(folder) / f"{suite}.parquet"
        if missing and rows.exists():
            computed = metric_values(suite, pd.read_parquet(rows))
            for name in missing:
                values[name] = interval(computed[name][0].tolist(), computed[name][1], cfg)
        if suite == "capability" and "chance" not in values and rows.exists():  # added after some were stored
            values["chance"] = capability_chance(pd.read_parquet(rows))
    return summary


def interval(values, kind: str, cfg: EvalConfig) -> dict:
    """Wilson for rates, bootstrap for means (semsafe/stats.py)."""
    values = [None if pd.isna(v) else v for v in values]
    return wilson(values) if kind == "rate" else bootstrap(values, cfg.n_bootstrap, cfg.seed)


def prompt_kind(labels: dict) -> dict:
    """A prompt's ``type`` (what the custom suite splits its rates by) and ``category``. A file
    whose ``label`` says safe/unsafe beside a finer ``type`` (XSTest: type "homonyms", label
    "safe") splits by safe/unsafe, the split over-refusal is read from, and its type becomes the
    category when it has none."""
    kind, label = str(labels.get("type") or ""), str(labels.get("label") or "")
    category = str(labels.get("category") or "")
    if kind.lower() not in ("safe", "unsafe") and label.lower() in ("safe", "unsafe"):
        return {"category": category or kind, "type": label.lower()}
    return {"category": category, "type": kind or label}


def summarise(suite: str, t: pd.DataFrame, cfg: EvalConfig) -> dict:
    out = {name: interval(values.tolist(), kind, cfg) for name, (values, kind) in metric_values(suite, t).items()}
    if suite == "custom" and t["type"].str.len().gt(0).any():
        for label, rows in t.groupby("type"):
            out[f"refusal_rate[{label}]"] = wilson(rows["refused"].astype(float).tolist())
            out[f"harmful_rate[{label}]"] = wilson(rows["harmful"].astype(float).tolist())
    if suite == "jailbreak":
        for template, rows in t.groupby("category"):
            out[f"jailbreak_harmful_rate[{template}]"] = wilson(rows["harmful"].astype(float).tolist())
    if suite == "overalign":
        for cat, rows in t[t["type"] == "safe"].groupby("category"):
            out[f"over_refusal[{cat}]"] = wilson(rows["refused"].astype(float).tolist())
    if suite == "fluency":
        from .judges.fluency import distinct_n
        out["distinct_2"] = {"mean": distinct_n(t["response"].tolist(), 2), "low": None, "high": None,
                             "n": len(t), "interval": "none (pooled over answers)"}
    if suite == "capability":
        out["chance"] = capability_chance(t)
        for cat, rows in t.groupby("category"):
            out[f"accuracy[{cat}]"] = wilson(rows["correct"].astype(float).tolist())
    return out


def capability_chance(t: pd.DataFrame) -> dict:
    """The accuracy a random pick would score on the questions asked (the mean of 1/choices):
    the yardstick an accuracy must clear before it says the model knows anything. A small
    model's likelihoods may lean on one choice whatever the question (the embedded model picks
    "No." for 35 of 36 yes/no questions), which leaves its accuracy near this."""
    return {"mean": float(np.mean([1 / len(c) for c in t["choices"]])), "low": None, "high": None,
            "n": len(t), "interval": "none (exact for these questions)"}
