"""Characters to lines, comments, string literals and tokens: the one tokenizer of the language.

Everything here works on one line of the file at a time, with 0-based offsets into that
line; `Problem` carries such offsets and is turned into a Diagnostic by the parser.
`tokenize` serves every grammar: the directive keyword, domains, claims (which glue adjacent
tokens into words such as `L0.H2`), and the pre-scan of expressions before `ast` sees them.
It raises only for a malformed string literal; any other odd character or malformed number
becomes a "bad" token whose value is the message, and each grammar decides what to say.
String literals follow Python's syntax for the escapes we accept (\\\\ \\' \\" \\n \\t \\r
\\xHH \\uHHHH \\UHHHHHHHH); any other escape is an error, so a literal means the same thing
in a prompt template and in an expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from tui_interp.theory.limits import MAX_INT_BITS, MAX_INT_DIGITS
from tui_interp.theory.nodes import Span

QUOTES = ("'", '"')
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_HEX = frozenset("0123456789abcdefABCDEF")
_BAD_CHARACTER = re.compile("[\x00\r\ud800-\udfff]")


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


def check_characters(line: str) -> None:
    """Refuse characters no theory line may hold (NUL, lone surrogates, stray carriage returns)."""
    bad = _BAD_CHARACTER.search(line)
    if bad is None:
        return
    i = bad.start()
    if line[i] == "\x00":
        raise Problem("NUL character in the file", i)
    if line[i] == "\r":
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
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return StringToken("".join(chars), start, i + 1, tuple(starts), tuple(ends))
        stop = i + 1
        if ch == "\\":
            ch, stop = _escape(text, i)
        chars.append(ch)
        starts.append(i)
        ends.append(stop)
        i = stop
    raise Problem(f"unterminated string: no closing {quote}", start, len(text))


def _escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape sequence starting at the backslash `text[i]`."""
    if i + 1 >= len(text):
        raise Problem("a backslash at the end of a line (no line continuation in theory files)", i)
    kind = text[i + 1]
    if kind in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[kind], i + 2
    if kind not in _HEX_ESCAPES:
        raise Problem(
            f"unknown escape \\{kind} (use \\\\, \\', \\\", \\n, \\t, \\r, \\xHH, \\uHHHH or \\UHHHHHHHH)", i, i + 2
        )
    width = _HEX_ESCAPES[kind]
    digits = text[i + 2 : i + 2 + width]
    n_hex = next((k for k, d in enumerate(digits) if d not in _HEX), len(digits))
    if n_hex != width:
        raise Problem(f"\\{kind} needs exactly {width} hex digits", i, i + 2 + n_hex)
    code = int(digits, 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or code == 0:
        raise Problem(f"\\{kind}{digits} is not a usable character", i, i + 2 + width)
    return chr(code), i + 2 + width


def find_comment(line: str, offset: int = 0) -> int | None:
    """Offset of the `#` that starts a comment (outside string literals), or None."""
    i = offset
    while i < len(line):
        ch = line[i]
        if ch == "#":
            return i
        if ch in QUOTES:
            try:
                i = scan_string(line, i).end
            except Problem:  # a malformed literal: skip to its closing quote (ignoring escapes)
                j = i + 1
                while j < len(line) and line[j] != ch:
                    j += 2 if line[j] == "\\" else 1
                if j >= len(line):
                    return None
                i = j + 1
            continue
        i += 1
    return None


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
        j = j if j is not None else i + 1
        start = self.start_of(i)
        end = self.end_of(j) if j > i else start + 1
        return Span(self.line, start + 1, max(end, start + 1) + 1)


# --- tokens ------------------------------------------------------------------------------------

TokenKind = Literal["name", "int", "number", "string", "op", "bad", "word"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_EXTENT = re.compile(r"[0-9A-Za-z_]*(?:\.(?!\.)[0-9A-Za-z_]*)?(?:(?<=[eE])[+-][0-9A-Za-z_]*)?")
_INT = re.compile(r"[0-9]+(?:_[0-9]+)*")
_D = r"[0-9](?:_?[0-9])*"
_PY_NUMBER = re.compile(
    rf"0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:{_D}(?:\.(?:{_D})?)?|\.{_D})(?:[eE][+-]?{_D})?[jJ]?"
)


@dataclass(frozen=True, slots=True)
class Token:
    """A token; offsets are 0-based. `value`: an int's value, a string's decoded text, a bad
    token's message."""

    kind: TokenKind
    text: str
    start: int
    end: int
    value: str | int | None = None


def tokenize(line: str, start: int = 0, stop: int | None = None) -> Iterator[Token]:
    """Tokens of `line[start:stop]`, lazily: names, ints, other numbers, strings, punctuation."""
    stop = len(line) if stop is None else stop
    i = start
    while i < stop:
        ch = line[i]
        if ch in " \t":
            i += 1
            continue
        if ch in QUOTES:
            lit = scan_string(line, i)
            if lit.end > stop:
                raise Problem(f"unterminated string: no closing {ch}", i, stop)
            token = Token("string", line[i : lit.end], i, lit.end, lit.value)
        elif ch.isascii() and (ch.isdigit() or (ch == "." and line[i + 1 : i + 2].isdigit() and line[i - 1 : i] != ".")):
            match = _NUMBER_EXTENT.match(line, i + 1 if ch != "." else i, stop)
            token = _number(line[i : match.end() if match else i + 1], i)
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            match = _NAME.match(line, i, stop)
            end = match.end() if match else i + 1
            token = Token("name", line[i:end], i, end, line[i:end])
        elif line.startswith("..", i) and i + 2 <= stop:
            token = Token("op", "..", i, i + 2)
        elif ch.isascii() and ch.isprintable() and ch != "\\":
            token = Token("op", ch, i, i + 1)
        else:
            token = Token("bad", ch, i, i + 1, _bad_character(ch))
        yield token
        i = token.end


def _bad_character(ch: str) -> str:
    if ch == "\\":
        return "unexpected backslash outside a string"
    if ch == "\n":
        return "line breaks are not allowed in an expression"
    return f"unexpected character {ch!r} (outside strings only ASCII is allowed)"


def _number(text: str, start: int) -> Token:
    end = start + len(text)
    if _INT.fullmatch(text):
        digits = text.replace("_", "").lstrip("0") or "0"
        if len(digits) <= MAX_INT_DIGITS and int(digits).bit_length() <= MAX_INT_BITS:
            return Token("int", text, start, end, int(digits))
        return Token("bad", text, start, end, f"integer literal is too large (ints are limited to {MAX_INT_BITS:,} bits)")
    if _PY_NUMBER.fullmatch(text):
        return Token("number", text, start, end)
    hint = " (separate a number from a word with a space)" if re.search("[g-zG-Z]", text) else ""
    return Token("bad", text, start, end, f"malformed number {text!r}{hint}")


def words(line: str, start: int, stop: int) -> list[Token]:
    """Tokens of line[start:stop] with adjacent ones glued into words (`L0.H2`, `-1`, `90%`);
    strings and commas stay apart. For the claim grammar."""
    out: list[Token] = []
    for tok in tokenize(line, start, stop):
        last = out[-1] if out else None
        if tok.kind == "string" or tok.text == ",":
            out.append(tok)
        elif last is not None and last.kind == "word" and last.end == tok.start:
            out[-1] = Token("word", line[last.start : tok.end], last.start, tok.end, line[last.start : tok.end])
        else:
            out.append(Token("word", tok.text, tok.start, tok.end, tok.text))
    return out


class Cursor:
    """Reads a list of tokens in order; `end` is where "expected ..." points when they run out.

    With `ops`, a bad token or punctuation outside `ops` is refused when it is reached.
    """

    def __init__(self, tokens: list[Token], end: int, line_no: int = 0, ops: frozenset[str] | None = None) -> None:
        self.tokens = tokens
        self.i = 0
        self.end = end
        self.line_no = line_no
        self.ops = ops

    def peek(self) -> Token | None:
        tok = self.tokens[self.i] if self.i < len(self.tokens) else None
        if tok is not None and self.ops is not None:
            if tok.kind == "bad":
                raise Problem(str(tok.value), tok.start, tok.end)
            if tok.kind == "op" and tok.text not in self.ops:
                raise Problem(f"unexpected character {tok.text!r}", tok.start, tok.end)
        return tok

    def next(self, what: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise Problem(f"expected {what}", self.end)
        self.i += 1
        return tok

    def expect(self, text: str, what: str) -> Token:
        tok = self.next(what)
        if tok.text != text:
            raise Problem(f"expected {what}, got {tok.text!r}", tok.start, tok.end)
        return tok

    def span(self, tok: Token) -> Span:
        return Span(self.line_no, tok.start + 1, tok.end + 1)
