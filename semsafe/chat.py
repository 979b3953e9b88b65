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
