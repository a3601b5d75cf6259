"""Text made safe for a terminal: token text, label names and notes, file names, messages.

One function, `visible`, for everything untrusted that a face shows: control, format,
private-use, unassigned and separator characters become escapes (``\\n``, ``\\x1b``, ``\\u200b``,
``\\u202e``), so nothing a model emits or a file holds can move the cursor, change colours,
reorder a line or hide itself. A byte of a file name that is not UTF-8 (Python carries it as a
lone surrogate U+DC80..U+DCFF) shows as ``\\xff``. Rich markup is not touched here: escaping it
is the face's job, on top of this. Core module: no torch, no faces.
"""

from __future__ import annotations

import os
import unicodedata

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every character a terminal would act on, or not show, made a visible escape.

    With `keep_newlines`, "\\n" stays a line break (for multi-line notes)."""
    if text.isprintable() and text.isascii():
        return text
    return "".join(_visible_char(ch, keep_newlines) for ch in text)


def _visible_char(ch: str, keep_newlines: bool) -> str:
    if ch == "\n" and keep_newlines:
        return ch
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    if unicodedata.category(ch) not in _HIDDEN:
        return ch
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode() and sys.argv carry it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def encodable(text: str | os.PathLike[str]) -> str:
    """Text (or a path) any output stream can encode: lone surrogates become ``\\xNN`` or ``\\udXXX``.

    A byte of a file name that is not UTF-8 reaches Python as a lone surrogate (U+DC80..U+DCFF),
    which printing or writing as UTF-8 refuses; here it becomes ``\\xff``. Equal to the input
    for all valid text. Use it for paths and messages in JSON output.
    """
    s = os.fspath(text)
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
