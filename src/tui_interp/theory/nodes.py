"""Frozen syntax nodes of the theory language, each with the span it came from.

A span is one line of the file: `line`, `col` and `end_col` are 1-based and `end_col` is
exclusive, counted in characters of the original line (inside a prompt template the columns
of a placeholder's expression point into the string literal, escapes included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tui_interp.theory.domain import Spec


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node is: 1-based line and columns; `end_col` is exclusive."""

    line: int
    col: int
    end_col: int

    def to(self, other: Span) -> Span:
        """The span from the start of self to the end of other (same line)."""
        return Span(self.line, self.col, max(self.end_col, other.end_col))


# --- expressions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expr:
    """Base of every expression node."""

    span: Span


@dataclass(frozen=True, slots=True)
class IntLit(Expr):
    value: int


@dataclass(frozen=True, slots=True)
class StrLit(Expr):
    value: str


@dataclass(frozen=True, slots=True)
class BoolLit(Expr):
    value: bool


@dataclass(frozen=True, slots=True)
class Name(Expr):
    id: str


UnaryOp = Literal["-", "+", "~", "not"]
BinaryOp = Literal["+", "-", "*", "//", "%", "**", "<<", ">>", "&", "|", "^"]
LogicOp = Literal["and", "or"]


@dataclass(frozen=True, slots=True)
class Unary(Expr):
    op: UnaryOp
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    op: BinaryOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class BoolOp(Expr):
    op: LogicOp
    values: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    """`a < b <= c`: ops[i] compares operands[i] with operands[i + 1]."""

    operands: tuple[Expr, ...]
    ops: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IfElse(Expr):
    """`body if test else orelse`."""

    test: Expr
    body: Expr
    orelse: Expr


@dataclass(frozen=True, slots=True)
class Index(Expr):
    value: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class SliceOf(Expr):
    value: Expr
    lower: Expr | None
    upper: Expr | None
    step: Expr | None


@dataclass(frozen=True, slots=True)
class ListLit(Expr):
    """A list literal; tuple literals `(a, b)` are lists too."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Call(Expr):
    func: str
    func_span: Span
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Generator:
    """One `for target in iter if cond...` clause of a comprehension."""

    target: str
    target_span: Span
    iter: Expr
    conds: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Comprehension(Expr):
    """`[elt for x in xs if c]` or the generator form `(elt for x in xs)`: both build a list."""

    elt: Expr
    generators: tuple[Generator, ...]


def iter_nodes(expr: Expr) -> Iterator[Expr]:
    """The expression and every expression inside it."""
    yield expr
    for f in dataclasses.fields(expr):
        value = getattr(expr, f.name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Expr):
                yield from iter_nodes(item)
            elif isinstance(item, Generator):
                for sub in (item.iter, *item.conds):
                    yield from iter_nodes(sub)


def node_count(expr: Expr) -> int:
    return sum(1 for _ in iter_nodes(expr))


# --- prompt template ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placeholder:
    """`{expr}` inside a prompt template; `source` is the expression's text."""

    span: Span
    expr: Expr
    source: str


TemplatePart = str | Placeholder


@dataclass(frozen=True, slots=True)
class Template:
    """A prompt template: literal text and placeholders, in order."""

    span: Span
    parts: tuple[TemplatePart, ...]

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))

    @property
    def literal_text(self) -> str:
        """The template with every placeholder removed (what is always in the prompt)."""
        return "".join(p for p in self.parts if isinstance(p, str))


# --- directives --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputDecl:
    """`input name: domain`; `span` is the name, `domain_span` the domain text."""

    name: str
    span: Span
    spec: Spec
    domain_span: Span


@dataclass(frozen=True, slots=True)
class Condition:
    """An expression directive (`where`, `expect`, `slice`): its expression and source text."""

    expr: Expr
    source: str
    span: Span


@dataclass(frozen=True, slots=True)
class SliceDecl:
    """`slice "name": expr` or `slice expr` (then the name is the expression's text)."""

    name: str
    cond: Condition
    span: Span


@dataclass(frozen=True, slots=True)
class SplitDecl:
    """`split NAME from "FILE"`: `file` as written; `span` covers the directive."""

    name: str
    file: str
    span: Span


# --- claims ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComponentRef:
    """A component id or glob as written (`L0.mlp`, `L*.H*`); resolved against a model later."""

    text: str
    span: Span
    is_glob: bool


@dataclass(frozen=True, slots=True)
class Threshold:
    """`above 0.9` / `below 50%`: the value is a fraction in [0, 1].

    `explicit` is False when the claim did not say and the default applies.
    """

    op: Literal["above", "below"]
    value: float
    explicit: bool
    span: Span | None = None

    def holds(self, measured: float) -> bool:
        """Whether a measured value satisfies this threshold (strictly above or below)."""
        return measured > self.value if self.op == "above" else measured < self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True, slots=True)
class Position:
    """Where an `attends` claim looks: token text (`"="`), an input's placeholder, or an index.

    kind "text": every position whose token text equals `value` (a str);
    kind "input": the positions of the prompt rendered from placeholders that use input `value`;
    kind "index": the token at that index (`-1` is the last).
    """

    kind: Literal["text", "input", "index"]
    value: str | int
    span: Span


@dataclass(frozen=True, slots=True)
class Claim:
    """Base of every claim: `text` is the line after `claim`, `span` covers it."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class NeedsClaim(Claim):
    """`claim needs C, ... [using zero|mean|resample] [below X]`.

    Ablating all of `components` together makes agreement fall below `threshold`.
    """

    components: tuple[ComponentRef, ...]
    ablation: str
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class SufficesClaim(Claim):
    """`claim suffices C, ... [using zero|mean|resample] [above X]`.

    Ablating every component not listed keeps agreement above `threshold`.
    """

    components: tuple[ComponentRef, ...]
    ablation: str
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class AttendsClaim(Claim):
    """`claim attends L.H from X to Y [above X]`: mean attention of head from X to Y."""

    head: ComponentRef
    source: Position
    target: Position
    threshold: Threshold


@dataclass(frozen=True, slots=True)
class LabelClaim(Claim):
    """`claim label C "name"`: the label store holds this label for the component."""

    component: ComponentRef
    label: str
