"""The model's tokenizer (tokenizer.json through `tokenizers`) and safe display of token text.

Whether a BOS token is prepended is never silent: the tokenizer's own post-processor decides
by default, and `bos=True/False` overrides it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer

from tui_interp.display import visible
from tui_interp.errors import InputError, TokenizerError
from tui_interp.fileio import regular_file

MAX_TOKEN_ID = 2**31 - 1  # larger ids are no vocabulary's; refused before any tensor is built


def parse_token_ids(text: str, *, what: str = "token ids") -> list[int]:
    """`1,2,3`, `1 2 3` or `1, 2 3` -> [1, 2, 3]. Empty fields (`1,,2`) and non-numbers are errors."""
    fields = [g for f in text.split(",") for g in (f.split() or [""])] if "," in text else text.split()
    if not fields:
        raise InputError(f"{what}: no token ids given (expected comma-separated ids such as 1,2,3)")
    ids = []
    for f in fields:
        if not f:
            raise InputError(f"{what} {text!r}: an empty field (expected comma-separated ids such as 1,2,3)")
        if not (f.isascii() and f.isdigit()):
            raise InputError(f"{what} {text[:60]!r}: {f[:20]!r} is not a token id (expected comma-separated ids such as 1,2,3)")
        if len(f) > 10 or int(f) > MAX_TOKEN_ID:
            raise InputError(f"{what}: token id {f[:20]}{'...' if len(f) > 20 else ''} is outside any vocabulary")
        ids.append(int(f))
    return ids


def display_text(text: str) -> str:
    """Token or file text made safe for a terminal (tui_interp.display.visible)."""
    return visible(text)


class Tokenizer:
    def __init__(self, tok: HFTokenizer, path: Path, bos_id: int | None) -> None:
        self._tok = tok
        self.path = path
        self.bos_id = bos_id
        self.vocab_size = tok.get_vocab_size(with_added_tokens=True)

    @classmethod
    def from_file(cls, path: Path, *, bos_id: int | None = None) -> Tokenizer:
        regular_file(path, "tokenizer file (tokenizer.json)", error=TokenizerError)
        try:
            text = path.read_text(encoding="utf-8")
            json.loads(text)
        except OSError as e:
            raise TokenizerError(f"{path}: cannot read: {e.strerror or e}") from e
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as e:
            raise TokenizerError(f"{path}: not a valid tokenizer.json (invalid JSON: {_first_line(e)})") from e
        try:
            tok = HFTokenizer.from_str(text)
        except Exception as e:
            # `tokenizers` reports a well-formed JSON that is not a tokenizer as a bare
            # Exception; anything more specific is a bug and propagates.
            if type(e) is not Exception:
                raise
            raise TokenizerError(f"{path}: not a valid tokenizer.json: {_first_line(e)}") from e
        if bos_id is None:
            bos_id = _bos_from_tokenizer_config(path.parent / "tokenizer_config.json", tok)
        return cls(tok, path, bos_id)

    def encode(self, text: str, *, bos: bool | None = None) -> list[int]:
        """Token ids of `text`. bos=None: as the tokenizer's post-processor does; True/False: force."""
        return self.encode_batch([text], bos=bos)[0]

    def encode_batch(self, texts: list[str], *, bos: bool | None = None) -> list[list[int]]:
        """encode() of many texts at once (the Rust tokenizer runs them in parallel)."""
        encoded = [list(e.ids) for e in self._tok.encode_batch(list(texts), add_special_tokens=True)]
        if bos is None:
            return encoded
        out = []
        for ids in encoded:
            if bos is True:
                if self.bos_id is None:
                    raise TokenizerError(f"{self.path}: --bos asked for, but this tokenizer has no BOS token")
                if not ids or ids[0] != self.bos_id:
                    ids = [self.bos_id, *ids]
            elif ids and self.bos_id is not None and ids[0] == self.bos_id:
                ids = ids[1:]
            out.append(ids)
        return out

    def encode_with_offsets(self, text: str, *, bos: bool | None = None) -> tuple[list[int], list[tuple[int, int]]]:
        """encode(), plus each token's character span [start, end) in `text` ((0, 0) for a BOS)."""
        enc = self._tok.encode(text, add_special_tokens=True)
        ids, offsets = list(enc.ids), [tuple(o) for o in enc.offsets]
        final = self.encode_batch([text], bos=bos)[0]
        if final[: len(ids)] != ids and final[1:] == ids:
            offsets = [(0, 0), *offsets]  # a BOS was added
        elif final != ids and final == ids[1:]:
            offsets = offsets[1:]  # the BOS was removed
        return final, offsets  # type: ignore[return-value]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def token_text(self, token_id: int) -> str:
        """The raw text of one token as the decoder renders it (may contain control chars)."""
        text = self._tok.decode([token_id], skip_special_tokens=False)
        if text == "" or "\ufffd" in text:
            # a special token, or a byte fragment of a multi-byte character: show the vocab entry
            raw = self._tok.id_to_token(token_id)
            return raw if raw is not None else f"<{token_id}>"
        return text

    def display(self, token_id: int) -> str:
        """Token text safe for a terminal (see display_text)."""
        return display_text(self.token_text(token_id))

    def token_to_id(self, text: str) -> int | None:
        return self._tok.token_to_id(text)

    def is_unknown(self, token_id: int) -> bool:
        """Whether `token_id` is the model's unknown token (what out-of-vocabulary text becomes)."""
        unk = getattr(self._tok.model, "unk_token", None)
        return isinstance(unk, str) and self._tok.token_to_id(unk) == token_id


def _bos_from_tokenizer_config(path: Path, tok: HFTokenizer) -> int | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, ValueError):  # JSONDecodeError is a ValueError
        return None
    bos = doc.get("bos_token") if isinstance(doc, dict) else None
    if isinstance(bos, dict):
        bos = bos.get("content")
    return tok.token_to_id(bos) if isinstance(bos, str) else None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
