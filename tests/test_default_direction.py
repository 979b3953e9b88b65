"""The shipped default config does what it says: after training, the model's EMD to held-out
harmful answers (the quantity TA-SFT maximises) is higher than the base model's, by a paired
interval that excludes zero. Trains the real embedded model with configs/tasft-emd.yaml as
shipped (about 5 minutes on 2 cores)."""

from pathlib import Path

from semsafe.compare import paired_deltas
from semsafe.config import load_config
from semsafe.evaluate import EvalConfig, evaluate, load_subject
from semsafe.runs import Run
from semsafe.train import train_run

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tasft-emd.yaml"


def test_shipped_default_raises_emd_to_heldout_harmful_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSAFE_RUNS", str(tmp_path / "runs"))
    cfg = load_config(str(CONFIG))
    assert cfg.objective == "emd" and cfg.lambda_mode == "ratio"
    run = train_run(cfg, Run.create(cfg.to_dict(), name="shipped-default"))
    assert run.status["state"] == "done"

    ecfg = EvalConfig(suites=["emd"], n_prompts=16, max_new_tokens=32)
    evaluate(load_subject(run_id=run.id, cfg=ecfg), ecfg, progress=False)
    base = load_subject(model_spec=cfg.model, cfg=ecfg)
    evaluate(base, ecfg, progress=False)
    base_ref = f"base:{cfg.model}"
    d = paired_deltas([base_ref, run.id], {base_ref: base.out_dir, run.id: run.path / "eval"})
    delta = d[("emd", "emd_to_harmful", run.id)]
    assert delta["n"] >= 12
    assert delta["delta"] > 0 and delta["low"] > 0, delta
