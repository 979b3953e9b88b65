"""Turn (prompt, response) pairs into token ids through the model's own chat template."""

from .errors import SemsafeError


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of a one-turn chat up to where the assistant starts answering."""
    if not prompt.strip():
        raise SemsafeError("the prompt is empty; give the user message the response answers")
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    else:  # base models without a template: the plain prompt
        text = prompt
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_pair(tokenizer, prompt: str, response: str, add_eos: bool = False):
    """``(ids, n_prompt)``: prompt ids followed by response ids; response tokens start at n_prompt.

    The response is tokenized on its own and appended, so its tokens are exactly the ones a
    model would generate after the prompt (no template re-tokenisation at the seam).
    ``add_eos`` appends the end-of-turn token, as training does so the model learns to stop.
    """
    if not response.strip():
        raise SemsafeError("the response is empty; give the text whose tokens should be scored")
    head = prompt_ids(tokenizer, prompt)
    tail = tokenizer(response, add_special_tokens=False)["input_ids"]
    if add_eos and tokenizer.eos_token_id is not None:
        tail = tail + [tokenizer.eos_token_id]
    return head + tail, len(head)


def build_example(tokenizer, prompt: str, response: str, max_length: int | None = None,
                  ended: bool = True) -> dict:
    """A training example: ``input_ids`` and ``labels`` where only response tokens (and the
    closing end-of-turn token) carry loss; prompt positions are -100, which the loss ignores.

    ``ended=False`` marks a response that was cut (a generation that hit its token limit): it
    gets no end-of-turn token, so training neither teaches stopping mid-sentence (retain) nor
    penalises stopping (harmful).

    Sequences longer than ``max_length`` are cut at the end of the response; an example whose
    prompt alone fills ``max_length`` cannot carry any loss and is an error.
    """
    ids, n_prompt = encode_pair(tokenizer, prompt, response, add_eos=ended)
    if max_length is not None and len(ids) > max_length:
        if n_prompt >= max_length:
            raise SemsafeError(
                f"the prompt is {n_prompt} tokens, at least max_length={max_length}: no response "
                "token would remain; raise max_length or shorten the prompt")
        ids = ids[:max_length]
    labels = [-100] * n_prompt + ids[n_prompt:]
    return {"input_ids": ids, "labels": labels}
