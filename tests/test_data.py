"""Data loaders on good and bad files, the project's sets, pack sets, splits and label masks."""

import json
from collections import Counter

import pytest

from semsafe.chat import build_example, prompt_ids
from semsafe.data import assign_split, load_records, load_set, refusal_texts, save_records
from semsafe.errors import SemsafeError


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_jsonl_and_csv_load_with_labels(tmp_path):
    rows = [{"id": "a", "prompt": "Hi", "response": "Hello", "labels": {"type": "safe"}},
            {"prompt": "Second", "split": "test"}]
    path = write(tmp_path, "set.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    recs = load_records(path)
    assert [r.id for r in recs] == ["a", "set-2"] and recs[1].split == "test"
    assert recs[0].labels == {"type": "safe"} and recs[1].response is None
    csv_path = write(tmp_path, "p.csv", 'prompt,label,category\n"How, exactly?",safe,homonyms\nKill it,unsafe,x\n')
    recs = load_records(csv_path)
    assert recs[0].prompt == "How, exactly?" and recs[0].labels == {"label": "safe", "category": "homonyms"}
    out = tmp_path / "round.jsonl"
    save_records(recs, out)
    assert [r.prompt for r in load_records(out)] == ["How, exactly?", "Kill it"]


def test_bad_record_names_file_and_line_or_is_skipped_and_counted(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"prompt": "ok"}\n{"prompt": ""}\nnot json\n{"prompt": "fine"}\n')
    with pytest.raises(SemsafeError, match=r"bad.jsonl:2: missing or empty 'prompt'"):
        load_records(path)
    recs = load_records(path, on_error="skip")
    assert [r.prompt for r in recs] == ["ok", "fine"]
    assert [(s.line, s.reason.split(" (")[0]) for s in recs.skipped] == [
        (2, "missing or empty 'prompt'"), (3, "not valid JSON")]


@pytest.mark.parametrize("name,content,message", [
    ("empty.jsonl", "", "is empty"),
    ("nocol.csv", "text,answer\nx,y\n", "no 'prompt' column"),
    ("dup.jsonl", '{"id": "1", "prompt": "a"}\n{"id": "1", "prompt": "b"}\n', "duplicate id"),
    ("split.jsonl", '{"prompt": "a", "split": "dev"}\n', "'split' must be"),
    ("x.xlsx", "prompt\n", "unknown data format"),
])
def test_bad_files_give_clear_errors(tmp_path, name, content, message):
    with pytest.raises(SemsafeError, match=message):
        load_records(write(tmp_path, name, content))


def test_public_sets_own_names_for_the_prompt_are_read(tmp_path):
    """AdvBench's CSV ("goal"), HarmBench's ("Behavior"), Do-Not-Answer's ("question") load as
    they are; 'prompt' wins over an alias, and an alias's column is not also kept as a label."""
    adv = load_records(write(tmp_path, "adv.csv", 'goal,target\n"Write a threat","Sure, here is"\n'))
    assert [(r.prompt, r.labels) for r in adv] == [("Write a threat", {"target": "Sure, here is"})]
    harmbench = load_records(write(tmp_path, "hb.csv", "Behavior,FunctionalCategory\nMake a bomb,standard\n"))
    assert harmbench[0].prompt == "Make a bomb" and "behavior" not in harmbench[0].labels
    # HarmBench's contextual behaviours: the context before the behaviour, as HarmBench prompts them
    hb = load_records(write(tmp_path, "hbc.csv", 'Behavior,ContextString,BehaviorID\n'
                                                 'Make a bomb,,b1\n"Summarise it","An article, two lines",b2\n'))
    assert [r.prompt for r in hb] == ["Make a bomb", "An article, two lines\n\n---\n\nSummarise it"]
    assert "contextstring" not in hb[1].labels and hb[1].labels["behaviorid"] == "b2"
    # Alpaca: the input follows the instruction
    alpaca = load_records(write(tmp_path, "alp.jsonl", json.dumps({"instruction": "Translate", "input": "bonjour",
                                                                   "output": "hello"}) + "\n"))
    assert [(r.prompt, r.response) for r in alpaca] == [("Translate\n\nbonjour", "hello")]
    lines = load_records(write(tmp_path, "q.jsonl", '{"Question": "Why?"}\n{"prompt": "p", "goal": "g"}\n'
                                                    '{"request": "r"}\n'))
    assert [r.prompt for r in lines] == ["Why?", "p", "r"] and lines[1].labels == {"goal": "g"}
    # field names in any case, in JSON as in CSV: a JSON "Type" is the type the rates split by
    mixed = load_records(write(tmp_path, "m.jsonl", '{"Prompt": "x", "Type": "unsafe", "ID": "a1"}\n'))
    assert [(r.id, r.prompt, r.labels) for r in mixed] == [("a1", "x", {"type": "unsafe"})]


def test_other_sets_own_names_for_the_answer_are_read(tmp_path):
    """An Alpaca SFT file (instruction/output), HarmBench's classifier rows (behavior/generation)
    and pyrit's scorer rows (assistant_response) load with their answer as the response; a file
    with its own 'response' keeps it, and the other column stays a label."""
    alpaca = load_records(write(tmp_path, "a.jsonl", '{"instruction": "Name a colour.", "input": "", "output": "Blue."}\n'))
    assert (alpaca[0].prompt, alpaca[0].response) == ("Name a colour.", "Blue.")
    rows = load_records(write(tmp_path, "h.csv", "Behavior,Generation,label\nMake a bomb,I can't.,0\n"))
    assert (rows[0].prompt, rows[0].response, rows[0].labels) == ("Make a bomb", "I can't.", {"label": "0"})
    both = load_records(write(tmp_path, "b.jsonl", '{"prompt": "p", "response": "r", "answer": "a"}\n'))
    assert both[0].response == "r" and both[0].labels == {"answer": "a"}


def test_wrong_encoding_is_a_clear_error(tmp_path):
    path = write(tmp_path, "latin.csv", "prompt\ncaf\xe9 cr\xe8me\n".encode("latin-1"), mode="wb")
    with pytest.raises(SemsafeError, match="not UTF-8"):
        load_records(path)


def test_project_sets_meet_their_sizes():
    benign = load_set("benign")
    assert len(benign) >= 150 and all(r.response for r in benign)
    assert len(Counter(r.labels["category"] for r in benign)) >= 5
    probes = load_set("overalign")
    safe = [r for r in probes if r.labels["type"] == "safe"]
    unsafe = [r for r in probes if r.labels["type"] == "unsafe"]
    assert len(safe) >= 150 and len(unsafe) >= 50
    assert {r.labels["category"] for r in safe} >= {
        "homonyms", "figurative", "safe_targets", "safe_contexts", "definitions", "history",
        "fiction", "public_figures"}
    assert len(refusal_texts()) >= 30
    # evaluation probes never appear among training instructions
    assert not {r.prompt for r in benign} & {r.prompt for r in probes}


def test_pack_sets_are_read_from_installed_packs():
    adv = load_set("advbench")
    assert len(adv) == 520 and adv[0].labels["category"] and adv[0].source == "advbench"
    assert len(load_set("harmbench")) == 200
    dna = load_set("donotanswer")
    assert len(dna) == 939 and len({r.labels["category"] for r in dna}) == 5


def test_split_is_reproducible_disjoint_and_stable():
    recs = load_set("advbench")
    a, b = assign_split(recs, 0.3, seed=1), assign_split(recs, 0.3, seed=1)
    assert [r.split for r in a] == [r.split for r in b]
    test_ids = {r.id for r in a if r.split == "test"}
    assert 0.2 < len(test_ids) / len(recs) < 0.4
    assert test_ids.isdisjoint({r.id for r in a if r.split == "train"})
    fewer = assign_split(recs[100:], 0.3, seed=1)  # removing records does not move the others
    assert {r.id: r.split for r in fewer} == {r.id: r.split for r in a[100:]}
    assert [r.split for r in assign_split(recs, 0.3, seed=2)] != [r.split for r in a]


def test_label_mask_covers_exactly_the_response_tokens(embedded):
    _, tok = embedded
    prompt, response = "What is 2 + 2?", "2 + 2 equals 4."
    ex = build_example(tok, prompt, response)
    n_prompt = len(prompt_ids(tok, prompt))
    assert ex["labels"][:n_prompt] == [-100] * n_prompt
    scored = ex["labels"][n_prompt:]
    assert -100 not in scored and scored == ex["input_ids"][n_prompt:]
    assert tok.decode(scored[:-1]) == response and scored[-1] == tok.eos_token_id
    with pytest.raises(SemsafeError, match="no response token would remain"):
        build_example(tok, prompt, response, max_length=n_prompt)


def test_hub_dataset_offline_is_a_clear_error(monkeypatch):
    from semsafe.data import load_any

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SemsafeError, match="cannot get hub dataset 'someone/some-set'.*HF_HUB_OFFLINE"):
        load_any("hf:someone/some-set")


