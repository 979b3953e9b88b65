"""Per-token view of a response: what the model predicted and how far (in EMD) from each token.

This is what `semsafe inspect` prints and what the dashboard's inspector plots.
"""

import pandas as pd
import torch

from .chat import encode_pair
from .cost import SemanticCost
from .emd import emd_and_bound_to_token, emd_lower_bound, emd_to_token
from .errors import SemsafeError
from .models import model_context_length


@torch.no_grad()
def next_token_distributions(model, tokenizer, prompt: str, response: str):
    """``(probs, response_ids)``: P(. | prompt, response_<t) for each response token t.

    probs is (T, |V|) float64 on CPU, response_ids (T,) long. The softmax is taken in float64
    because every value shown or reported is a sum over |V| ~ 50k terms: in float32 the
    probabilities alone sum to 1 ± ~1e-5 and the closed form carries that error over.
    """
    ids, n_prompt = encode_pair(tokenizer, prompt, response)
    limit = model_context_length(model)
    if len(ids) > limit:
        raise SemsafeError(
            f"prompt + response are {len(ids)} tokens but the model's context holds {limit}; "
            "shorten the text")
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], device=device)
    logits = model(input_ids=input_ids).logits[0]  # (L, |V|)
    # logits at position i predict token i+1: response tokens are ids[n_prompt:].
    pred = logits[n_prompt - 1:len(ids) - 1].double()
    return pred.softmax(-1).cpu(), input_ids[0, n_prompt:].cpu()


@torch.no_grad()
def next_token_distributions_batch(model, tokenizer, prompts: list[str], responses: list[str],
                                   batch_size: int = 16):
    """``next_token_distributions`` for many pairs, batched by length; yields
    ``(index, probs, response_ids)`` in batch order (float64 probs on CPU, as above)."""
    from .batches import batches_by_length, pad_examples, response_logits
    from .chat import build_example

    limit = model_context_length(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples = [build_example(tokenizer, p, r, ended=False) for p, r in zip(prompts, responses)]
    for i, e in enumerate(examples):
        if len(e["input_ids"]) > limit:
            raise SemsafeError(f"pair {i}: prompt + response are {len(e['input_ids'])} tokens but the "
                               f"model's context holds {limit}; shorten the text")
    for group in batches_by_length([len(e["input_ids"]) for e in examples], batch_size):
        logits, targets = response_logits(model, pad_examples([examples[j] for j in group], pad))
        for row, j in enumerate(group):
            keep = targets[row] != -100
            yield j, logits[row][keep].double().softmax(-1).cpu(), targets[row][keep].cpu()


def display_token(tokenizer, token_id: int) -> str:
    """A token as readable text: decoded, with whitespace made visible."""
    text = tokenizer.decode([int(token_id)])
    return text.replace("\n", "\\n").replace("\t", "\\t") if text.strip() else repr(text)


def inspect_response(model, tokenizer, prompt: str, response: str,
                     cost: SemanticCost | None = None, top: int = 3) -> pd.DataFrame:
    """One row per response token: its probability, EMD(P, δ_token), the lower bound, top-k.

    Columns: position, token_id, token, prob, emd, lower_bound, gap, top (list of
    {token, token_id, prob}). ``gap`` = emd - lower_bound = ½(1 - ||μ_P||²).
    """
    cost = cost or SemanticCost.from_model(model)
    probs, targets = next_token_distributions(model, tokenizer, prompt, response)
    emd, bound = emd_and_bound_to_token(probs, targets, cost)
    top_p, top_ids = probs.topk(top, dim=-1)
    rows = []
    for t, token_id in enumerate(targets.tolist()):
        rows.append({
            "position": t,
            "token_id": token_id,
            "token": display_token(tokenizer, token_id),
            "prob": probs[t, token_id].item(),
            "emd": emd[t].item(),
            "lower_bound": bound[t].item(),
            "gap": (emd[t] - bound[t]).item(),
            "top": [{"token": display_token(tokenizer, i), "token_id": i, "prob": pr}
                    for i, pr in zip(top_ids[t].tolist(), top_p[t].tolist())],
        })
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    """Human-readable fixed-width table of ``inspect_response`` output."""
    shown = pd.DataFrame({
        "pos": table["position"],
        "token": table["token"].map(lambda s: s if len(s) <= 16 else s[:15] + "…"),
        "p(token)": table["prob"].map("{:.4f}".format),
        "EMD": table["emd"].map("{:.4f}".format),
        "bound": table["lower_bound"].map("{:.4f}".format),
        "top-3 predictions": table["top"].map(
            lambda top: ", ".join(f"{d['token']} {d['prob']:.2f}" for d in top)),
    })
    summary = (f"\nmean EMD {table['emd'].mean():.4f}   mean bound {table['lower_bound'].mean():.4f}"
               f"   tokens {len(table)}")
    return shown.to_string(index=False) + summary


def inspect_before_after(model, tokenizer, prompt: str, response: str, cost: SemanticCost,
                         base_context=None, top: int = 3):
    """Per-token view of a (harmful) response under the base model and, when ``base_context``
    is given (a PeftModel's ``disable_adapter``), under the trained model too.

    Returns ``(table, p_base, p_run, targets)``. Columns: position, token, token_id,
    emd_base, lb_base (= LB(P_base, δ_token)), top_base; with a run also emd_run and
    lb_run_vs_base (= LB(P_run, P_base), the `emd_lb` objective's quantity), top_run.
    """
    if base_context is not None:
        with base_context():
            p_base, targets = next_token_distributions(model, tokenizer, prompt, response)
        p_run, _ = next_token_distributions(model, tokenizer, prompt, response)
    else:
        p_base, targets = next_token_distributions(model, tokenizer, prompt, response)
        p_run = None

    def tops(p):
        vals, idx = p.topk(top, dim=-1)
        return [", ".join(f"{display_token(tokenizer, i)} {v:.2f}" for i, v in zip(ii.tolist(), vv.tolist()))
                for ii, vv in zip(idx, vals)]

    table = pd.DataFrame({
        "position": range(len(targets)), "token_id": targets.tolist(),
        "token": [display_token(tokenizer, t) for t in targets.tolist()],
        "emd_base": emd_to_token(p_base, targets, cost).numpy(),
        "lb_base": emd_lower_bound(p_base, targets, cost).numpy(),
        "top_base": tops(p_base)})
    if p_run is not None:
        table["emd_run"] = emd_to_token(p_run, targets, cost).numpy()
        table["lb_run_vs_base"] = emd_lower_bound(p_run, p_base, cost).numpy()
        table["top_run"] = tops(p_run)
    return table, p_base, p_run, targets
