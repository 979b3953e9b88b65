"""Bad input gets one clear line (exit 2) before any model loads, and damaged files are survived."""

import contextlib
import json
import os
import subprocess
import sys

import pytest

from semsafe.data import load_records
from semsafe.errors import SemsafeError
from semsafe.evaluate import EvalConfig, Subject, evaluate

ENV = dict(os.environ, HF_HUB_OFFLINE="1")


def cli(*args: str | bytes):
    return subprocess.run([sys.executable, "-m", "semsafe.cli", *args], capture_output=True, env=ENV, timeout=300)


@pytest.mark.parametrize("args,message", [
    (["inspect", "--prompt", "x", "--response", "y", "--top", "100000"], "--top must be between 1 and 100"),
    (["eval", "--model", "tiny-random", "--n", "-1"], "--n must be at least 1"),
    (["eval", "--model", "tiny-random", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["eval", "--model", "tiny-random", "--suite-n", "overalign=0"], "write SUITE=N .* or SUITE=all"),
    (["experiment", "data-efficiency", "--suite-n", "harmful"], "write SUITE=N .* or SUITE=all"),
    (["train", "--set", "train.steps=abc"], "train.steps must be a whole number"),
    (["train", "--set", "lambda=inf"], "lambda must be a finite number"),
    (["inspect", "--prompt", b"caf\xe9", "--response", "y"], "argument 3 .* is not valid UTF-8"),
])
def test_cli_bad_input_is_one_clear_line(args, message, tmp_path):
    import re

    out = cli(*args)
    err = out.stderr.decode("utf-8", "replace")
    assert out.returncode == 2 and re.search(message, err), err[-500:]
    assert "Traceback" not in err


def test_csv_with_an_unterminated_quote_names_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('prompt,label\nfine,safe\n"How do I bake,safe\nWhat is x?,safe\n')
    with pytest.raises(SemsafeError, match=r"bad.csv:3: bad CSV .*never closed"):
        load_records(bad)
    # comment lines before the header (as pyrit's scored sets begin) are skipped, and still counted
    bad.write_text('# dataset_version=1.0\n# another note\nprompt,label\nfine,safe\n"How do I bake,safe\nWhat is x?,safe\n')
    with pytest.raises(SemsafeError, match=r"bad.csv:5: bad CSV .*never closed"):
        load_records(bad)
    bad.write_text('# dataset_version=1.0\nprompt,label\nfine,safe\n#not a comment here,unsafe\n')
    assert [(r.prompt, r.labels["label"]) for r in load_records(bad)] == [("fine", "safe"), ("#not a comment here", "unsafe")]


def test_eval_prompt_longer_than_the_context_is_refused_before_generating(tiny, tmp_path):
    model, tok = tiny
    prompts = tmp_path / "long.jsonl"
    prompts.write_text(json.dumps({"id": "long", "prompt": "word " * 3000}) + "\n")
    subject = Subject("base:tiny", model, tok, contextlib.nullcontext, tmp_path / "eval")
    cfg = EvalConfig(suites=["custom"], prompts_file=str(prompts), max_new_tokens=8)
    with pytest.raises(SemsafeError, match="exceeds the model's context of 2048"):
        evaluate(subject, cfg, progress=False)
    assert not (tmp_path / "eval" / "custom.partial.jsonl").exists()


def test_truncated_eval_settings_file_is_moved_aside_not_a_crash(tiny, tmp_path):
    model, tok = tiny
    subject = Subject("base:tiny", model, tok, contextlib.nullcontext, tmp_path / "eval")
    subject.out_dir.mkdir()
    (subject.out_dir / "eval_config.json").write_text('{"key": "ab')  # cut mid-write
    (subject.out_dir / "summary.json").write_text('{"suites": {')
    summary = evaluate(subject, EvalConfig(suites=["harmful"], n_prompts=2, max_new_tokens=4), progress=False)
    assert summary["suites"]["harmful"]["harmful_rate"]["n"] == 2
    assert (subject.out_dir / "previous-unreadable" / "summary.json").exists()  # kept, not lost


def test_command_line_and_config_checks_do_not_import_torch():
    """`semsafe --help` and argument errors must answer at once: no torch/transformers import."""
    code = ("import sys; from semsafe.cli import build_parser; from semsafe.config import load_config; "
            "build_parser(); load_config('configs/tasft-emd.yaml'); "
            "print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_run_folder_without_its_settings_says_so_instead_of_no_run(tmp_path):
    """A folder whose config.yaml is gone (creation cut short, a hand edit) is not listed as a run;
    opening it names the missing file rather than claiming there is no such run."""
    from semsafe.runs import Run, list_runs

    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "status.json").write_text("{not json")
    assert list_runs(tmp_path) == []
    with pytest.raises(SemsafeError, match=r"half has no config.yaml.*restore the file or remove the folder"):
        Run.open("half", tmp_path)
    with pytest.raises(SemsafeError, match="no run 'absent'"):
        Run.open("absent", tmp_path)
