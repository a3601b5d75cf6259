"""Characters to lines, comments, string literals and small token streams.

Everything here works on one line of the file at a time, with 0-based offsets into that
line; `Problem` carries such offsets and is turned into a Diagnostic by the parser.
String literals follow Python's syntax for the escapes we accept (\\\\ \\' \\" \\n \\t \\r
\\xHH \\uHHHH \\UHHHHHHHH); any other escape is an error, so a literal means the same thing
in a prompt template and in an expression.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tui_interp.theory.nodes import Span

QUOTES = ("'", '"')
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_HEX = frozenset("0123456789abcdefABCDEF")


class Problem(Exception):
    """A problem at offsets [start, end) of the text being scanned (internal to the parser)."""

    def __init__(self, message: str, start: int, end: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end if end is not None and end > start else start + 1


def split_lines(text: str) -> list[str]:
    """Lines split on `\\n`, each without its `\\r\\n` / `\\n` ending (what editors number)."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


_BAD_CHARACTER = re.compile("[\x00\r\ud800-\udfff]")


def check_characters(line: str) -> None:
    """Refuse characters no theory line may hold (NUL, lone surrogates, stray carriage returns)."""
    bad = _BAD_CHARACTER.search(line)
    if bad is None:
        return
    i = bad.start()
    ch = line[i]
    if ch == "\x00":
        raise Problem("NUL character in the file", i)
    if ch == "\r":
        raise Problem("stray carriage return inside a line", i)
    raise Problem("invalid character (a lone surrogate)", i)


@dataclass(frozen=True, slots=True)
class StringToken:
    """A decoded string literal: `starts[i]`/`ends[i]` are the source offsets of character i."""

    value: str
    start: int
    end: int
    starts: tuple[int, ...]
    ends: tuple[int, ...]


def scan_string(text: str, start: int) -> StringToken:
    """Decode the string literal whose opening quote is at `text[start]`."""
    quote = text[start]
    i = start + 1
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return StringToken("".join(chars), start, i + 1, tuple(starts), tuple(ends))
        if ch == "\\":
            decoded, stop = _escape(text, i)
            chars.append(decoded)
            starts.append(i)
            ends.append(stop)
            i = stop
            continue
        chars.append(ch)
        starts.append(i)
        ends.append(i + 1)
        i += 1
    raise Problem(f"unterminated string: no closing {quote}", start, n)


