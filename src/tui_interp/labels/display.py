"""Showing label text safely: what a face does before a name or note reaches a terminal."""

from __future__ import annotations

import os

from tui_interp.labels.records import LINE_BREAKS

# Bidirectional embeddings, overrides, isolates and marks: they reorder what a terminal shows.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """Text safe to show in a terminal: control and bidi characters become escapes like ``\\x1b``.

    Rich markup is not touched here (render through `rich.text.Text`, or escape it): this
    only stops a label from moving the cursor, changing colours or reordering a line.
    With `keep_newlines`, "\\n" stays a line break (for multi-line notes). Lone surrogates,
    which no output stream can encode, become escapes too: ``\\xff`` for a byte of a file
    name that was not UTF-8 (Python decodes such a byte as U+DCFF), ``\\ud800`` otherwise.
    """
    if text.isprintable():
        return text
    return "".join(_visible_char(ch, keep_newlines) for ch in text)


def _visible_char(ch: str, keep_newlines: bool) -> str:
    if ch == "\n" and keep_newlines:
        return ch
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    code = ord(ch)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode() and sys.argv carry it
        return f"\\x{code - 0xDC00:02x}"
    if ch in LINE_BREAKS or ch in BIDI_CONTROLS or 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return ch


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
