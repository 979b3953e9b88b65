"""Two processes (gloo, CPU) training `emd` through DistributedDataParallel give the same loss
and gradients as one process on the same global batch."""

import os

import pytest
import torch
import torch.multiprocessing as mp

from semsafe.data import Record
from tolerance import sum_tolerance

RETAIN = [Record(f"r{i}", f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.") for i in range(4)]
HARMFUL = [Record(f"h{i}", f"Harmful request number {i}?", f"Sure, here is bad thing {i}.") for i in range(4)]


def build():
    from peft import LoraConfig, get_peft_model

    from semsafe.batches import PairedDataset, make_collator
    from semsafe.cost import SemanticCost
    from semsafe.models import tiny_random_model

    torch.manual_seed(0)
    model, tok = tiny_random_model(seed=7)
    model = model.double()
    cost = SemanticCost.from_model(model)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                             target_modules=["q_proj", "v_proj"], init_lora_weights=False)).double()
    data = PairedDataset(tok, RETAIN, HARMFUL, 1, 64)
    collate = make_collator(tok.pad_token_id)
    return model, cost, [data[i] for i in range(4)], collate


def loss_and_grads(model, cost, items, collate, way="plain"):
    """``way``: "plain" (one backward of the loss) or "measured" (a step that measures each
    term's gradient norm and updates with them: train.KnownGradient)."""
    from semsafe.objectives import ObjectiveContext, get_objective
    from semsafe.train import TASFTTrainer, known_gradient_loss

    batch = collate(items)
    ctx = ObjectiveContext(cost=cost, lam=0.5)
    if way == "plain":
        loss, _ = get_objective("emd")(model, batch, ctx)
    else:
        ce, h, _ = get_objective("emd").terms(model, batch, ctx, stacked=False)  # two forwards, as the trainer
        _, params, grads = TASFTTrainer._grad_norms(model, ce, h)
        loss = known_gradient_loss(ce, h, ctx.lam, params, grads)
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in model.parameters() if p.requires_grad]


def worker(rank, world, init_file, out_file, way="plain"):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model, cost, items, collate = build()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    half = items[rank * 2:(rank + 1) * 2]  # each process: its half of the global batch
    loss, grads = loss_and_grads(ddp, cost, half, collate, way)
    losses = [torch.zeros_like(loss) for _ in range(world)]
    torch.distributed.all_gather(losses, loss)
    if rank == 0:
        torch.save({"loss": torch.stack(losses).mean(), "grads": grads}, out_file)
    # leave together, and leave at once: a worker whose interpreter tears down DDP's reducer and
    # gloo's threads in its own order can abort on exit ("terminate called without an active
    # exception", in about a third of runs here, with or without a barrier). Everything this
    # worker made is on disk, so it exits without that teardown; spawn checks the exit code.
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    os._exit(0)


@pytest.mark.parametrize("way", ["plain", "measured"])
def test_two_gloo_processes_match_one_process(tmp_path, way):
    """Also for a step that measures the gradient norms: its gradients reach the parameters
    through train.KnownGradient, whose hooks DDP must still average."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = tmp_path / "ddp.pt"
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(out), way), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    model, cost, items, collate = build()
    for part in ("retain", "harmful"):  # equal token counts per half (what makes the means agree)
        counts = [int((collate(items[i:i + 2])[part]["labels"] != -100).sum()) for i in (0, 2)]
        assert counts[0] == counts[1], (part, counts)
    # the objective averages over tokens: the two halves hold equally many tokens, so the mean
    # of the per-process losses is the global batch's loss
    single_loss, single_grads = loss_and_grads(model, cost, items, collate)
    tol = sum_tolerance(torch.float64, cost.vocab_size, magnitude=4.0)
    assert abs(float(ddp["loss"]) - float(single_loss)) <= tol
    # each gradient sums over every labelled token and the vocabulary (softmax, cost), then DDP
    # averages two halves: the float64 bound for that many terms of the gradient's size; and the
    # chat template's tokens every row shares run once per batch (prefix.logits_at), so their
    # gradient is summed over the rows before the model's RMSNorm, which computes in float32,
    # rounds it: the float32 bound for a sum over the batch's tokens
    n_terms = cost.vocab_size * sum(int((collate(items)[p]["labels"] != -100).sum()) for p in ("retain", "harmful"))
    tokens = sum(int(collate(items)[p]["attention_mask"].sum()) for p in ("retain", "harmful"))
    for g_ddp, g_one in zip(ddp["grads"], single_grads):
        size = 2 * float(g_one.abs().max())
        gtol = max(sum_tolerance(torch.float64, n_terms, size), sum_tolerance(torch.float32, tokens, size))
        assert torch.allclose(g_ddp, g_one, rtol=0, atol=gtol)


def test_shipped_accelerate_configs_parse():
    from pathlib import Path

    from accelerate.commands.config.config_args import load_config_from_file

    root = Path(__file__).resolve().parents[1] / "configs" / "accelerate"
    ddp = load_config_from_file(str(root / "ddp.yaml"))
    fsdp = load_config_from_file(str(root / "fsdp.yaml"))
    assert ddp.distributed_type.value == "MULTI_GPU" and fsdp.distributed_type.value == "FSDP"
    assert fsdp.fsdp_config["fsdp_use_orig_params"] is True
