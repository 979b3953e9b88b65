"""No evaluation prompt is a training prompt, for every run the experiment plans and for the
default config at every training seed (the split depends on data.split_seed only)."""

import pytest

from semsafe.cli import build_parser
from semsafe.config import config_from_dict, load_config
from semsafe.data import normalise_prompt
from semsafe.evaluate import suite_prompts
from semsafe.experiment import PRESETS, Design, eval_config, plan
from semsafe.prepare import split_sets
from semsafe.prepare import prepare_config_for

SUITES = ("harmful", "overalign", "fluency", "capability")


def evaluation_texts(split_seed: int) -> set[str]:
    """Every prompt any preset evaluates on (all of each suite, HarmBench added)."""
    ecfg = eval_config(Design(suites=list(SUITES), suite_n={}, eval_prompts=None), split_seed)
    texts = {normalise_prompt(r.prompt) for suite in SUITES for r in suite_prompts(suite, ecfg)}
    assert any(r.source == "harmbench" for r in suite_prompts("harmful", ecfg))
    return texts


def training_pool(cfg) -> set[str]:
    train_h, _, train_r, _ = split_sets(prepare_config_for(cfg))
    return {normalise_prompt(r.prompt) for r in train_h + train_r}


def test_every_planned_experiment_run_is_leak_free():
    defaults = build_parser().parse_args(["experiment", "data-efficiency"])
    assert defaults.preset == "cpu"
    _, pcfg, runs = plan(PRESETS["gpu"])
    # 5 objectives that train on the harmful set x 3 sizes x 3 seeds, sft once per seed
    assert len(runs) == 5 * 3 * 3 + 3 and {tuple(sizes) for *_, sizes in runs} == {(10,), (30,), (100,), (10, 30, 100)}
    held_out = evaluation_texts(pcfg.seed)
    pool = {normalise_prompt(r.prompt) for part in split_sets(pcfg)[::2] for r in part}
    assert pool and held_out and not (pool & held_out)
    pools = {}  # runs that share prepare settings share a training pool: each is checked once
    for name, values, _ in runs:
        cfg = config_from_dict(values)
        assert cfg.data.split_seed == pcfg.seed, name
        key = prepare_config_for(cfg).key()
        if key not in pools:
            pools[key] = training_pool(cfg)
        overlap = pools[key] & held_out
        assert not overlap, f"{name}: {sorted(overlap)[:3]}"


@pytest.mark.parametrize("train_seed", [0, 1, 2])
def test_training_seed_does_not_move_the_split(train_seed):
    cfg = load_config("configs/tasft-emd.yaml", [f"train.seed={train_seed}"])
    assert prepare_config_for(cfg).seed == cfg.data.split_seed == 0
    assert not (training_pool(cfg) & evaluation_texts(cfg.data.split_seed))


def test_the_experiment_compares_objectives_at_equal_strength():
    base, _, runs = plan(Design(objectives=["emd", "ga"], sizes=[10], seeds=[0], steps=4))
    assert base["lambda_mode"] == "ratio" and all(v["lambda_mode"] == "ratio" for _, v, _ in runs)


def test_the_cpu_preset_meets_the_decisive_design():
    from semsafe.evaluate import suite_prompts

    design = PRESETS["cpu"]
    assert set(design.objectives) == {"sft", "ga", "npo", "emd", "emd_lb", "refusal_sft"}
    assert design.sizes == [10, 30, 100] and len(design.seeds) >= 2 and len(PRESETS["gpu"].seeds) >= 3
    ecfg = eval_config(design, 0)
    harmful = suite_prompts("harmful", ecfg)
    probes = suite_prompts("overalign", ecfg)
    assert len(harmful) >= 100 and {r.source for r in harmful} == {"advbench", "harmbench"}
    assert sum(r.labels["type"] == "safe" for r in probes) >= 150
    assert sum(r.labels["type"] == "unsafe" for r in probes) >= 50
    assert len(suite_prompts("fluency", ecfg)) >= 50


def test_a_set_the_model_trained_on_is_refused_as_extra_held_out_prompts(tmp_path):
    import json

    from semsafe.errors import SemsafeError
    from semsafe.evaluate import EvalConfig

    (tmp_path / "harmful_heldout.jsonl").write_text('{"id": "a", "prompt": "x"}\n')
    (tmp_path / "meta.json").write_text(json.dumps({"config": {"harmful": "harmbench"}}))
    with pytest.raises(SemsafeError, match="not held out"):
        suite_prompts("harmful", EvalConfig(extra_harmful=["harmbench"]), prepared=str(tmp_path))
