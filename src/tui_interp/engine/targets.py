"""Target tokens for attribution, ablation and patching metrics: one token, by text or by id."""

from __future__ import annotations

from tui_interp.errors import InputError
from tui_interp.model.loader import LoadedModel


def parse_target(lm: LoadedModel, text: str) -> int:
    """`#123` is a token id; anything else must encode (without BOS) to exactly one token."""
    vocab = lm.config.vocab_size
    if text.startswith("#") and text[1:].isdigit():
        token = int(text[1:])
        if token >= vocab:
            raise InputError(f"target {text}: token id outside the vocabulary (0..{vocab - 1})")
        return token
    tok = lm.need_tokenizer()
    ids = tok.encode(text, bos=False)
    if len(ids) != 1:
        shown = ", ".join(repr(tok.display(i)) for i in ids) or "nothing"
        raise InputError(f"target {text!r} is {len(ids)} tokens ({shown}); give a single token, or its id as #123")
    return ids[0]
