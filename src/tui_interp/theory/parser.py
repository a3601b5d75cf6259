"""The line parser: a theory file to directives, with every syntax problem as a Diagnostic.

Each non-blank line (after removing a `#` comment) is one directive, recognised by its first
token (see LANGUAGE.md for the directives). A line with a problem is reported and skipped; the
others are still parsed, so one pass finds every problem in the file.
"""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tui_interp.theory.claims import parse_claim
from tui_interp.theory.diagnostics import Diagnostic, Severity
from tui_interp.theory.domain import (
    BoolSpec,
    IntRange,
    ListSpec,
    Spec,
    SpecError,
    StrSpec,
    check_alphabet,
    check_lengths,
)
from tui_interp.theory.expressions import ExprError, parse_expression
from tui_interp.theory.functions import FUNCTIONS
from tui_interp.theory.lexer import (
    QUOTES,
    ColumnMap,
    Cursor,
    Problem,
    StringToken,
    Token,
    check_characters,
    find_comment,
    scan_string,
    split_lines,
    tokenize,
)
from tui_interp.theory.limits import MAX_DOMAIN_SIZE_BITS, MAX_LINE_CHARS
from tui_interp.theory.nodes import (
    Claim,
    Condition,
    InputDecl,
    Placeholder,
    SliceDecl,
    Span,
    SplitDecl,
    Template,
    TemplatePart,
)

DIRECTIVES = ("theory", "input", "where", "prompt", "expect", "slice", "split", "claim")
_DOMAIN_OPS = frozenset(("..", ":", ",", "[", "]", "-", "+", "%", ".", "*", "?", "(", ")", "="))
_MAX_TYPE_NESTING = 16
T = TypeVar("T")
_TYPE_HELP = 'expected a type: int in A..B, bool, str of "ALPHABET" len A..B, or list[TYPE] len A..B'


@dataclass
class ParsedFile:
    """The directives of a file, as parsed (before type checking)."""

    name: str | None = None
    name_span: Span | None = None
    inputs: list[InputDecl] = field(default_factory=list)
    wheres: list[Condition] = field(default_factory=list)
    prompt: Template | None = None
    expect: Condition | None = None
    slices: list[SliceDecl] = field(default_factory=list)
    splits: list[SplitDecl] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # directive -> first line (for duplicates)
    bad_inputs: set[str] = field(default_factory=set)  # declared, but the domain had an error
    raw_size: int = 1  # product of the domains' sizes so far


