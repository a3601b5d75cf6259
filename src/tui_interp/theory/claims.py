"""`claim` lines: mechanistic statements about components, checked later by intervention.

The grammar is in LANGUAGE.md and on each claim's node class (nodes.py). Each claim kind takes
the one comparison that fits its meaning (`below` for needs, `above` for suffices and
attends); the other is an error rather than a silent inversion. This module parses the words
of a line (lexer.words); checking a claim against a model belongs to the engine.
"""

from __future__ import annotations

import re
from typing import Literal

from tui_interp.components import is_glob, parse_component
from tui_interp.errors import ComponentError
from tui_interp.theory.lexer import Cursor, Problem, Token, words
from tui_interp.theory.limits import (
    ABLATIONS,
    DEFAULT_ABLATION,
    DEFAULT_ATTENDS_ABOVE,
    DEFAULT_NEEDS_BELOW,
    DEFAULT_SUFFICES_ABOVE,
)
from tui_interp.theory.nodes import (
    AttendsClaim,
    Claim,
    ComponentRef,
    LabelClaim,
    NeedsClaim,
    Position,
    Span,
    SufficesClaim,
    Threshold,
)

KINDS = ("needs", "suffices", "attends", "label")
_GLOB_CHARS = re.compile(r"[A-Za-z0-9_.*?\[\]-]+")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)%?")
_INDEX = re.compile(r"[-+]?\d+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_claim(line: str, start: int, stop: int, line_no: int) -> Claim:
    """Parse the text of a claim (after the `claim` keyword); raises Problem with offsets."""
    tokens = words(line, start, stop)
    cur = Cursor(tokens, stop, line_no)
    if not tokens:
        raise Problem(f"`claim` needs a kind: {', '.join(KINDS)}", start)
    head = cur.next("a claim kind")
    text = line[tokens[0].start : stop].strip()
    span = Span(line_no, tokens[0].start + 1, stop + 1)
    if head.kind != "word" or head.text not in KINDS:
        raise Problem(f"unknown claim {head.text!r}: expected one of {', '.join(KINDS)}", head.start, head.end)
    if head.text in ("needs", "suffices"):
        return _ablation_claim(head.text, cur, text, span)
    if head.text == "attends":
        return _attends_claim(cur, text, span)
    return _label_claim(cur, text, span)


def _component(word: Token, cur: Cursor, *, glob_ok: bool) -> ComponentRef:
    if word.kind != "word":
        raise Problem(f"expected a component id such as L0.mlp, got {word.text}", word.start, word.end)
    if glob_ok and is_glob(word.text):
        if not _GLOB_CHARS.fullmatch(word.text):
            raise Problem(f"malformed component pattern {word.text!r}", word.start, word.end)
        return ComponentRef(word.text, cur.span(word), True)
    try:
        parse_component(word.text)
    except ComponentError as e:
        raise Problem(str(e), word.start, word.end) from None
    return ComponentRef(word.text, cur.span(word), False)


_CLAUSES = ("using", "above", "below")


def _ablation_claim(kind: str, cur: Cursor, text: str, span: Span) -> Claim:
    components: list[ComponentRef] = []
    expect_item = True
    while (word := cur.peek()) is not None and not (word.kind == "word" and word.text in _CLAUSES):
        cur.i += 1
        if word.text == "," and word.kind == "op":
            if expect_item:
                raise Problem("expected a component before `,`", word.start, word.end)
            expect_item = True
            continue
        components.append(_component(word, cur, glob_ok=True))
        expect_item = False
    if not components:
        raise Problem(f"`claim {kind}` needs at least one component, e.g. claim {kind} L0.mlp", cur.end)
    if expect_item:
        raise Problem("expected a component after `,`", cur.end)
    wanted: Literal["above", "below"] = "below" if kind == "needs" else "above"
    default = DEFAULT_NEEDS_BELOW if kind == "needs" else DEFAULT_SUFFICES_ABOVE
    ablation, threshold = _clauses(cur, kind, wanted, default, allow_using=True)
    cls = NeedsClaim if kind == "needs" else SufficesClaim
    return cls(text, span, tuple(components), ablation, threshold)


def _clauses(
    cur: Cursor, kind: str, wanted: Literal["above", "below"], default: float, *, allow_using: bool
) -> tuple[str, Threshold]:
    ablation: str | None = None
    threshold: Threshold | None = None
    while (word := cur.peek()) is not None:
        cur.i += 1
        if word.kind == "word" and word.text == "using" and allow_using:
            if ablation is not None:
                raise Problem("`using` is given twice", word.start, word.end)
            method = cur.next(f"an ablation after `using`: {', '.join(ABLATIONS)}")
            if method.text not in ABLATIONS:
                raise Problem(
                    f"unknown ablation {method.text!r}: expected {', '.join(ABLATIONS)}", method.start, method.end
                )
            ablation = method.text
        elif word.kind == "word" and word.text in ("above", "below"):
            if threshold is not None:
                raise Problem("the threshold is given twice", word.start, word.end)
            if word.text != wanted:
                raise Problem(
                    f"`claim {kind}` takes `{wanted} X`, not `{word.text}`: {_MEANING[kind]}", word.start, word.end
                )
            number = cur.next(f"a number after `{word.text}`, e.g. {word.text} 0.5 or {word.text} 50%")
            value = _threshold_value(number)
            threshold = Threshold(wanted, value, True, Span(cur.line_no, word.start + 1, number.end + 1))
        else:
            allowed = "`using ...` or " if allow_using else ""
            raise Problem(f"unexpected {word.text!r}: expected {allowed}`{wanted} X`", word.start, word.end)
    return ablation or DEFAULT_ABLATION, threshold or Threshold(wanted, default, False)


_MEANING = {
    "needs": "with the components ablated, agreement must fall below X",
    "suffices": "with every other component ablated, agreement must stay above X",
    "attends": "the head's mean attention must be above X",
}


def _threshold_value(word: Token) -> float:
    if word.kind != "word" or not _NUMBER.fullmatch(word.text):
        raise Problem(f"expected a number from 0 to 1 or a percentage, got {word.text}", word.start, word.end)
    value = float(word.text[:-1]) / 100 if word.text.endswith("%") else float(word.text)
    if not 0.0 <= value <= 1.0:
        raise Problem(f"a threshold must be from 0 to 1 (or 0% to 100%), got {word.text}", word.start, word.end)
    return value


def _position(cur: Cursor, after: str) -> Position:
    word = cur.next(f'a position after `{after}`: token text in quotes ("="), an input name, or an index (-1)')
    span = cur.span(word)
    if word.kind == "string":
        if not word.value:
            raise Problem("the token text must not be empty", word.start, word.end)
        return Position("text", str(word.value), span)
    if word.kind == "word" and _INDEX.fullmatch(word.text):
        return Position("index", int(word.text), span)
    if word.kind == "word" and _NAME.fullmatch(word.text):
        return Position("input", word.text, span)
    raise Problem(
        f'expected token text in quotes ("="), an input name, or an index (-1), got {word.text}', word.start, word.end
    )


def _attends_claim(cur: Cursor, text: str, span: Span) -> Claim:
    word = cur.next("an attention head, e.g. claim attends L0.H2 from -1 to a")
    head = _component(word, cur, glob_ok=False)
    if parse_component(head.text).kind != "head":
        raise Problem(f"`claim attends` needs an attention head such as L0.H2, got {head.text}", word.start, word.end)
    keyword = cur.next("`from`")
    if keyword.text != "from":
        raise Problem(f"expected `from`, got {keyword.text}", keyword.start, keyword.end)
    source = _position(cur, "from")
    keyword = cur.next("`to`")
    if keyword.text != "to":
        raise Problem(f"expected `to`, got {keyword.text}", keyword.start, keyword.end)
    target = _position(cur, "to")
    _, threshold = _clauses(cur, "attends", "above", DEFAULT_ATTENDS_ABOVE, allow_using=False)
    return AttendsClaim(text, span, head, source, target, threshold)


def _label_claim(cur: Cursor, text: str, span: Span) -> Claim:
    word = cur.next('a component and a label, e.g. claim label L0.H2 "previous token"')
    component = _component(word, cur, glob_ok=False)
    name = cur.next('the label in quotes, e.g. "previous token"')
    if name.kind != "string":
        raise Problem(f'expected the label in quotes, e.g. "previous token", got {name.text}', name.start, name.end)
    if not str(name.value).strip():
        raise Problem("the label must not be empty", name.start, name.end)
    extra = cur.peek()
    if extra is not None:
        raise Problem(f"unexpected {extra.text!r} after the label", extra.start, extra.end)
    return LabelClaim(text, span, component, str(name.value))
