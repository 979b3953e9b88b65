"""Training objectives: TA-SFT (`emd`, `emd_lb`) and the baselines, one small class each.

Every step sees a batch ``{"retain": ..., "harmful": ...}`` (and ``"refusal"`` for
`refusal_sft`); each part holds ``input_ids``, ``attention_mask`` and ``labels`` with -100 on
prompt and padding positions. Every objective is L = CE(retain) + λ · H, and each class only
says what its harmful-set term H is (``harmful_term``): keeping the two terms apart lets the
trainer measure each one's gradient norm and calibrate λ to a ratio of them. Calling an
objective returns ``(loss, logs)``. Math: docs/method.md.
"""

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .cost import SemanticCost
from .emd import emd_lower_bound, emd_to_token
from .errors import SemsafeError
from .fused import emd_to_token_from_logits, lower_bound_to_token_from_logits
from .prefix import logits_at


@dataclass
class ObjectiveContext:
    cost: SemanticCost
    lam: float = 1.0  # weight of the harmful-set term
    token_weighting: str = "all"  # "all" or "first:N" (only the first N answer tokens)
    npo_beta: float = 0.1
    lb_target: str = "token"  # emd_lb: "token" (one-hot harmful token) or "reference" (frozen base)
    fused: bool = True  # the fused, chunked EMD terms (semsafe/fused.py); False: the plain reference
    # a context manager under which the model is the frozen reference (adapters disabled)
    reference: object = None


# --- shared pieces -------------------------------------------------------------------------

