"""Tokens into and out of the engine: what a user typed as ids, target tokens of metrics, and
token and model references as JSON (token text made terminal-safe with display_text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_interp.engine.lens import TokenScore
from tui_interp.errors import InputError
from tui_interp.fileio import regular_file
from tui_interp.model.loader import LoadedModel
from tui_interp.model.tokenizer import display_text, parse_token_ids

MAX_PROMPTS_BYTES = 64 * 2**20
MAX_PROMPTS = 100_000


def encode_prompt(lm: LoadedModel, prompt: str | None, tokens: str | None, bos: bool | None) -> tuple[list[int], str]:
    """Token ids of `--prompt TEXT` or `--tokens 1,2,3` (exactly one), and how BOS was decided
    ("tokenizer", "forced on", "forced off", "as given")."""
    if (prompt is None) == (tokens is None):
        raise InputError("give exactly one of --prompt TEXT or --tokens 1,2,3")
    if tokens is not None:
        return parse_token_ids(tokens, what="--tokens"), "as given"
    ids = lm.need_tokenizer().encode(check_text(prompt or "", "the prompt"), bos=bos)
    if not ids:
        raise InputError("the prompt encodes to no tokens")
    return ids, "tokenizer" if bos is None else ("forced on" if bos else "forced off")


def check_text(text: str, what: str) -> str:
    """`text` if it is valid Unicode (a prompt given as bytes that are not UTF-8 arrives with
    lone surrogates, which no tokenizer takes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"{what} is not valid UTF-8 text (at character {e.start + 1})") from None
    return text


def read_prompts(path: str | Path) -> list[str]:
    """The prompts of a prompts file: one per line (UTF-8; the line ending is not part of it;
    blank lines are skipped)."""
    return [text for _, text in read_prompt_lines(path)]


def read_prompt_lines(path: str | Path) -> list[tuple[int, str]]:
    """(line number, prompt) of every non-blank line of a prompts file."""
    p = regular_file(path, "prompts file", error=InputError)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_PROMPTS_BYTES + 1)
    except OSError as e:
        raise InputError(f"{p}: cannot read the prompts file: {e.strerror or e}") from e
    if len(data) > MAX_PROMPTS_BYTES:
        raise InputError(f"{p}: the prompts file is larger than {MAX_PROMPTS_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(f"{p}:{line}: not UTF-8 text") from None
    prompts = [(i, line.removesuffix("\r")) for i, line in enumerate(text.split("\n"), 1) if line.strip()]
    if not prompts:
        raise InputError(f"{p}: the prompts file has no prompts (one per line)")
    if len(prompts) > MAX_PROMPTS:
        raise InputError(f"{p}: more than {MAX_PROMPTS:,} prompts")
    return prompts


def encode_prompts(
    lm: LoadedModel, prompt: str | None, tokens: str | None, prompts_file: str | Path | None, bos: bool | None
) -> list[tuple[str, list[int], str]]:
    """(text, token ids, how BOS was decided) of `--prompt`, `--tokens` or `--prompts FILE` (exactly one)."""
    given = sum(x is not None for x in (prompt, tokens, prompts_file))
    if given != 1:
        raise InputError("give exactly one of --prompt TEXT, --tokens 1,2,3 or --prompts FILE")
    if prompts_file is None:
        ids, how = encode_prompt(lm, prompt, tokens, bos)
        return [(prompt if prompt is not None else str(tokens), ids, how)]
    out = []
    for i, text in read_prompt_lines(prompts_file):
        try:
            ids, how = encode_prompt(lm, text, None, bos)
        except InputError as e:
            raise InputError(f"{prompts_file}:{i}: {e}") from None
        out.append((text, ids, how))
    return out


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