def _escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape sequence starting at the backslash `text[i]`."""
    if i + 1 >= len(text):
        raise Problem("a backslash at the end of a line (no line continuation in theory files)", i)
    kind = text[i + 1]
    if kind in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[kind], i + 2
    if kind in _HEX_ESCAPES:
        width = _HEX_ESCAPES[kind]
        digits = text[i + 2 : i + 2 + width]
        n_hex = next((k for k, d in enumerate(digits) if d not in _HEX), len(digits))
        if n_hex != width:
            raise Problem(f"\\{kind} needs exactly {width} hex digits", i, i + 2 + n_hex)
        code = int(digits, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or code == 0:
            raise Problem(f"\\{kind}{digits} is not a usable character", i, i + 2 + width)
        return chr(code), i + 2 + width
    raise Problem(
        f"unknown escape \\{kind} (use \\\\, \\', \\\", \\n, \\t, \\r, \\xHH, \\uHHHH or \\UHHHHHHHH)",
        i,
        i + 2,
    )


def find_comment(line: str) -> int | None:
    """Offset of the `#` that starts a comment (outside string literals), or None."""
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == "#":
            return i
        if ch in QUOTES:
            try:
                i = scan_string(line, i).end
            except Problem:
                return _comment_after_bad_string(line, i)
            continue
        i += 1
    return None


def _comment_after_bad_string(line: str, start: int) -> int | None:
    """After a malformed literal: skip to its closing quote (ignoring escapes) if any."""
    quote = line[start]
    i = start + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == quote:
            return find_comment_from(line, i + 1)
        i += 1
    return None


def find_comment_from(line: str, offset: int) -> int | None:
    found = find_comment(line[offset:])
    return None if found is None else found + offset


class ColumnMap:
    """Maps character indices of a piece of text back to offsets in its source line.

    Expressions are parsed on their own; a placeholder's expression inside a template has
    decoded characters whose source offsets are not contiguous (escapes), so each character
    carries its own [start, end) in the line.
    """

    __slots__ = ("base", "ends", "line", "starts", "stop")

    def __init__(
        self,
        line: int,
        base: int,
        starts: Sequence[int] | None = None,
        ends: Sequence[int] | None = None,
        stop: int | None = None,
    ) -> None:
        self.line = line
        self.base = base
        self.starts = starts
        self.ends = ends
        self.stop = stop

    def start_of(self, i: int) -> int:
        if self.starts is None:
            return self.base + i
        if i < len(self.starts):
            return self.starts[i]
        return self.stop if self.stop is not None else (self.ends[-1] if self.ends else self.base)

    def end_of(self, j: int) -> int:
        """Source offset just after text[:j]."""
        if self.ends is None:
            return self.base + j
        if j <= 0:
            return self.start_of(0)
        if j <= len(self.ends):
            return self.ends[j - 1]
        return self.stop if self.stop is not None else self.ends[-1]

    def span(self, i: int, j: int | None = None) -> Span:
        """The 1-based span of text[i:j] (at least one column wide)."""
        start, end = self.offsets(i, j if j is not None else i + 1)
        return Span(self.line, start + 1, end + 1)

    def offsets(self, i: int, j: int) -> tuple[int, int]:
        """Source offsets [start, end) of text[i:j]."""
        start = self.start_of(i)
        end = self.end_of(j) if j > i else start + 1
        return start, max(end, start + 1)


TokenKind = Literal["name", "int", "number", "string", "op"]
_OPS = ("..", ":", ",", "[", "]", "-", "+", "%", ".", "*", "?", "(", ")", "=")


@dataclass(frozen=True, slots=True)
class Token:
    """A token of the small directive grammars (domains, claims); offsets are 0-based."""

    kind: TokenKind
    text: str
    start: int
    end: int
    value: str | int | None = None


def tokenize(line: str, start: int, stop: int) -> list[Token]:
    """Tokens of `line[start:stop]`: names, ints, decimals, strings and punctuation."""
    tokens: list[Token] = []
    i = start
    while i < stop:
        ch = line[i]
        if ch.isspace():
            i += 1
            continue
        if ch in QUOTES:
            lit = scan_string(line, i)
            if lit.end > stop:
                raise Problem(f"unterminated string: no closing {ch}", i, stop)
            tokens.append(Token("string", line[i : lit.end], i, lit.end, lit.value))
            i = lit.end
            continue
        if ch.isascii() and (
            ch.isdigit() or (ch == "." and i + 1 < stop and line[i + 1].isdigit() and not _after_dot(line, i))
        ):
            i = _number(line, i, stop, tokens)
            continue
        if ch.isascii() and (ch.isalpha() or ch == "_"):
            j = i + 1
            while j < stop and line[j].isascii() and (line[j].isalnum() or line[j] == "_"):
                j += 1
            tokens.append(Token("name", line[i:j], i, j, line[i:j]))
            i = j
            continue
        op = next((o for o in _OPS if line.startswith(o, i) and i + len(o) <= stop), None)
        if op is None:
            raise Problem(f"unexpected character {ch!r}", i)
        tokens.append(Token("op", op, i, i + len(op)))
        i += len(op)
    return tokens


def _after_dot(line: str, i: int) -> bool:
    """True when the `.` at i is the second of `..` (so `0..5` is not `0.` `.5`)."""
    return i > 0 and line[i - 1] == "."


def _number(line: str, i: int, stop: int, tokens: list[Token]) -> int:
    j = i
    while j < stop and ((line[j].isascii() and line[j].isdigit()) or line[j] == "_"):
        j += 1
    is_decimal = False
    if j < stop and line[j] == "." and not line.startswith("..", j):
        is_decimal = True
        j += 1
        while j < stop and line[j].isascii() and line[j].isdigit():
            j += 1
    if j < stop and line[j].isascii() and (line[j].isalpha() or line[j] == "_"):
        raise Problem(f"malformed number {line[i : j + 1]!r}", i, j + 1)
    text = line[i:j]
    if is_decimal:
        tokens.append(Token("number", text, i, j, text))
        return j
    if text.startswith("_") or text.endswith("_") or "__" in text:
        raise Problem(f"malformed number {text!r}", i, j)
    tokens.append(Token("int", text, i, j, int(text.replace("_", ""))))
    return j