def upcast(x: torch.Tensor) -> torch.Tensor:
    """At least float32 for losses (bf16 logits are upcast; float64 stays float64)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def causal_lm_terms(model, part):
    """(logits at positions that predict a label (N, |V|), those labels (N,), row of each (N,)).

    Only those positions go through the output layer, and the chat template's tokens that every
    row shares run once (``prefix.logits_at``): prompt and padding positions are about half of a
    training batch."""
    labels = part["labels"][:, 1:]
    mask = labels != -100
    rows = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(labels)[mask]
    keep = F.pad(mask, (0, 1))  # position t predicts label t + 1
    logits = logits_at(model, part["input_ids"], part["attention_mask"], keep)
    return logits, labels[mask], rows


def plain_causal_lm_terms(model, part):
    """``causal_lm_terms`` the plain way, the reference the tests and bench/answer_logits.py
    compare it with: every row in full, logits at every position, then the labelled ones."""
    logits = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
    labels = part["labels"][:, 1:]
    mask = labels != -100
    rows = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(labels)[mask]
    return logits[:, :-1][mask], labels[mask], rows


def causal_lm_terms_of_parts(model, parts: list) -> list:
    """``causal_lm_terms`` of several batch parts (retain, harmful, ...) from one forward over
    their rows stacked, each part right-padded to the longest: a training step runs the model
    once, not once a part (and the chat template's shared prefix once for all rows). Rows do not
    interact, so each part gets its own values to float rounding. It halves the operations a step
    issues (bench/answer_logits.py), which is what a small model's step costs on a GPU."""
    if len(parts) == 1:
        return [causal_lm_terms(model, parts[0])]
    width = max(part["input_ids"].shape[1] for part in parts)

    def stack(key, fill):
        return torch.cat([F.pad(part[key], (0, width - part[key].shape[1]), value=fill) for part in parts])

    logits, labels, rows = causal_lm_terms(model, {"input_ids": stack("input_ids", 0),
                                                   "attention_mask": stack("attention_mask", 0),
                                                   "labels": stack("labels", -100)})
    # the kept positions are in row order, so each part's are one run of them, found from the
    # rows themselves: split, not masked, gives views, and its backward is one concatenation
    # instead of a zero-filled (N, |V|) gradient per part
    firsts = [0, *itertools.accumulate(part["input_ids"].shape[0] for part in parts)]
    bounds = torch.searchsorted(rows, torch.tensor(firsts, device=rows.device)).tolist()
    counts = [end - start for start, end in zip(bounds, bounds[1:])]
    return [(lg, lb, r - first) for lg, lb, r, first in
            zip(logits.split(counts), labels.split(counts), rows.split(counts), firsts)]


def plain_causal_lm_terms_of_parts(model, parts: list) -> list:
    """The reference for ``causal_lm_terms_of_parts``: each part in its own plain forward."""
    return [plain_causal_lm_terms(model, part) for part in parts]


def token_weights(labels_part, rows, scheme: str) -> torch.Tensor:
    """Weight of each answer token in the harmful term (normalised to sum to 1)."""
    n = rows.shape[0]
    if scheme == "all":
        w = torch.ones(n, device=rows.device)
    elif scheme.startswith("first:"):
        k = int(scheme.split(":", 1)[1])
        # position of each token within its own answer: count of earlier tokens of the same row
        first = torch.ones(n, dtype=torch.bool, device=rows.device)
        first[1:] = rows[1:] != rows[:-1]
        start = torch.cummax(torch.where(first, torch.arange(n, device=rows.device), 0), 0).values
        w = ((torch.arange(n, device=rows.device) - start) < k).float()
    else:
        raise SemsafeError(f"unknown token weighting {scheme!r}; use 'all' or 'first:N'")
    return w / w.sum().clamp_min(1.0)


def harmful_emd(logits, labels, ctx) -> torch.Tensor:
    """Per-token exact EMD from the model's next-token distribution to the harmful token: the
    fused computation when it will be differentiated, the plain one when only measured."""
    if ctx.fused and torch.is_grad_enabled() and logits.requires_grad:
        return emd_to_token_from_logits(logits, labels, ctx.cost)
    return emd_to_token(upcast(logits).softmax(-1), labels, ctx.cost)


def reference_terms(model, part, ctx):
    """``causal_lm_terms`` under the frozen reference (the model with its adapters disabled)."""
    if ctx.reference is None:
        raise SemsafeError("this objective needs a reference model: train with LoRA (lora.enabled: true)")
    with torch.no_grad(), ctx.reference():
        logits, labels, rows = causal_lm_terms(model, part)
    return upcast(logits), labels, rows


def sequence_logprob(logits, labels, rows, n_rows):
    tok = -F.cross_entropy(upcast(logits), labels, reduction="none")
    return torch.zeros(n_rows, device=tok.device, dtype=tok.dtype).index_add(0, rows, tok)


# --- the objectives ------------------------------------------------------------------------

class Objective:
    name = ""
    uses_harmful = True  # needs a non-empty harmful set
    term_log = None  # the name under which the harmful term is logged (its training curve)
    extra_parts: tuple = ()  # batch parts besides retain and harmful
    term_part: str | None = "harmful"  # the part whose logits the harmful term differentiates

    def needs_reference(self, ctx: ObjectiveContext) -> bool:
        """Whether the objective compares with the frozen base model (needs LoRA)."""
        return False

    def harmful_term(self, forward, model, batch, ctx):
        """``(H, logs)``: the term λ multiplies in L = CE(retain) + λ·H (None: no such term).
        ``forward``: ``(logits, labels, rows)`` of the part ``term_part``, from the step's forward."""
        return None, {}

    def terms(self, model, batch, ctx, stacked: bool = True):
        """``(CE(retain), H or None, logs)``, kept apart for per-term gradient norms. The retain
        part and ``term_part`` go through the model in one forward; ``stacked=False`` gives each
        its own, for a step that differentiates each term on its own (its gradient norm): over
        a stacked forward each term's backward would run through the other part's rows too."""
        names = ["retain"] + ([self.term_part] if self.term_part else [])
        parts = [batch[name] for name in names]
        forwards = causal_lm_terms_of_parts(model, parts) if stacked else [causal_lm_terms(model, p) for p in parts]
        logits, labels, _ = forwards[0]
        ce = F.cross_entropy(upcast(logits), labels)
        h, logs = self.harmful_term(forwards[-1] if self.term_part else None, model, batch, ctx)
        return ce, h, {"ce_retain": ce.detach(), **logs}

    def __call__(self, model, batch, ctx: ObjectiveContext):
        ce, h, logs = self.terms(model, batch, ctx)
        return (ce if h is None else ce + ctx.lam * h), logs


class SFT(Objective):
    """Plain SFT on the retain set (λ has no effect). The harmful batch is only measured."""
    name, uses_harmful, term_part = "sft", False, None


class EMD(Objective):
    """H = −mean_t EMD(P_θ(·|x, y_<t), δ(y_t)) over harmful answers (exact, closed form)."""
    name, term_log = "emd", "emd_harmful"

    def harmful_term(self, forward, model, batch, ctx):
        logits, labels, rows = forward
        penalty = (harmful_emd(logits, labels, ctx) * token_weights(labels, rows, ctx.token_weighting)).sum()
        return -penalty, {"emd_harmful": penalty.detach()}


class EMDLowerBound(Objective):
    """H = −mean_t LB(P_θ, target), LB = ½||μ_P − μ_target||² <= EMD.

    ``lb_target: token`` (default): the target is the harmful token, LB = ½||μ_P − ê_y||²,
    whose gradient points μ_P away from ê_y from the first step. ``lb_target: reference``: the
    frozen base model on the harmful prefix; LB and its gradient are 0 at the start and the
    term amplifies whatever drift the retain term causes, in no preferred direction
    (docs/method.md) — kept as an option for comparison."""
    name, term_log = "emd_lb", "lb_harmful"

    def needs_reference(self, ctx):
        return ctx.lb_target == "reference"

    def harmful_term(self, forward, model, batch, ctx):
        if ctx.lb_target not in ("token", "reference"):
            raise SemsafeError(f"options.lb_target must be 'token' or 'reference', not {ctx.lb_target!r}")
        logits, labels, rows = forward
        w = token_weights(labels, rows, ctx.token_weighting)
        if ctx.lb_target == "token" and ctx.fused:
            bound = (lower_bound_to_token_from_logits(logits, labels, ctx.cost) * w).sum()
        else:
            p = upcast(logits).softmax(-1)
            target = labels if ctx.lb_target == "token" else reference_terms(model, batch["harmful"], ctx)[0].softmax(-1)
            bound = (emd_lower_bound(p, target, ctx.cost) * w).sum()
        with torch.no_grad():
            emd = (harmful_emd(logits, labels, ctx) * w).sum()
        return -bound, {"lb_harmful": bound.detach(), "emd_harmful": emd}


class GradientAscent(Objective):
    """H = −NLL(harmful): unbounded below (NLL → ∞), the usual way such training collapses."""
    name, term_log = "ga", "nll_harmful"

    def harmful_term(self, forward, model, batch, ctx):
        logits, labels, rows = forward
        w = token_weights(labels, rows, ctx.token_weighting)
        nll = (F.cross_entropy(upcast(logits), labels, reduction="none") * w).sum()
        with torch.no_grad():
            emd = (harmful_emd(logits, labels, ctx) * w).sum()
        return -nll, {"nll_harmful": nll.detach(), "emd_harmful": emd}


class Unlikelihood(Objective):
    """H = mean_t −log(1 − p(y_t)): push down the harmful token's probability."""
    name, term_log = "unlikelihood", "unlikelihood"

    def harmful_term(self, forward, model, batch, ctx):
        logits, labels, rows = forward
        w = token_weights(labels, rows, ctx.token_weighting)
        logp = upcast(logits).log_softmax(-1).gather(1, labels[:, None]).squeeze(1)
        # log(1 - p) = log(-expm1(log p)), clamped so p -> 1 stays finite
        ul = (-torch.log(-torch.expm1(logp.clamp(max=-1e-6))) * w).sum()
        with torch.no_grad():
            emd = (harmful_emd(logits, labels, ctx) * w).sum()
        return ul, {"unlikelihood": ul.detach(), "emd_harmful": emd}


class NPO(Objective):
    """H = (2/β) · mean log(1 + (π_θ(y|x) / π_ref(y|x))^β), per harmful answer; the reference
    is the same model with its LoRA adapters disabled (no second copy)."""
    name, term_log = "npo", "npo"

    def needs_reference(self, ctx):
        return True

    def harmful_term(self, forward, model, batch, ctx):
        part = batch["harmful"]
        n = part["input_ids"].shape[0]
        ref_logits, labels, rows = reference_terms(model, part, ctx)
        ref_lp = sequence_logprob(ref_logits, labels, rows, n)
        logits, labels, rows = forward
        log_ratio = sequence_logprob(logits, labels, rows, n) - ref_lp
        npo = (-2.0 / ctx.npo_beta * F.logsigmoid(-ctx.npo_beta * log_ratio)).mean()
        with torch.no_grad():
            emd = (harmful_emd(logits, labels, ctx) * token_weights(labels, rows, ctx.token_weighting)).sum()
        return npo, {"npo": npo.detach(), "emd_harmful": emd}


class RefusalSFT(Objective):
    """H = CE(harmful prompts answered with the project's refusals)."""
    name, extra_parts, term_log, term_part = "refusal_sft", ("refusal",), "ce_refusal", "refusal"

    def harmful_term(self, forward, model, batch, ctx):
        logits, labels, _ = forward
        ce_ref = F.cross_entropy(upcast(logits), labels)
        return ce_ref, {"ce_refusal": ce_ref.detach()}


OBJECTIVES = {cls.name: cls for cls in (SFT, EMD, EMDLowerBound, GradientAscent, Unlikelihood, NPO, RefusalSFT)}


def get_objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name]()
    except KeyError:
        raise SemsafeError(f"unknown objective {name!r}; choose one of: {', '.join(OBJECTIVES)}") from None


@torch.no_grad()
def measure_harmful_emd(model, part, ctx) -> torch.Tensor:
    """Mean exact EMD to the harmful tokens under the current model (for logging any objective)."""
    logits, labels, rows = causal_lm_terms(model, part)
    return (harmful_emd(logits, labels, ctx) * token_weights(labels, rows, ctx.token_weighting)).sum()