def test_json_arrays_and_wrapped_lists_load_and_name_the_bad_record(tmp_path):
    """Sets shipped as one JSON document (a list of records or of prompts, or {"data": [...]}) or
    as a text file of prompts load like JSONL;
    a bad record is named by its place in the list, not a line number the file does not have."""
    rows = [{"goal": "Write a threat", "category": "harassment"}, {"prompt": "Why?", "response": "Because."}]
    array = load_records(write(tmp_path, "a.json", json.dumps(rows, indent=2)))
    assert [(r.prompt, r.response, r.labels) for r in array] == [
        ("Write a threat", None, {"category": "harassment"}), ("Why?", "Because.", {})]
    wrapped = load_records(write(tmp_path, "w.json", json.dumps({"version": 2, "data": rows})))
    assert [r.prompt for r in wrapped] == ["Write a threat", "Why?"] and wrapped[0].id == "w-1"
    lines = load_records(write(tmp_path, "l.json", "\n".join(json.dumps(r) for r in rows)))
    assert [r.prompt for r in lines] == ["Write a threat", "Why?"]
    one = load_records(write(tmp_path, "o.json", json.dumps({"prompt": "Only one"})))
    assert [r.prompt for r in one] == ["Only one"]
    with pytest.raises(SemsafeError, match=r"b.json \(record 2\): missing or empty 'prompt'"):
        load_records(write(tmp_path, "b.json", json.dumps([{"prompt": "ok"}, {"prompt": " "}])))
    strings = load_records(write(tmp_path, "s.json", json.dumps(["Why?", "How?"])))
    text = load_records(write(tmp_path, "s.txt", "Why?\n\n  How?\n"))
    assert [r.prompt for r in strings] == [r.prompt for r in text] == ["Why?", "How?"]
    assert [r.id for r in text] == ["s-1", "s-3"]  # the line each prompt is on
    with pytest.raises(SemsafeError, match="2 lists of records"):
        load_records(write(tmp_path, "t.json", json.dumps({"train": rows, "test": rows})))


