"""No evaluation prompt is a training prompt, for every run the experiment plans and for the
default config at every training seed (the split depends on data.split_seed only)."""

import pytest

from semsafe.cli import build_parser
from semsafe.config import config_from_dict, load_config
from semsafe.data import normalise_prompt
from semsafe.evaluate import suite_prompts
from semsafe.experiment import eval_config, plan
from semsafe.prepare import split_sets
from semsafe.prepare import prepare_config_for

SUITES = ("harmful", "overalign", "fluency", "capability")


def evaluation_texts(split_seed: int) -> set[str]:
    ecfg = eval_config(eval_prompts=None, max_new_tokens=8, split_seed=split_seed)
    return {normalise_prompt(r.prompt) for suite in SUITES for r in suite_prompts(suite, ecfg)}


def training_pool(cfg) -> set[str]:
    train_h, _, train_r, _ = split_sets(prepare_config_for(cfg))
    return {normalise_prompt(r.prompt) for r in train_h + train_r}


def test_every_planned_experiment_run_is_leak_free():
    defaults = build_parser().parse_args(["experiment", "data-efficiency"])
    _, pcfg, runs = plan(defaults.objectives.split(","), [int(x) for x in defaults.sizes.split(",")],
                         [int(x) for x in defaults.seeds.split(",")], steps=defaults.steps)
    assert len(runs) >= 5 * 3 * 2
    held_out = evaluation_texts(pcfg.seed)
    pool = {normalise_prompt(r.prompt) for part in split_sets(pcfg)[::2] for r in part}
    assert pool and held_out and not (pool & held_out)
    for name, values in runs:
        cfg = config_from_dict(values)
        assert cfg.data.split_seed == pcfg.seed, name
        overlap = training_pool(cfg) & evaluation_texts(cfg.data.split_seed)
        assert not overlap, f"{name}: {sorted(overlap)[:3]}"


@pytest.mark.parametrize("train_seed", [0, 1, 2])
def test_training_seed_does_not_move_the_split(train_seed):
    cfg = load_config("configs/tasft-emd.yaml", [f"train.seed={train_seed}"])
    assert prepare_config_for(cfg).seed == cfg.data.split_seed == 0
    assert not (training_pool(cfg) & evaluation_texts(cfg.data.split_seed))


def test_the_experiment_compares_objectives_at_equal_strength():
    base, _, runs = plan(["emd", "ga"], [10], [0], steps=4)
    assert base["lambda_mode"] == "ratio" and all(v["lambda_mode"] == "ratio" for _, v in runs)
