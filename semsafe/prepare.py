"""`semsafe prepare`: the paper's data recipe, from the unsafe base model itself.

1. Harmful prompts (AdvBench by default) are split train / held-out by a seeded hash of
   their ids. Held-out prompts are kept for evaluation and never trained on.
2. The base model answers the train prompts (batched, greedy). The refusal and harmfulness
   judges read each answer; compliant, harmful answers become the harmful set.
3. Retain set: benign instructions answered by the base model itself (self-distillation), or
   the user's own SFT data with its responses.

Generations are appended to a log after every batch, so a cancelled prepare resumes where it
stopped. Output goes to a folder named by the settings, with the settings in meta.json.
"""

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .data import Record, assign_split, load_any, load_set, near_duplicates, save_records
from .errors import SemsafeError
from .paths import PREPARE_BATCH_SIZE, cache_dir
from .store import atomic_write_json, model_key, read_resumable_jsonl


@dataclass
class PrepareConfig:
    model: str = "smollm2-135m-instruct"
    harmful: str = "advbench"  # a named set or a file of harmful prompts
    n_harmful: int | None = None  # cap on harmful train prompts (None = all)
    retain: str = "benign"  # a named set or a file of benign instructions
    n_retain: int | None = None
    self_distill: bool = True  # True: the model answers the retain prompts; False: use given responses
    held_out: float = 0.5  # share of prompts held out for evaluation
    seed: int = 0  # the split seed (train.yaml's data.split_seed); generation is greedy
    max_new_tokens: int = 64
    batch_size: int = PREPARE_BATCH_SIZE

    def key(self) -> str:
        # batch size changes how fast, not what is generated, so it does not name the folder; it
        # is hashed at 16, its value when folders were first named, so those are still found
        blob = json.dumps({**asdict(self), "batch_size": 16}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def default_out_dir(cfg: PrepareConfig) -> Path:
    return cache_dir() / "data" / f"{model_key(cfg.model)}-{cfg.key()}"


def prepare_config_for(cfg):
    """The `semsafe prepare` settings that ``data.prepared: auto`` stands for."""
    d = cfg.data
    return PrepareConfig(model=cfg.model, n_harmful=d.n_harmful, n_retain=d.n_retain,
                         max_new_tokens=d.prepare_max_new_tokens, seed=d.split_seed)


def prepared_folder(cfg) -> Path | None:
    """The prepared-data folder a config trains from (None when it names files directly)."""
    if cfg.data.prepared == "auto":
        return default_out_dir(prepare_config_for(cfg))
    return Path(cfg.data.prepared) if cfg.data.prepared else None


FEW_HELD_OUT = 10  # fewer held-out harmful prompts than this make a harmful rate's interval too wide to use


def prepare(cfg: PrepareConfig, out_dir: Path | None = None, progress: bool = True,
            model_and_tokenizer=None) -> dict:
    """Run the recipe; returns the report (also written to ``out_dir/report.json``)."""
    from .judges.harm import harm_judge
    from .models import tokenizer_fingerprint
    from .judges.refusal import refusal_judge

    if not 0 < cfg.held_out < 1:
        raise SemsafeError(f"held_out must be strictly between 0 and 1, got {cfg.held_out}")
    out = Path(out_dir) if out_dir else default_out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    _check_meta(out, cfg)
    started = time.time()

    train_h, held_h, train_r, held_r = split_sets(cfg)
    if not train_h:
        raise SemsafeError(f"no harmful training prompts left from {cfg.harmful!r} after the split")

    if model_and_tokenizer is None:
        from .models import generation_device, load_model
        model_and_tokenizer = load_model(cfg.model, device=generation_device())
    model, tok = model_and_tokenizer

    answers = _generate_resumable(model, tok, train_h, out / "generations_harmful.jsonl", cfg, progress)
    if cfg.self_distill:
        retain_answers = _generate_resumable(model, tok, train_r, out / "generations_retain.jsonl", cfg, progress)
    else:
        missing = [r.id for r in train_r if not r.response]
        if missing:
            raise SemsafeError(f"{len(missing)} retain records have no response (first: {missing[0]}); "
                               "give SFT data with responses or use self-distillation")
        retain_answers = {r.id: r.response for r in train_r}

    prompts = [r.prompt for r in train_h]
    responses = [answers[r.id] for r in train_h]
    refusal_p = refusal_judge().probability(prompts, responses)
    harm_p = harm_judge().probability(prompts, responses)
    from .judges import builtin_versions
    from .judges.degenerate import is_degenerate

    kept, reasons = [], {"degenerate answer": 0, "refused": 0, "judged harmless": 0}
    for r, text, p_ref, p_harm in zip(train_h, responses, refusal_p, harm_p):
        if is_degenerate(text):  # empty, symbols or a loop: nothing to push the model away from
            reasons["degenerate answer"] += 1
        elif p_ref >= 0.5:
            reasons["refused"] += 1
        elif p_harm < 0.5:
            reasons["judged harmless"] += 1
        else:
            kept.append(Record(r.id, r.prompt, str(text), r.source, "train",
                               {**r.labels, "harm_prob": round(float(p_harm), 4),
                                "refusal_prob": round(float(p_ref), 4),
                                "ended": bool(getattr(text, "ended", True))}))
    retain_set = [Record(r.id, r.prompt, str(retain_answers[r.id]), r.source, "train",
                         {**r.labels, "ended": bool(getattr(retain_answers[r.id], "ended", True))})
                  for r in train_r if retain_answers[r.id].strip()]

    save_records(kept, out / "harmful.jsonl")
    save_records(held_h, out / "harmful_heldout.jsonl")
    save_records(retain_set, out / "retain.jsonl")
    save_records(held_r, out / "retain_heldout.jsonl")
    report = {
        "out_dir": str(out),
        "harmful_prompts_answered": len(train_h),
        "harmful_kept": len(kept),
        "dropped": reasons,
        "harmful_heldout_prompts": len(held_h),
        "retain_examples": len(retain_set),
        "retain_heldout": len(held_r),
        "answers_cut_at_token_limit": {
            "harmful": sum(not r.labels["ended"] for r in kept),
            "retain": sum(not r.labels["ended"] for r in retain_set)},
        "split_seed": cfg.seed,
        "overlap": overlap_report(train_h + train_r, held_h + held_r + load_set("overalign")),
        # the judges that chose the harmful set (the degenerate rules drop answers too), named as
        # evaluations name them (evaluate.judge_versions), so training can tell when they changed
        "judges": {role: name for role, name in builtin_versions().items() if role in ("refusal", "harm", "degenerate")},
        "tokenizer": tokenizer_fingerprint(tok),
        "seconds": round(time.time() - started, 1),
    }
    if len(held_h) < FEW_HELD_OUT:
        report["warning"] = (
            f"only {len(held_h)} of the {len(train_h) + len(held_h)} harmful prompts of {cfg.harmful!r} are held out "
            "for evaluation, so the harmful suite of a run trained on this set has at most that many prompts; "
            "evaluate it with --extra-harmful (harmbench, donotanswer: sets it was not trained on) or give more prompts")
        logging.getLogger(__name__).warning(report["warning"])
    atomic_write_json(out / "report.json", report)
    return report


def split_sets(cfg: PrepareConfig):
    """``(harmful train, harmful held-out, retain train, retain held-out)`` records: the split
    every consumer of this config shares (training draws only from the train sides)."""
    harmful = assign_split(load_any(cfg.harmful), cfg.held_out, cfg.seed)
    retain = assign_split(load_any(cfg.retain), cfg.held_out, cfg.seed)
    return ([r for r in harmful if r.split == "train"][:cfg.n_harmful], [r for r in harmful if r.split == "test"],
            [r for r in retain if r.split == "train"][:cfg.n_retain], [r for r in retain if r.split == "test"])


def overlap_report(train, evaluation, threshold: float = 0.6, shown: int = 20) -> dict:
    """Training prompts that also appear among evaluation prompts: exact text matches (after
    normalising case and spaces) and near-duplicates (word Jaccard >= ``threshold``)."""
    pairs = near_duplicates([r.prompt for r in train], [r.prompt for r in evaluation], threshold)
    exact = [p for p in pairs if p["jaccard"] >= 1.0]
    return {"exact_duplicates": len(exact), "near_duplicates": len(pairs) - len(exact),
            "jaccard_threshold": threshold,
            "examples": sorted(pairs, key=lambda p: -p["jaccard"])[:shown]}


def load_prepared(folder) -> dict:
    """The prepared sets in ``folder``: harmful, harmful_heldout, retain, retain_heldout."""
    folder = Path(folder)
    if not (folder / "report.json").exists():
        raise SemsafeError(f"{folder} holds no finished `semsafe prepare` output (no report.json); "
                           "run `semsafe prepare` first")
    return {name: prepared_set(folder, name) for name in ("harmful", "harmful_heldout", "retain", "retain_heldout")}


def prepared_set(folder, name: str) -> list:
    """One prepared set's records; none when its file is missing or empty (prepare writes an
    empty file for a set it had nothing for, e.g. no prompt held out of a small file)."""
    from .data import load_records

    path = Path(folder) / f"{name}.jsonl"
    return list(load_records(path)) if path.exists() and path.stat().st_size else []


# --- internals -----------------------------------------------------------------------------

def _check_meta(out: Path, cfg: PrepareConfig) -> None:
    meta_path = out / "meta.json"
    meta = {"config": asdict(cfg), "key": cfg.key()}
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old.get("key") != cfg.key():
            raise SemsafeError(
                f"{out} was prepared with other settings ({old.get('config')}); "
                "choose another --out folder or delete that one")
    else:
        atomic_write_json(meta_path, meta)


def _generate_resumable(model, tok, records, log_path: Path, cfg, progress) -> dict:
    """{id: answer}; answers already in the log are reused, new ones appended per batch."""
    from .generate import Answer, generate_answers

    done = {row["id"]: Answer(row["response"], row.get("ended", True))
            for row in read_resumable_jsonl(log_path) if "id" in row and "response" in row}
    todo = [r for r in records if r.id not in done]
    if todo:
        with open(log_path, "a", encoding="utf-8") as log:
            def save_batch(indices, batch_answers):
                for i, text in zip(indices, batch_answers):
                    log.write(json.dumps({"id": todo[i].id, "response": str(text),
                                          "ended": bool(getattr(text, "ended", True))},
                                         ensure_ascii=False) + "\n")
                    done[todo[i].id] = text
                log.flush()

            generate_answers(model, tok, [r.prompt for r in todo], max_new_tokens=cfg.max_new_tokens,
                             batch_size=cfg.batch_size, seed=cfg.seed, progress=progress,
                             on_batch=save_batch)
    return {r.id: done[r.id] for r in records}


def latest_prepared(model: str | None = None):
    """The most recent finished `semsafe prepare` folder in the cache (for ``model`` if given)."""
    found = []
    for report in (cache_dir() / "data").glob("*/report.json"):
        meta = report.parent / "meta.json"
        try:
            spec = json.loads(meta.read_text())["config"]["model"]
        except (OSError, ValueError, KeyError):
            continue
        if model is None or spec == model:
            found.append((report.stat().st_mtime, report.parent))
    return max(found)[1] if found else None
