"""Training end to end: run folders, resume after SIGKILL, cancel, bad input, the real model."""

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from semsafe.config import load_config
from semsafe.data import Record, save_records
from semsafe.errors import SemsafeError
from semsafe.runs import Run
from conftest import wait_until

ENV = dict(os.environ, HF_HUB_OFFLINE="1")
CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "tasft-emd.yaml")


@pytest.fixture
def files(tmp_path):
    harmful = [Record(f"h{i}", f"Harmful request number {i}?", f"Sure, here is how to do bad thing {i}: step one.")
               for i in range(6)]
    retain = [Record(f"r{i}", f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.") for i in range(8)]
    save_records(harmful, tmp_path / "harmful.jsonl")
    save_records(retain, tmp_path / "retain.jsonl")
    return tmp_path


def tiny_args(files, steps=4, *extra):
    return ["--set", "model=tiny-random", "--set", f"data.harmful={files / 'harmful.jsonl'}",
            "--set", f"data.retain={files / 'retain.jsonl'}", "--set", "data.prepared=null",
            "--set", f"train.steps={steps}", "--set", "train.batch_size=2", *extra]


def cli(args, runs, **kw):
    return subprocess.run([sys.executable, "-m", "semsafe.cli", *args], capture_output=True, text=True,
                          env={**ENV, "SEMSAFE_RUNS": str(runs)}, timeout=900, **kw)


def test_run_folder_is_complete_and_adapter_reloads(files, tmp_path):
    from peft import PeftModel

    from semsafe.models import tiny_random_model

    runs = tmp_path / "runs"
    out = cli(["train", "--config", CONFIG, "--run-id", "r1", *tiny_args(files, 4)], runs)
    assert out.returncode == 0, out.stderr[-2000:]
    # peft's read of a deprecated transformers property is not the user's business
    assert "is_gradient_checkpointing" not in out.stderr
    run = Run.open("r1", runs)
    assert run.status["state"] == "done" and run.status["step"] == 4
    assert run.config["objective"] == "emd" and run.config["model"] == "tiny-random"
    rows = run.metrics()
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for key in ("loss", "ce_retain", "emd_harmful", "learning_rate", "tokens_per_s"):
        assert all(key in r for r in rows), key
    base, _ = tiny_random_model()
    model = PeftModel.from_pretrained(base, run.path / "adapter")
    assert any("lora_" in n for n, _ in model.named_parameters())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.load_model()
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


def test_an_objective_that_only_measures_the_harmful_emd_logs_it_every_n_steps(files, tmp_path):
    """`sft` trains without the harmful batch and pays a forward of it to log its EMD to the
    harmful answers; `train.harmful_emd_every` spaces that out (every N steps, and the last), and
    every other term is still logged at every step."""
    runs = tmp_path / "runs"
    out = cli(["train", "--config", CONFIG, "--run-id", "s1",
               *tiny_args(files, 5, "--set", "objective=sft", "--set", "train.harmful_emd_every=3")], runs)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = Run.open("s1", runs).metrics()
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5] and all("ce_retain" in r for r in rows)
    assert [r["step"] for r in rows if "emd_harmful" in r] == [1, 4, 5]


def test_sigkilled_run_resumes_from_checkpoint_with_valid_metrics(files, tmp_path):
    runs = tmp_path / "runs"
    args = ["train", "--config", CONFIG, "--run-id", "k1",
            *tiny_args(files, 40, "--set", "train.save_steps=5")]
    proc = subprocess.Popen([sys.executable, "-m", "semsafe.cli", *args], env={**ENV, "SEMSAFE_RUNS": str(runs)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = runs / "k1" / "status.json"
    wait_until(lambda: json.loads(status.read_text()).get("step", 0) >= 12)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = Run.open("k1", runs)
    killed_at = run.status["step"]
    assert 12 <= killed_at < 40 and run.latest_checkpoint() is not None
    out = cli(["train", "--resume", "k1"], runs)
    assert out.returncode == 0, out.stderr[-2000:]
    assert run.status["state"] == "done" and run.status["step"] == 40
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]  # every line parses
    assert steps == list(range(1, 41))


def test_sigterm_cancels_and_keeps_the_adapter(files, tmp_path):
    runs = tmp_path / "runs"
    args = ["train", "--config", CONFIG, "--run-id", "c1", *tiny_args(files, 500)]
    proc = subprocess.Popen([sys.executable, "-m", "semsafe.cli", *args], env={**ENV, "SEMSAFE_RUNS": str(runs)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = runs / "c1" / "status.json"
    wait_until(lambda: json.loads(status.read_text()).get("step", 0) >= 3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    run = Run.open("c1", runs)
    assert run.status["state"] == "cancelled" and "adapter so far is saved" in run.status["message"]
    assert (run.path / "adapter" / "adapter_config.json").exists()


@pytest.mark.parametrize("override,message", [
    ("lambda=-1", "lambda must be a finite number >= 0"),
    ("objective=magic", "unknown objective 'magic'"),
    ("train.steps=0", "train.steps must be at least 1"),
    ("bogus=1", "unknown config key 'bogus'"),
    ("train.lr=fast", "train.lr must be a number"),
    ("train.steps=abc", "train.steps must be a whole number, got 'abc'"),
    ("train.steps=1.5", "train.steps must be a whole number, got 1.5"),
    ("lambda=[1,2]", r"lambda must be a number, got \[1, 2\]"),
    ("lora.r=0", "lora.r must be at least 1"),
    ("data.max_length=big", "data.max_length must be a whole number"),
    ("train.lr=nan", "train.lr must be a finite number"),
    ("lambda=inf", "lambda must be a finite number"),
    ("lambda_mode=auto", "lambda_mode must be 'fixed' or 'ratio'"),
    ("options.lb_target=centroid", "options.lb_target must be 'token' or 'reference'"),
    ("train.steps=true", "train.steps must be a whole number, got True"),
])
def test_bad_config_values(override, message):
    with pytest.raises(SemsafeError, match=message):
        load_config(CONFIG, [override])


def test_empty_harmful_set_and_mismatched_tokenizer_fail_clearly(files, tmp_path):
    from semsafe.train import train_run

    (files / "empty.jsonl").write_text('{"prompt": "p", "response": null}\n')
    runs = tmp_path / "runs"
    cfg = load_config(CONFIG, [
        "model=tiny-random", "data.prepared=null", f"data.harmful={files / 'empty.jsonl'}",
        f"data.retain={files / 'retain.jsonl'}"])
    run = Run.create(cfg.to_dict(), name="e1", root=runs)
    with pytest.raises(SemsafeError, match="needs harmful examples"):
        train_run(cfg, run)
    assert run.status["state"] == "failed" and "needs harmful examples" in run.status["message"]
    # a prepared folder made for another tokenizer
    prep = tmp_path / "prep"
    prep.mkdir()
    for name in ("harmful", "harmful_heldout", "retain", "retain_heldout"):
        (prep / f"{name}.jsonl").write_text((files / ("harmful.jsonl" if "harm" in name else "retain.jsonl")).read_text())
    (prep / "report.json").write_text(json.dumps({"tokenizer": "0123456789abcdef"}))
    cfg = load_config(CONFIG, ["model=tiny-random", f"data.prepared={prep}"])
    run = Run.create(cfg.to_dict(), name="e2", root=runs)
    with pytest.raises(SemsafeError, match="another model's tokenizer"):
        train_run(cfg, run)


def test_nan_loss_stops_with_the_step(files, tmp_path):
    from semsafe.models import tiny_random_model
    from semsafe.train import train_run

    model, tok = tiny_random_model()
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight[0, 0] = float("nan")  # a corrupted checkpoint
    cfg = load_config(CONFIG, [
        "model=tiny-random", "data.prepared=null", f"data.harmful={files / 'harmful.jsonl'}",
        f"data.retain={files / 'retain.jsonl'}", "train.steps=3"])
    run = Run.create(cfg.to_dict(), name="n1", root=tmp_path / "runs")
    with pytest.raises(SemsafeError, match="at step 1"):
        train_run(cfg, run, model_and_tokenizer=(model, tok))
    assert run.status["state"] == "failed" and "nan" in run.status["message"]
    assert (run.path / "config.yaml").exists()  # what was written stays


def test_run_ids_cannot_escape(tmp_path):
    for bad in ("../x", "a/b", "", ".."):
        with pytest.raises(SemsafeError):
            Run(bad, tmp_path)


def test_sweep_runs_every_combination(files, tmp_path, monkeypatch):
    from semsafe.sweep import run_sweep

    monkeypatch.setenv("SEMSAFE_RUNS", str(tmp_path / "runs"))
    overrides = ["model=tiny-random", "data.prepared=null", f"data.harmful={files / 'harmful.jsonl'}",
                 f"data.retain={files / 'retain.jsonl'}", "train.steps=2", "train.batch_size=2"]
    runs = run_sweep(CONFIG, overrides, ["sft", "emd"], [1, 3], [0])
    assert len(runs) == 4 and all(r.status["state"] == "done" for r in runs)
    assert sorted((r.config["objective"], r.config["data"]["n_harmful"]) for r in runs) == [
        ("emd", 1), ("emd", 3), ("sft", 1), ("sft", 3)]
    assert len({r.config["sweep"] for r in runs}) == 1


def test_short_emd_run_on_embedded_model(tmp_path):
    """A few steps of `emd` on the real model: complete run folder, adapter reloads, and the
    perplexity of the retain answers stays within 10% of the base model's."""
    from peft import PeftModel

    from semsafe.models import load_model
    from semsafe.prepare import PrepareConfig, prepare
    from semsafe.train import train_run

    prep = tmp_path / "prep"
    prepare(PrepareConfig(n_harmful=8, n_retain=8, max_new_tokens=32, batch_size=8), out_dir=prep,
            progress=False)
    cfg = load_config(CONFIG, [f"data.prepared={prep}", "train.steps=3",
                                                 "train.batch_size=2", "data.max_length=96"])
    run = Run.create(cfg.to_dict(), name="real", root=tmp_path / "runs")
    train_run(cfg, run)
    assert run.status["state"] == "done"
    rows = run.metrics()
    assert len(rows) == 3 and all(0 <= r["emd_harmful"] <= 2 for r in rows)
    from semsafe.judges.fluency import response_perplexity
    from semsafe.prepare import load_prepared

    retain = load_prepared(prep)["retain"]
    base, tok = load_model()
    prompts, answers = [r.prompt for r in retain], [r.response for r in retain]
    before = response_perplexity(base, tok, prompts, answers).mean()
    tuned = PeftModel.from_pretrained(base, run.path / "adapter")
    assert sum(p.numel() for n, p in tuned.named_parameters() if "lora_" in n) > 0
    after = response_perplexity(tuned, tok, prompts, answers).mean()
    assert after <= before * 1.10, (before, after)


def test_a_runs_adapter_starts_from_its_own_seed_whatever_ran_before_it(files, tmp_path):
    """An experiment trains its runs one after another in one process: each run's LoRA init
    must follow from its seed alone, not from the random numbers the previous run drew."""
    from semsafe.train import _build_trainer

    def first_adapter_matrix(drawn_before: int, seed: int):
        cfg = load_config(CONFIG, [f"data.harmful={files / 'harmful.jsonl'}", f"data.retain={files / 'retain.jsonl'}",
                                   "data.prepared=null", "train.batch_size=2", f"train.seed={seed}"])
        torch.rand(drawn_before)  # stands for a previous run's dropout, sampling, shuffling
        run = Run.create(cfg.to_dict(), root=tmp_path / "runs")
        trainer = _build_trainer(cfg, run)  # the real embedded model, loaded from disk each time
        return next(p for n, p in trainer.model.named_parameters() if "lora_A" in n).detach().clone()

    first = first_adapter_matrix(1, seed=0)
    assert torch.equal(first, first_adapter_matrix(1000, seed=0))
    assert not torch.equal(first, first_adapter_matrix(1, seed=1))


def test_ratio_mode_calibrates_lambda_and_logs_gradient_norms(files, tmp_path):
    runs = tmp_path / "runs"
    out = cli(["train", "--config", CONFIG, "--run-id", "cal", *tiny_args(files, 4),
               "--set", "lambda_mode=ratio", "--set", "lambda=0.5", "--set", "calibration_steps=2",
               "--set", "train.grad_norm_every=1"], runs)
    assert out.returncode == 0, out.stderr[-2000:]
    run = Run.open("cal", runs)
    rows = run.metrics()
    # at step 1 λ is set from that very batch's gradient norms, so the logged ratio is the target
    assert rows[0]["grad_ratio"] == pytest.approx(0.5, rel=1e-6)
    assert all(r["grad_norm_retain"] > 0 and r["grad_norm_harmful"] > 0 for r in rows)
    calibration = json.loads((run.path / "calibration.json").read_text())
    assert calibration["batches"] == 2 and calibration["lambda"] > 0
    # after calibration λ stays fixed at the saved value
    assert rows[-1]["lambda_effective"] == pytest.approx(calibration["lambda"])
    data = json.loads((run.path / "training_data.json").read_text())
    assert data["split_seed"] == 0 and len(data["harmful"]) == 6 and len(data["retain"]) == 8


def test_resume_of_a_live_run_is_refused_and_a_killed_run_shows_died(files, tmp_path):
    from semsafe.jobs import cancel

    runs = tmp_path / "runs"
    args = ["train", "--config", CONFIG, "--run-id", "live", *tiny_args(files, 400, "--set", "train.save_steps=2")]
    proc = subprocess.Popen([sys.executable, "-m", "semsafe.cli", *args], env={**ENV, "SEMSAFE_RUNS": str(runs)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = runs / "live" / "status.json"
    assert wait_until(lambda: json.loads(status.read_text()).get("step", 0) >= 3, timeout=240)
    run = Run.open("live", runs)
    assert run.is_live() and run.state == "running"
    second = cli(["train", "--resume", "live"], runs)
    assert second.returncode == 2 and "being trained by another process" in second.stderr
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not run.is_live() and run.state == "died"  # status still says running
    assert run.status["state"] == "running"
    listed = cli(["runs"], runs)
    assert "live\tdied" in listed.stdout and "--resume live" in listed.stdout
    # cancel never signals a pid that no longer belongs to the run
    out = cli(["cancel", "live"], runs)
    assert out.returncode == 1 and "not being trained" in out.stderr
    assert cancel(run) is False and run.status["state"] == "failed"


def test_inspect_a_run_side_by_side_with_its_base(files, tmp_path):
    runs = tmp_path / "runs"
    assert cli(["train", "--config", CONFIG, "--run-id", "ins", *tiny_args(files, 2)], runs).returncode == 0
    out = cli(["inspect", "--run", "ins", "--prompt", "Say hi", "--response", "Hello there", "--json"], runs)
    assert out.returncode == 0, out.stderr[-1000:]
    rows = json.loads(out.stdout)["tokens"]
    assert rows and {"emd_base", "emd_run", "lb_run_vs_base"} <= set(rows[0])
    missing = cli(["inspect", "--run", "nope", "--prompt", "x", "--response", "y"], runs)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr


def test_a_checkpoint_whose_trainer_state_was_cut_short_is_incomplete(tmp_path):
    """A full disk can stop the Trainer inside its last write (trainer_state.json): the file is
    there but empty or truncated, and resuming from it would crash."""
    run = Run.create({"model": "tiny-random"}, root=tmp_path)
    for step, state in ((2, '{"global_step": 2}'), (4, ""), (6, '{"global_st')):
        ckpt = run.path / "checkpoints" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text(state)
    (run.path / "checkpoints" / "checkpoint-8").mkdir()  # nothing written yet
    assert run.latest_checkpoint().name == "checkpoint-2"
    assert sorted(run.remove_incomplete_checkpoints()) == ["checkpoint-4", "checkpoint-6", "checkpoint-8"]
    assert [p.name for p in (run.path / "checkpoints").iterdir()] == ["checkpoint-2"]


def test_disk_full_fails_clearly_and_resume_continues_after_space_is_freed(files, tmp_path):
    """A real full disk: a small tmpfs (needs root to mount; CI runs as root)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        runs = mount / "runs"
        args = ["train", "--config", CONFIG, "--run-id", "full", *tiny_args(files, 40, "--set", "train.save_steps=2")]
        proc = subprocess.Popen([sys.executable, "-m", "semsafe.cli", *args], env={**ENV, "SEMSAFE_RUNS": str(runs)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        status = runs / "full" / "status.json"
        assert wait_until(lambda: json.loads(status.read_text()).get("step", 0) >= 5, timeout=300)
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        for block in (1 << 20, 4096, 1):  # take every free byte (unbuffered: nothing left to flush)
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
        os.close(fd)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err[-2000:]
        assert "disk is full" in err and "Traceback" not in err
        run = Run.open("full", runs)
        assert run.status["state"] == "failed" and "disk is full" in run.status["message"]
        leftovers = [p for p in run.path.rglob("*") if p.is_file() and (p.name.endswith(".tmp") or
                     (p.stat().st_size == 0 and p.name != ".lock"))]
        assert not leftovers, leftovers
        filler.unlink()
        out = cli(["train", "--resume", "full"], runs)
        assert out.returncode == 0, out.stderr[-2000:]
        assert run.status["state"] == "done" and run.status["step"] == 40
        steps = [r["step"] for r in run.metrics()]
        assert steps == list(range(1, 41))
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_dashboard_launch_runs_the_command_it_shows_and_queues_on_the_device(files, tmp_path):
    from semsafe.jobs import cancel, device_lock, launch_training, wait_for

    runs = tmp_path / "runs"
    overrides = {"model": "tiny-random", "data.harmful": files / "harmful.jsonl", "data.retain": files / "retain.jsonl",
                 "data.prepared": "null", "train.steps": 2, "train.batch_size": 2}
    with device_lock(root=runs):  # another job holds the device: launched runs must wait
        first = launch_training(CONFIG, overrides, root=runs)
        command = first.status["command"]
        assert command.startswith("semsafe train --config") and command.endswith(f"--run-id {first.id}")
        assert wait_until(first.is_live, timeout=120)  # its process started and holds the run
        assert first.state == "queued"
        assert cancel(first)
        status = wait_for(first, states=("cancelled", "failed"), timeout=120)
        assert status["state"] == "cancelled" and "before it started" in status["message"]
        second = launch_training(CONFIG, overrides, root=runs)
        assert wait_until(second.is_live, timeout=120)
    status = wait_for(second, timeout=600)  # the device is free: it trains
    assert status["state"] == "done", (status, (second.path / "log.txt").read_text()[-2000:])
    assert second.status["command"].endswith(f"--run-id {second.id}")


def test_a_step_that_measures_gradient_norms_updates_with_the_plain_gradient():
    """On steps that measure each term's gradient norm (calibration, every grad_norm_every),
    the update reuses ∇CE + λ∇H from those two passes (train.KnownGradient) instead of a third
    backward, and runs the batch's parts through the model apart (each term's backward then goes
    through its own part's rows only): each parameter's gradient, and the loss, must be the plain
    (stacked) backward's. float64
    model; the tiny model's RMSNorm computes in float32, and λ enters before it in the plain
    backward and after it here, so they agree to float32 rounding of a sum over the tokens."""
    from peft import LoraConfig, get_peft_model

    from semsafe.batches import PairedDataset, make_collator
    from semsafe.cost import SemanticCost
    from semsafe.models import tiny_random_model
    from semsafe.objectives import ObjectiveContext, get_objective
    from semsafe.train import TASFTTrainer, known_gradient_loss
    from tolerance import sum_tolerance

    torch.manual_seed(0)
    model, tok = tiny_random_model(seed=5)
    cost = SemanticCost.from_model(model.double())
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                             init_lora_weights=False)).double().train()
    harmful = [Record(f"h{i}", f"Harmful request number {i}?", f"Sure, here is bad thing {i}.") for i in range(2)]
    retain = [Record(f"r{i}", f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.") for i in range(2)]
    data = PairedDataset(tok, retain, harmful, 1, 64, with_refusals=True)
    batch = make_collator(tok.pad_token_id)([data[0], data[1]])
    tokens = sum(int(part["attention_mask"].sum()) for part in batch.values())
    params = [p for p in model.parameters() if p.requires_grad]
    for name in ("emd", "ga", "npo", "refusal_sft"):
        ctx = ObjectiveContext(cost=cost, lam=0.37, reference=model.disable_adapter)
        ce, h, _ = get_objective(name).terms(model, batch, ctx)
        plain = torch.autograd.grad(ce + ctx.lam * h, params)
        ce, h, _ = get_objective(name).terms(model, batch, ctx, stacked=False)  # as a measuring step runs it
        _, measured, grads = TASFTTrainer._grad_norms(model, ce, h)
        assert measured == params
        loss = known_gradient_loss(ce, h, ctx.lam, params, grads)
        assert loss.item() == pytest.approx((ce + ctx.lam * h).item(), abs=0)
        (2.0 * loss).backward()  # an upstream factor (accumulation, loss scaling) reaches every gradient
        for p, ref in zip(params, plain):
            assert (p.grad - 2.0 * ref).abs().max() <= sum_tolerance(torch.float32, tokens, 2.0 * float(ref.abs().max())), name
            p.grad = None
