"""`semsafe eval --dtype bfloat16`: a faster evaluation that is kept apart from float32's.

bfloat16 changes answers and scores (bench/eval_speed.py measures how much), so a bfloat16
evaluation must never share a folder, an answer cache or a comparison with a float32 one."""

import json

import pytest
import torch

from semsafe.errors import SemsafeError
from semsafe.evaluate import EvalConfig, answer_log, base_eval_dir, evaluate, load_subject, same_answers, setting


def test_dtype_is_checked_and_float32_keeps_the_keys_of_evaluations_made_before_it_existed():
    with pytest.raises(SemsafeError, match="float32, bfloat16"):
        EvalConfig(dtype="float16")
    plain, bf16 = EvalConfig(), EvalConfig(dtype="bfloat16")
    assert plain.key() != bf16.key()
    # an evaluation stored before the setting existed was a float32 one
    stored = {k: v for k, v in json.loads(json.dumps(plain.__dict__)).items() if k != "dtype"}
    assert setting(stored, "dtype") == "float32"
    assert same_answers(stored, plain) and not same_answers(stored, bf16)


def test_compare_flags_a_dtype_mismatch_but_not_a_config_from_before_the_setting():
    from semsafe.compare import setting_differences

    old = {"config": {"max_new_tokens": 48}}
    assert setting_differences([("a", old), ("b", {"config": {"max_new_tokens": 48, "dtype": "float32"}})]) == []
    problems = setting_differences([("a", old), ("b", {"config": {"max_new_tokens": 48, "dtype": "bfloat16"}})])
    assert problems == ["dtype: a has 'float32', b has 'bfloat16'"]


def test_bfloat16_evaluation_of_the_embedded_model(empty_cache):
    cfg = EvalConfig(suites=["harmful", "fluency", "emd"], n_prompts=2, max_new_tokens=8, n_bootstrap=50,
                     dtype="bfloat16")
    subject = load_subject("smollm2-135m-instruct", cfg=cfg)
    assert next(subject.model.parameters()).dtype == torch.bfloat16
    assert subject.out_dir == base_eval_dir("smollm2-135m-instruct", cfg) != base_eval_dir("smollm2-135m-instruct")
    # its greedy answers have a cache of their own: float32 evaluations never read them
    log = answer_log(subject, cfg, base=True)
    assert log.name.endswith("-bfloat16.jsonl") and log != answer_log(subject, EvalConfig(), base=True)
    summary = evaluate(subject, cfg, progress=False)
    assert summary["config"]["dtype"] == "bfloat16"
    assert log.exists() and len(log.read_text().splitlines()) >= 2
    assert summary["suites"]["fluency"]["ppl_generated_under_base"]["mean"] > 1
    assert summary["suites"]["emd"]["emd_to_harmful"]["mean"] >= summary["suites"]["emd"]["lower_bound"]["mean"] >= 0

    from semsafe.compare import eval_args_matching

    args = eval_args_matching(str(subject.out_dir))  # what the Compare page runs to evaluate the base model alike
    assert args[args.index("--dtype") + 1] == "bfloat16"
