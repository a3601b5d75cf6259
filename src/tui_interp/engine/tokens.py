"""Tokens into and out of the engine: what a user typed as ids, target tokens of metrics, and
token and model references as JSON (token text made terminal-safe with display_text)."""

from __future__ import annotations

from typing import Any

from tui_interp.engine.lens import TokenScore
from tui_interp.errors import InputError
from tui_interp.model.loader import LoadedModel
from tui_interp.model.tokenizer import display_text, parse_token_ids


def encode_prompt(lm: LoadedModel, prompt: str | None, tokens: str | None, bos: bool | None) -> tuple[list[int], str]:
    """Token ids of `--prompt TEXT` or `--tokens 1,2,3` (exactly one), and how BOS was decided
    ("tokenizer", "forced on", "forced off", "as given")."""
    if (prompt is None) == (tokens is None):
        raise InputError("give exactly one of --prompt TEXT or --tokens 1,2,3")
    if tokens is not None:
        return parse_token_ids(tokens, what="--tokens"), "as given"
    ids = lm.need_tokenizer().encode(prompt or "", bos=bos)
    if not ids:
        raise InputError("the prompt encodes to no tokens")
    return ids, "tokenizer" if bos is None else ("forced on" if bos else "forced off")


def model_json(lm: LoadedModel) -> dict[str, str]:
    return {"name": lm.checkpoint.name, "fingerprint": lm.checkpoint.fingerprint}


def token_json(lm: LoadedModel, token_id: int) -> dict[str, Any]:
    """{"id", "text"}: the token's text made safe for a terminal."""
    return {"id": token_id, "text": display_text(lm.token_text(token_id))}


def score_json(s: TokenScore) -> dict[str, Any]:
    return {"id": s.id, "text": display_text(s.text), "logit": s.logit, "prob": s.prob}


def parse_target(lm: LoadedModel, text: str) -> int:
    """`#123` is a token id; anything else must encode (without BOS) to exactly one token that
    is not the unknown token."""
    vocab = lm.config.vocab_size
    if text.startswith("#") and len(text) > 1:
        digits = text[1:]
        if not (digits.isascii() and digits.isdigit()):
            raise InputError(f"target {text[:40]!r}: after # give a token id (0..{vocab - 1})")
        if len(digits) > 10 or int(digits) >= vocab:
            raise InputError(f"target {text[:24]}: token id outside the vocabulary (0..{vocab - 1})")
        return int(digits)
    tok = lm.need_tokenizer()
    ids = tok.encode(text, bos=False)
    if len(ids) != 1:
        shown = ", ".join(repr(tok.display(i)) for i in ids[:8]) or "nothing"
        raise InputError(f"target {text[:40]!r} is {len(ids)} tokens ({shown}); give a single token, or its id as #123")
    if tok.is_unknown(ids[0]) and tok.token_text(ids[0]) != text:
        raise InputError(f"target {text[:40]!r} is not in the vocabulary (it encodes to the unknown token {tok.display(ids[0])!r})")
    return ids[0]