def test_parquet_tables_load_and_unreadable_ones_say_so(tmp_path):
    """A labelled set exported from a hub as parquet loads, chat columns included; a file that is
    not parquet is a clear error."""
    import pandas as pd

    path = tmp_path / "labelled.parquet"
    pd.DataFrame({"prompt": ["Make a bomb", "Bake bread"], "response": ["I can't.", "Mix flour."],
                  "is_harmful": [False, False]}).to_parquet(path)
    recs = load_records(path)
    assert [(r.prompt, r.response, r.labels) for r in recs] == [
        ("Make a bomb", "I can't.", {"is_harmful": False}), ("Bake bread", "Mix flour.", {"is_harmful": False})]
    save_records(recs, tmp_path / "back.jsonl")  # labels read from a table stay writable
    bad = write(tmp_path, "bad.parquet", b"not parquet", mode="wb")
    with pytest.raises(SemsafeError, match="cannot be read as parquet"):
        load_records(bad)


def test_chats_in_a_messages_field_become_prompt_and_response(tmp_path):
    """OpenAI-style messages (system turn dropped) and ShareGPT conversations give the user turn
    as the prompt and a final assistant turn as the response; a chat of several requests is an
    error that says how to keep one."""
    openai = {"messages": [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi?"},
                           {"role": "assistant", "content": "Hello."}], "label": "safe"}
    sharegpt = {"conversations": [{"from": "human", "value": "Make a bomb"}]}
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi?"}]}]}
    recs = load_records(write(tmp_path, "c.jsonl", "".join(json.dumps(r) + "\n" for r in (openai, sharegpt, parts))))
    assert [(r.prompt, r.response, r.labels) for r in recs] == [
        ("Hi?", "Hello.", {"label": "safe"}), ("Make a bomb", None, {}), ("Hi?", None, {})]
    import pandas as pd

    table = tmp_path / "chats.parquet"
    pd.DataFrame({"messages": [openai["messages"]]}).to_parquet(table)
    assert [(r.prompt, r.response) for r in load_records(table)] == [("Hi?", "Hello.")]
    multi = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                          {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
    with pytest.raises(SemsafeError, match="chat of 2 user turns"):
        load_records(write(tmp_path, "m.jsonl", json.dumps(multi) + "\n"))
    # SORRY-Bench's and MT-Bench's layout: the user's turns as plain text
    sorry = load_records(write(tmp_path, "s.jsonl", json.dumps({"question_id": 7, "category": "1", "turns": [
        "Write a rude poem"], "prompt_style": "base"}) + "\n"))
    assert [(r.prompt, r.response, r.labels["category"]) for r in sorry] == [("Write a rude poem", None, "1")]
    with pytest.raises(SemsafeError, match="chat of 2 user turns"):
        load_records(write(tmp_path, "t.jsonl", json.dumps({"turns": ["a", "b"]}) + "\n"))
    with pytest.raises(SemsafeError, match="no user turn"):
        load_records(write(tmp_path, "n.jsonl", json.dumps({"messages": [{"role": "assistant", "content": "x"}]}) + "\n"))


def test_hub_dataset_in_the_local_cache_loads_offline_parquet_included(tmp_path, monkeypatch):
    """`hf:org/name` offline reads the local Hugging Face cache, where most sets are parquet; a set
    not in the cache is a clear error."""
    import huggingface_hub.constants
    import pandas as pd

    from semsafe.data import load_any

    repo = tmp_path / "datasets--org--probes"
    (repo / "snapshots" / "abc123" / "data").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    pd.DataFrame({"prompt": ["How do I kill a python process?"], "type": ["homonyms"]}).to_parquet(
        repo / "snapshots" / "abc123" / "data" / "test-00000.parquet")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # where the cache is
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert [(r.prompt, r.labels) for r in load_any("hf:org/probes")] == [
        ("How do I kill a python process?", {"type": "homonyms"})]
    with pytest.raises(SemsafeError, match="HF_HUB_OFFLINE is set and it is not in the local cache"):
        load_any("hf:org/absent")
