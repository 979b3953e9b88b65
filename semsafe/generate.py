"""Batched generation of chat answers: left padding, KV cache, a progress bar."""

import torch
from tqdm.auto import tqdm

from .chat import prompt_ids
from .prefix import cache_argument, cache_for_rows, shared_prefix


class Answer(str):
    """A generated answer; ``ended`` is False when generation stopped at ``max_new_tokens``
    rather than at an end-of-turn token (training must not teach the model to stop there)."""

    ended: bool = True

    def __new__(cls, text: str, ended: bool = True):
        obj = super().__new__(cls, text)
        obj.ended = ended
        return obj


def inferred_ended(tokenizer, text: str, max_new_tokens: int) -> bool:
    """Did the model end ``text`` itself, for an answer stored without that fact? Decoding,
    stripping and re-encoding an answer moves its length by up to two tokens (measured on the
    challenge set's 48- and 32-token answers: 47-50 and 30-33), so an answer within two tokens
    of the limit counts as cut."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) < max_new_tokens - 2


def stop_token_ids(model, tokenizer) -> set[int]:
    """Every token id that ends a turn for this model (the tokenizer's EOS and the generation
    config's, which for chat models is often the end-of-turn marker)."""
    ids = set()
    for value in (tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    return ids


FIRST_SEGMENT = 2  # new tokens before greedy decoding first drops the rows that ended


def ends_turn(tokens: list[int], stops: set[int]) -> bool:
    """Did the model end its turn within ``tokens``?"""
    return not stops.isdisjoint(tokens)


def new_tokens(model, input_ids, attention, kwargs: dict, max_new_tokens: int, stops: set[int],
               first_segment: int, on_logits=None) -> list[list[int]]:
    """Each row's generated tokens (pad tokens after an end of turn included, as ``generate``
    gives them). ``generate`` runs in segments of ``first_segment``, then twice as many new
    tokens each time; between segments the rows that ended leave the batch and its KV cache
    (``kwargs`` holds the cache), so a batch stops paying for answers that already ended (a
    trained model's often end after 1-3 tokens). Only greedy decoding is split: a row's greedy
    tokens do not depend on the other rows, while sampling draws from one random stream.

    ``on_logits(rows, logits)``, if given, sees each step's next-token logits as the model
    returned them (before any logits processor), (len(rows), |V|), ``rows`` being positions in
    ``input_ids``."""
    cache = kwargs[cache_argument(model)]
    rows, new = list(range(len(input_ids))), [[] for _ in range(len(input_ids))]
    done, segment = 0, first_segment
    while True:
        step = min(segment, max_new_tokens - done)
        hook = None if on_logits is None else model.register_forward_hook(
            lambda _module, _args, output, live=rows: on_logits(live, output.logits[:, -1]))
        try:
            out = model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=step, **kwargs)
        finally:
            if hook is not None:
                hook.remove()
        tokens = out[:, input_ids.shape[1]:].tolist()
        for row, row_tokens in zip(rows, tokens):
            new[row].extend(row_tokens)
        done, segment = done + step, segment * 2
        live = [j for j, row_tokens in enumerate(tokens) if not ends_turn(row_tokens, stops)]
        if done >= max_new_tokens or not live:
            return new
        if len(live) < len(rows):
            keep = torch.tensor(live, device=out.device)
            out, attention = out[keep], attention[keep]
            cache.batch_select_indices(keep)
            rows = [rows[j] for j in live]
        input_ids = out
        attention = torch.cat([attention, attention.new_ones((len(rows), len(tokens[0])))], dim=1)


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: list[str], max_new_tokens: int = 64,
                     batch_size: int = 16, do_sample: bool = False, temperature: float = 1.0,
                     top_p: float = 1.0, seed: int = 0, progress: bool = True,
                     on_batch=None, on_logits=None) -> list[Answer]:
    """The model's answer to each prompt (chat template applied), in order.

    Prompts are sorted by length so each batch pads little, then put back in order.
    ``on_batch(indices, answers)`` is called after each batch (used to save work as it goes);
    ``on_logits(indices, logits)`` at each step with its raw next-token logits, one row per
    prompt still answering (used to score greedy answers from their own generation).
    Greedy by default; sampling is seeded so runs repeat. Each answer is an ``Answer`` (a str)
    that says whether the model ended it or the token limit cut it.

    The prompts' shared leading tokens (the chat template's) are run once and their KV cache
    copied to each batch (semsafe/prefix.py): a batch is laid out as ``[shared prefix | left
    padding | rest of the prompt]``, so position ids (from the attention mask) and every
    unmasked key are those of the plain left-padded layout.
    """
    device = next(model.parameters()).device
    encoded = [prompt_ids(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = stop_token_ids(model, tokenizer)
    answers: list[Answer | None] = [None] * len(prompts)
    generator_seed = torch.Generator().manual_seed(seed)
    shared, prefix_cache = shared_prefix(model, encoded)
    bar = tqdm(total=len(prompts), desc="generating", unit="prompt", disable=not progress)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = shared + max(len(encoded[i]) - shared for i in idx)
        input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
        attention = torch.zeros((len(idx), width), dtype=torch.long)
        input_ids[:, :shared], attention[:, :shared] = torch.tensor(encoded[idx[0]][:shared]), 1
        for row, i in enumerate(idx):  # left padding of the rest: every prompt ends where generation starts
            input_ids[row, width - len(encoded[i]) + shared:] = torch.tensor(encoded[i][shared:])
            attention[row, width - len(encoded[i]) + shared:] = 1
        kwargs = dict(do_sample=do_sample, pad_token_id=pad, use_cache=True)
        kwargs.update(cache_for_rows(model, prefix_cache, len(idx), grow=True))
        if do_sample:
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator_seed)))
            kwargs.update(temperature=temperature, top_p=top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        new = new_tokens(model, input_ids.to(device), attention.to(device), kwargs, max_new_tokens, stops,
                         first_segment=max_new_tokens if do_sample else FIRST_SEGMENT,
                         on_logits=None if on_logits is None else
                         lambda rows, logits, idx=idx: on_logits([idx[r] for r in rows], logits))
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        ended = [ends_turn(row, stops) for row in new]
        batch_answers = [Answer(t.strip(), e) for t, e in zip(texts, ended)]
        for i, text in zip(idx, batch_answers):
            answers[i] = text
        if on_batch is not None:
            on_batch(idx, batch_answers)
        bar.update(len(idx))
    bar.close()
    return answers