class Diagnostics:
    """Collects diagnostics; `problem` converts a lexer Problem on a line."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def add(self, span: Span, message: str, severity: Severity = "error") -> None:
        self.items.append(Diagnostic.at(span, message, severity))

    def problem(self, line_no: int, p: Problem) -> None:
        self.add(Span(line_no, p.start + 1, p.end + 1), p.message)

    def expr_error(self, e: ExprError) -> None:
        self.add(e.span, e.message)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.line, d.col, d.severity != "error"))


def parse_file(text: str, diags: Diagnostics) -> ParsedFile:
    """Parse every line; problems go to `diags`."""
    parsed = ParsedFile()
    for line_no, line in enumerate(split_lines(text), 1):
        try:
            if len(line) > MAX_LINE_CHARS:
                message = f"line is too long ({len(line):,} characters; the limit is {MAX_LINE_CHARS:,})"
                raise Problem(message, MAX_LINE_CHARS, len(line))
            check_characters(line)
            _parse_line(line, line_no, parsed, diags)
        except (Problem, ExprError) as e:
            if isinstance(e, Problem):
                diags.problem(line_no, e)
            else:
                diags.expr_error(e)
            word = _first_word(line[:MAX_LINE_CHARS])
            if word in DIRECTIVES:  # a rejected line still held its directive: it is not missing
                parsed.seen.setdefault(word, line_no)
    return parsed


def _first_word(code: str) -> str | None:
    try:
        first = next(tokenize(code), None)
    except Problem:
        return None
    return first.text if first is not None and first.kind == "name" else None


def _parse_line(line: str, line_no: int, parsed: ParsedFile, diags: Diagnostics) -> None:
    comment = find_comment(line)
    code = (line if comment is None else line[:comment]).rstrip()
    if not code.strip():
        return
    start = len(code) - len(code.lstrip())
    word = _first_word(code)
    if word is None:
        raise Problem(f"expected a directive: {', '.join(DIRECTIVES)}", start, start + 1)
    end = code.index(word, start) + len(word)
    if word not in DIRECTIVES:
        close = difflib.get_close_matches(word, DIRECTIVES, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else f" (expected one of: {', '.join(DIRECTIVES)})"
        raise Problem(f"unknown directive `{word}`{hint}", start, end)
    if end < len(code) and not code[end].isspace() and word in ("theory", "input", "prompt", "split", "claim"):
        raise Problem(f"expected a space after `{word}`", end)
    if word in ("theory", "prompt", "expect") and word in parsed.seen:
        raise Problem(f"second `{word}` line (the first is line {parsed.seen[word]})", start, end)
    parsed.seen.setdefault(word, line_no)
    arg = len(code) - len(code[end:].lstrip())
    if arg >= len(code):
        raise Problem(f"`{word}` needs {_NEEDS[word]}", end)
    _HANDLERS[word](code, arg, line_no, parsed, diags)


_NEEDS = {
    "theory": 'a name in quotes, e.g. theory "modular addition"',
    "input": "a name and a type, e.g. input a: int in 0..112",
    "where": "a condition, e.g. where a != b",
    "prompt": 'a template in quotes, e.g. prompt "{a} + {b} ="',
    "expect": "an expression, e.g. expect (a + b) % 113",
    "slice": "a condition, e.g. slice a + b >= 113",
    "split": 'a name and a file, e.g. split train from "train.jsonl"',
    "claim": "a claim, e.g. claim needs L0.mlp",
}


def _single_string(code: str, start: int, what: str) -> StringToken:
    if code[start] not in QUOTES:
        raise Problem(f"`{what}` needs {_NEEDS[what]}", start, len(code))
    lit = scan_string(code, start)
    tail = code[lit.end :].strip()
    if tail:
        at = code.index(tail[0], lit.end)
        raise Problem(f"unexpected text after the {what} string: {tail[:20]!r}", at, len(code))
    return lit


# --- theory ------------------------------------------------------------------------------------


def _theory(code: str, start: int, line_no: int, parsed: ParsedFile, diags: Diagnostics) -> None:
    lit = _single_string(code, start, "theory")
    if not lit.value.strip():
        raise Problem("the theory's name must not be empty", lit.start, lit.end)
    parsed.name = lit.value
    parsed.name_span = Span(line_no, lit.start + 1, lit.end + 1)


# --- input -------------------------------------------------------------------------------------


def _input(code: str, start: int, line_no: int, parsed: ParsedFile, diags: Diagnostics) -> None:
    toks = Cursor(list(tokenize(code, start)), len(code), ops=_DOMAIN_OPS)
    names: list[Token] = []
    try:
        while True:
            tok = toks.next("an input name")
            if tok.kind != "name":
                raise Problem(f"expected an input name, got {tok.text!r}", tok.start, tok.end)
            _check_input_name(tok, parsed, names)
            names.append(tok)
            sep = toks.next("`:` and a type, e.g. input a: int in 0..112")
            if sep.text == ":":
                break
            if sep.text != ",":
                raise Problem(f"expected `:` after the input name, got {sep.text!r}", sep.start, sep.end)
        first = toks.peek()
        if first is None:
            raise Problem(f"missing type: {_TYPE_HELP[len('expected a type: ') :]}", len(code))
        spec = _domain(toks, 0)
        extra = toks.peek()
        if extra is not None:
            raise Problem(f"unexpected {extra.text!r} after the type", extra.start, extra.end)
        raw_size = parsed.raw_size * spec.size ** len(names)
        if raw_size.bit_length() > MAX_DOMAIN_SIZE_BITS + 1:
            raise Problem(
                f"the inputs together are too many: more than 2^{MAX_DOMAIN_SIZE_BITS:,} combinations",
                first.start,
                len(code),
            )
    except Problem:
        parsed.bad_inputs.update(tok.text for tok in names)
        raise
    parsed.raw_size = raw_size
    domain_span = Span(line_no, first.start + 1, len(code) + 1)
    for tok in names:
        parsed.inputs.append(InputDecl(tok.text, Span(line_no, tok.start + 1, tok.end + 1), spec, domain_span))


def _check_input_name(tok: Token, parsed: ParsedFile, names: list[Token]) -> None:
    name = tok.text
    if keyword.iskeyword(name):
        raise Problem(f"`{name}` is a Python keyword; choose another input name", tok.start, tok.end)
    if name in FUNCTIONS:
        raise Problem(f"`{name}` is a built-in function; choose another input name", tok.start, tok.end)
    earlier = next((d for d in parsed.inputs if d.name == name), None)
    if earlier is not None:
        raise Problem(f"input `{name}` is already declared on line {earlier.span.line}", tok.start, tok.end)
    if name in parsed.bad_inputs or any(t.text == name for t in names):
        raise Problem(f"input `{name}` is declared twice", tok.start, tok.end)


def _domain(toks: Cursor, depth: int) -> Spec:
    tok = toks.next(_TYPE_HELP[len("expected ") :])
    if depth > _MAX_TYPE_NESTING:
        raise Problem(f"types are nested too deeply (more than {_MAX_TYPE_NESTING} levels)", tok.start, tok.end)
    if tok.kind != "name" or tok.text not in ("int", "bool", "str", "list"):
        raise Problem(f"{_TYPE_HELP}; got {tok.text!r}", tok.start, tok.end)
    if tok.text == "bool":
        return BoolSpec()
    if tok.text == "int":
        word = toks.next("`in` and a range, e.g. int in 0..112")
        if word.text != "in":
            hint = "inclusive range, e.g. int in 0..112"
            raise Problem(f"expected `in` and an {hint}; got {word.text!r}", word.start, word.end)
        first = toks.peek()
        lo = _signed_int(toks, "the range's first bound")
        dots = toks.next("`..` between the bounds")
        if dots.text != "..":
            raise Problem(f"expected `..` between the bounds (e.g. 0..112), got {dots.text!r}", dots.start, dots.end)
        hi = _signed_int(toks, "the range's last bound")
        return _spec(lambda: IntRange(lo, hi), first.start if first else tok.start, toks)
    if tok.text == "str":
        toks.expect("of", 'the alphabet: str of "01" len 1..12')
        alphabet = toks.next('the alphabet in quotes, e.g. str of "01" len 1..12')
        if alphabet.kind != "string":
            raise Problem(
                f'expected the alphabet in quotes, e.g. "01"; got {alphabet.text!r}', alphabet.start, alphabet.end
            )
        letters = str(alphabet.value)
        _spec(lambda: check_alphabet(letters), alphabet.start, toks)
        lo, hi = _lengths(toks)
        return _spec(lambda: StrSpec(letters, lo, hi), tok.start, toks)
    toks.expect("[", "`[` after list, e.g. list[int in 0..9] len 8")
    elem = _domain(toks, depth + 1)
    toks.expect("]", "`]` to close the element type")
    lo, hi = _lengths(toks)
    return _spec(lambda: ListSpec(elem, lo, hi), tok.start, toks)


def _spec(build: Callable[[], T], start: int, toks: Cursor) -> T:
    """Build (or check) a spec; a SpecError points from `start` to the last token read."""
    try:
        return build()
    except SpecError as e:
        end = toks.tokens[toks.i - 1].end if toks.i else start + 1
        raise Problem(str(e), start, max(end, start + 1)) from None


def _signed_int(toks: Cursor, what: str) -> int:
    tok = toks.next(what)
    sign = 1
    if tok.text in ("-", "+"):
        sign = -1 if tok.text == "-" else 1
        tok = toks.next(what)
    if tok.kind != "int" or not isinstance(tok.value, int):
        raise Problem(f"expected {what} (a whole number), got {tok.text!r}", tok.start, tok.end)
    return sign * tok.value


def _length(toks: Cursor, what: str) -> int:
    tok = toks.next(what)
    if tok.kind != "int" or not isinstance(tok.value, int):
        raise Problem(f"expected a length (a whole number), got {tok.text!r}", tok.start, tok.end)
    return tok.value


def _lengths(toks: Cursor) -> tuple[int, int]:
    toks.expect("len", "`len` and the lengths, e.g. len 8 or len 1..12")
    first = toks.i
    lo = hi = _length(toks, "a length, e.g. len 8 or len 1..12")
    nxt = toks.peek()
    if nxt is not None and nxt.text == "..":
        toks.i += 1
        hi = _length(toks, "the largest length")
    _spec(lambda: check_lengths(lo, hi), toks.tokens[first].start, toks)
    return lo, hi


# --- expressions -------------------------------------------------------------------------------


def _condition(code: str, start: int, line_no: int) -> Condition:
    text = code[start:]
    expr = parse_expression(text, ColumnMap(line_no, start))
    return Condition(expr, text.strip(), Span(line_no, start + 1, len(code) + 1))


def _where(code: str, start: int, line_no: int, parsed: ParsedFile, diags: Diagnostics) -> None:
    parsed.wheres.append(_condition(code, start, line_no))


def _expect(code: str, start: int, line_no: int, parsed: ParsedFile, diags: Diagnostics) -> None:
    if code[start:].strip() != "?":  # `expect ?`: a question (as is a theory with no `expect`)
        parsed.expect = _condition(code, start, line_no)


def _slice(code: str, start: int, line_no: int, parsed: ParsedFile, diags: Diagnostics) -> None:
    name: str | None = None
    expr_start = start
    if code[start] in QUOTES:
        lit = scan_string(code, start)
        j = lit.end
        while j < len(code) and code[j].isspace():
            j += 1
        if j < len(code) and code[j] == ":":
            name = lit.value
            if not name.strip():
                raise Problem("the slice's name must not be empty", lit.start, lit.end)
            expr_start = j + 1
            if not code[expr_start:].strip():
                raise Problem("expected a condition after the slice's name", j, j + 1)
    cond = _condition(code, expr_start, line_no)
    name = name if name is not None else cond.source
    _check_unique(parsed, name, start, len(code))
    parsed.slices.append(SliceDecl(name, cond, Span(line_no, start + 1, len(code) + 1)))


def _check_unique(parsed: ParsedFile, name: str, start: int, end: int) -> None:
    """Slices and splits are reported side by side: their names must differ."""
    for kind, earlier in (("slice", parsed.slices), ("split", parsed.splits)):
        line = next((s.span.line for s in earlier if s.name == name), None)
        if line is not None:
            raise Problem(f"a {kind} named {name!r} is already on line {line}", start, end)


def _split(code: str, start: int, line_no: int, parsed: ParsedFile, diags: Diagnostics) -> None:
    example = 'e.g. split train from "train.jsonl"'
    cur = Cursor(list(tokenize(code, start)), len(code))
    name = cur.next(f"the split's name, {example}")
    if name.kind != "name":
        raise Problem(f"expected the split's name, {example}; got {name.text!r}", name.start, name.end)
    cur.expect("from", f"`from` and the file in quotes, {example}")
    file = cur.next(f"the file in quotes, {example}")
    if file.kind != "string" or not str(file.value).strip():
        raise Problem(f"expected the file in quotes, {example}; got {file.text!r}", file.start, file.end)
    extra = cur.peek()
    if extra is not None:
        raise Problem(f"unexpected {extra.text!r} after the file", extra.start, len(code))
    _check_unique(parsed, name.text, name.start, name.end)
    keyword_at = len(code) - len(code.lstrip())
    parsed.splits.append(SplitDecl(name.text, str(file.value), Span(line_no, keyword_at + 1, len(code) + 1)))


def _claim(code: str, start: int, line_no: int, parsed: ParsedFile, diags: Diagnostics) -> None:
    parsed.claims.append(parse_claim(code, start, len(code), line_no))


# --- prompt ------------------------------------------------------------------------------------


def _prompt(code: str, start: int, line_no: int, parsed: ParsedFile, diags: Diagnostics) -> None:
    lit = _single_string(code, start, "prompt")
    parsed.prompt = parse_template(lit, line_no, diags)


def parse_template(lit: StringToken, line_no: int, diags: Diagnostics) -> Template:
    """Split a decoded template into text and `{expr}` placeholders (`{{`/`}}` are braces).

    A bad placeholder is reported and the rest of the template is still parsed.
    """
    value = lit.value
    parts: list[TemplatePart] = []
    text: list[str] = []
    i = 0
    n = len(value)

    def span(a: int, b: int) -> Span:
        return Span(line_no, lit.starts[a] + 1, lit.ends[b - 1] + 1)

    while i < n:
        ch = value[i]
        if ch == "}":
            if i + 1 < n and value[i + 1] == "}":
                text.append("}")
                i += 2
                continue
            diags.add(span(i, i + 1), "single `}` in the prompt: write `}}` for a literal brace")
            i += 1
            continue
        if ch != "{":
            text.append(ch)
            i += 1
            continue
        if i + 1 < n and value[i + 1] == "{":
            text.append("{")
            i += 2
            continue
        end, spec_at = _scan_placeholder(value, i + 1)
        if end < 0:
            diags.add(span(i, i + 1), "unclosed `{` in the prompt: close the placeholder, or write `{{` for a brace")
            break
        if text:
            parts.append("".join(text))
            text = []
        placeholder = _placeholder(lit, i, end, spec_at, line_no, span(i, end + 1), diags)
        if placeholder is not None:
            parts.append(placeholder)
        i = end + 1
    if text:
        parts.append("".join(text))
    return Template(Span(line_no, lit.start + 1, lit.end + 1), tuple(parts))


def _placeholder(
    lit: StringToken, open_at: int, close_at: int, spec_at: int | None, line_no: int, whole: Span, diags: Diagnostics
) -> Placeholder | None:
    source = lit.value[open_at + 1 : close_at]
    if not source.strip():
        diags.add(whole, "empty placeholder `{}`: put an expression inside, e.g. {a}")
        return None
    if spec_at is not None:
        diags.add(
            Span(line_no, lit.starts[spec_at] + 1, lit.ends[close_at - 1] + 1),
            "format specs such as {x:3} or {x!r} are not supported; use str(), base() or join()",
        )
        return None
    cmap = ColumnMap(
        line_no, 0, lit.starts[open_at + 1 : close_at], lit.ends[open_at + 1 : close_at], lit.starts[close_at]
    )
    try:
        expr = parse_expression(source, cmap)
    except ExprError as e:
        diags.expr_error(e)
        return None
    return Placeholder(whole, expr, source.strip())


def _scan_placeholder(value: str, start: int) -> tuple[int, int | None]:
    """(index of the `}` closing the placeholder that starts at `start` or -1, index of its
    first top-level `:` or `!` (not `!=`) as in {x:3} or {x!r}, or None)."""
    depth = 0
    quote: str | None = None
    spec_at: int | None = None
    k = start
    while k < len(value):
        c = value[k]
        if quote is not None:
            if c == "\\":
                k += 1
            elif c == quote:
                quote = None
        elif c in QUOTES:
            quote = c
        elif c in "([{":
            depth += 1
        elif c == "}" and depth == 0:
            return k, spec_at
        elif c in ")]}":
            depth = max(depth - 1, 0)
        elif depth == 0 and spec_at is None and (c == ":" or (c == "!" and not value.startswith("!=", k))):
            spec_at = k
        k += 1
    return -1, None


_HANDLERS = {
    "theory": _theory,
    "input": _input,
    "where": _where,
    "prompt": _prompt,
    "expect": _expect,
    "slice": _slice,
    "split": _split,
    "claim": _claim,
}
