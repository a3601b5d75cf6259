"""Rule recovery: search the theory language for the `expect` a model computes (issue 14).

Given an answer table (inputs, and the text answered for each: the model's greedy answers, or a
split file's answers), find expressions whose rendered value is that text:

- bottom-up enumeration by size (the number of expression nodes, as the parser counts them:
  `(a + b) % 113` is 5, `-1` is 2), over the inputs, small constants (0..3, 10, the domain's
  bounds and lengths, the answers' range, short alphabets' characters), the language's
  operators and built-in functions;
- type-directed: only well-typed expressions are built (`len` of a str or list, `+` of two ints,
  two strs or two lists, `xs[i]` of a list and an int, ...);
- pruned by observational equivalence: an expression whose value on every row equals that of an
  expression already kept is dropped, so each behaviour is kept once, by its smallest expression.

Values are vectors over the rows. Ints and bools are numpy arrays (the narrowest of int16, int32,
int64 that holds them; every int operation is bounded by interval arithmetic first, and any value
beyond +-2^40 is refused, so nothing overflows); strs and lists are tuples of Python values.
Operations mirror the language's semantics (Python's); an expression that fails on any row (a
division by zero, an index out of range, `int("x")`) is dropped, as the theory would fail there.
Deliberate narrowings, to keep the search small (each can be widened; none changes what an
expression means): `//`, `%`, `**`, `<<`, `>>` take a constant on the right; arithmetic on two
constants is not built (constants come from the grammar); negative constants are -1, -2, -3;
strs and lists are indexed and sliced by constants or by an input, and searched (`count`,
`index`, `in`) for expressions of size 1 or 2; `str(a)` and `base(a, b)` apply to inputs, and
only where text is in play (str or list inputs, or answers that are text); `join` uses the
separators "", "," and " "; comprehensions are `[f(x) for x in xs]` and `[x for x in xs if
p(x)]` over lists of ints, with f and p from a catalogue (x + c, x - c, x * c, x // c, x % c,
x > c, x < c, x == c, x % 2 == 0, x % 2 == 1, for the grammar's constants c). Within a size,
expressions of a type that can match an answer are built first (an exact match ends the search
sooner); at the largest size only those are built, since nothing larger uses the others.

Ranking: agreement (rows whose rendered value equals the answer, with the answer's surrounding
whitespace removed, over the counted rows), then agreement on the rows not counted (a split's
inputs added outside a sample), then size, then the order found. Candidates that render the
same text on every row as a better one (`list(max(list(s)))` after `max(list(s))`) are not shown. Every candidate
reported is checked with the theory machinery: the question with the candidate as its `expect`
line parses and type-checks (`parse_theory`), and the theory evaluator renders, on every row,
the same text the search computed. A candidate that fails the check is dropped and counted
(`rejected`): it would be a bug here.

The search stops when every size up to `max_size` is done; when the budget (seconds or
expressions) runs out; when `cancel()` turns true (Cancelled is raised); or at the first
candidate that agrees on every counted row: nothing can rank above it, since any other such
expression has the same value on those rows and is pruned as equivalent. Progress events say
how many expressions were tried and the best so far; the result says why it stopped.

The search is a pure function of (AnswerTable, Grammar, SearchBudget): no model inside, so it
can be sharded or run on answers from anywhere:

    info, rows = answer_table(lm, theory)                     # engine/table.py
    table = AnswerTable.from_rows(theory, rows)               # the model's answers
    table = AnswerTable.from_split(theory, "train")           # or a split file's answers, no model
    grammar = Grammar.for_theory(theory, table, max_size=7)
    result = search_rules(table, grammar, SearchBudget(seconds=30))

    for event in iter_recover(lm, theory): ...                # table Progress, SearchProgress, RecoverResult
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import logging
import math
import operator
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tui_interp.engine.answers import Cancelled
from tui_interp.engine.compare import MAX_WORK, Progress
from tui_interp.errors import InputError, TheoryError, TuiInterpError
from tui_interp.theory import (
    Assignment,
    IntRange,
    ListSpec,
    Spec,
    StrSpec,
    Theory,
    TheoryEvalError,
    parse_theory,
    render_value,
)
from tui_interp.theory.functions import FUNCTIONS
from tui_interp.theory.runtime import Budget as StepBudget
from tui_interp.theory.runtime import EvalFailure
from tui_interp.theory.types import BOOL, INT, STR, BoolType, IntType, ListType, StrType, Type, describe, is_orderable, is_renderable

log = logging.getLogger(__name__)

__all__ = [
    "AnswerTable",
    "Candidate",
    "Grammar",
    "RecoverResult",
    "SearchBudget",
    "SearchProgress",
    "SliceAgreement",
    "iter_recover",
    "iter_search",
    "recover",
    "search_rules",
    "with_expect",
]

DEFAULT_MAX_SIZE = 7
DEFAULT_SECONDS = 30.0
DEFAULT_TOP = 5
DEFAULT_MIN_AGREEMENT = 0.95
DEFAULT_ENUMERATE = 20_000  # recover enumerates domains up to this many inputs...
DEFAULT_SAMPLE = 1_000  # ...and draws this many from larger ones (each answer is a model run)
DEFAULT_MEMORY_MB = 512  # subexpression values kept for building larger ones

VALUE_LIMIT = 1 << 40  # the search refuses int values beyond +-this (no operation can overflow int64)
SMALL_INTS = (0, 1, 2, 3, 10)
MAX_INT_CONSTANTS = 16
MAX_ALPHABET_CONSTANTS = 16  # a str alphabet this short gives its characters as constants
SEPARATORS = ("", ",", " ")
_PROBE_ROWS = 256  # rows whose values key the observational-equivalence buckets
_CHECK_EVERY = 128  # candidates between two looks at the clock and the cancel flag
_PROGRESS_SECONDS = 0.25
_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_DIRECTIVE = re.compile(r"\s*(expect|prompt)(?=[\s?#]|$)")

# precedence of what an expression's text ends with at its top (Python's, low to high)
_P_IF, _P_OR, _P_AND, _P_NOT, _P_CMP, _P_BOR, _P_XOR, _P_BAND, _P_SHIFT, _P_ADD, _P_MUL, _P_UNARY, _P_POW, _P_ATOM = range(14)


# --- the answer table ------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerTable:
    """Inputs and the text answered for each: what the search explains.

    `counted[i]`: row i counts in agreement (rows added only to measure a split are not);
    `slices`: named row sets agreement is also reported on, as (name, membership per row);
    `source`/`path`: the question's text and file (split files are found beside it), used to
    check candidates with the theory machinery and to write them out as theories. Plain data:
    picklable, so a search can be shipped to another process.
    """

    names: tuple[str, ...]
    types: tuple[Type, ...]
    inputs: tuple[Assignment, ...]
    answers: tuple[str | None, ...]
    counted: tuple[bool, ...]
    slices: tuple[tuple[str, tuple[bool, ...]], ...]
    description: str
    source: str
    path: str | None = None

    def __post_init__(self) -> None:
        n = len(self.inputs)
        if len(self.answers) != n or len(self.counted) != n or any(len(m) != n for _, m in self.slices):
            raise InputError("internal: an answer table's columns have different lengths")

    @property
    def n_counted(self) -> int:
        return sum(self.counted)

    @classmethod
    def from_answers(
        cls,
        theory: Theory,
        inputs: Sequence[Mapping[str, Any]],
        answers: Sequence[str | None],
        *,
        counted: Sequence[bool] | None = None,
        splits: Sequence[Sequence[str]] | None = None,
        description: str | None = None,
        normalized: bool = False,
    ) -> AnswerTable:
        """A table of these inputs (normalised by the theory's domain, unless `normalized` says
        they already are, as table rows and split inputs are) and answer texts.

        `splits[i]`: the names of the splits row i is in (default: looked up in the theory's
        split files); each split gives the slices `NAME` and `not NAME`, and each `slice` line
        of the theory its two sides."""
        if len(inputs) != len(answers):
            raise InputError(f"{len(inputs):,} inputs but {len(answers):,} answers")
        rows = tuple(dict(x) if normalized else theory.domain.normalize(x) for x in inputs)
        counted_t = tuple(bool(c) for c in counted) if counted is not None else (True,) * len(rows)
        if splits is None:
            members = [tuple(s.name for s in theory.splits if s.has_key(tuple(x.values()))) for x in rows]
        else:
            members = [tuple(m) for m in splits]
        slices: list[tuple[str, tuple[bool, ...]]] = []
        for s in theory.slices:
            inside = [bool(s.predicate(x)) for x in rows]
            slices += [(s.name, tuple(v and c for v, c in zip(inside, counted_t, strict=True))),
                       (f"not ({s.name})", tuple(not v and c for v, c in zip(inside, counted_t, strict=True)))]
        for sp in theory.splits:
            inside = tuple(sp.name in m for m in members)
            slices += [(sp.name, inside), (f"not {sp.name}", tuple(not v and c for v, c in zip(inside, counted_t, strict=True)))]
        return cls(
            names=theory.input_names,
            types=tuple(d.spec.type for d in theory.inputs),
            inputs=rows,
            answers=tuple(answers),
            counted=counted_t,
            slices=tuple(slices),
            description=description if description is not None else f"{len(rows):,} given inputs",
            source=theory.source,
            path=theory.path,
        )

    @classmethod
    def from_rows(
        cls,
        theory: Theory,
        rows: Sequence[Any],
        *,
        answer: str = "got",
        counted: Sequence[bool] | None = None,
        description: str | None = None,
    ) -> AnswerTable:
        """A table from engine.table rows (TableRow): each row's `got` (the model's answer) or,
        with answer="answer", its split file's answer (rows without one are left out)."""
        if answer not in ("got", "answer"):
            raise InputError(f"answer must be 'got' or 'answer', got {answer!r}")
        keep = [i for i, r in enumerate(rows) if getattr(r, answer) is not None]
        return cls.from_answers(
            theory,
            [rows[i].input for i in keep],
            [getattr(rows[i], answer) for i in keep],
            counted=None if counted is None else [counted[i] for i in keep],
            splits=[rows[i].splits for i in keep],
            description=description,
            normalized=True,  # they came out of theory.evaluate
        )

    @classmethod
    def from_split(cls, theory: Theory, name: str) -> AnswerTable:
        """The inputs of one split file with the answers it gives (no model involved): what an
        audit may look at."""
        split = next((s for s in theory.splits if s.name == name), None)
        if split is None:
            known = ", ".join(s.name for s in theory.splits) or "none"
            raise InputError(f"theory {theory.name!r} has no split {name!r} (its splits: {known})")
        inputs = split.inputs()
        answers = [split.answer(x) for x in inputs]
        keep = [i for i, a in enumerate(answers) if a is not None]
        if not keep:
            raise InputError(f"split {name!r} ({split.path.name}) gives no answers: add an `answer` column")
        return cls.from_answers(
            theory,
            [inputs[i] for i in keep],
            [answers[i] for i in keep],
            description=f"the {len(keep):,} rows of split {name!r} with the answers in {split.path.name}",
            normalized=True,
        )

    def subset(self, rows: Sequence[int], description: str | None = None) -> AnswerTable:
        """The table restricted to these row indices (in this order)."""
        pick = list(rows)
        return replace(
            self,
            inputs=tuple(self.inputs[i] for i in pick),
            answers=tuple(self.answers[i] for i in pick),
            counted=tuple(self.counted[i] for i in pick),
            slices=tuple((name, tuple(m[i] for i in pick)) for name, m in self.slices),
            description=description if description is not None else f"{len(pick):,} rows of {self.description}",
        )


# --- the grammar and the budget ----------------------------------------------------------------


@dataclass(frozen=True)
class Grammar:
    """What the search builds expressions from: the inputs, constants, and the largest size."""

    inputs: tuple[tuple[str, Type], ...]
    ints: tuple[int, ...] = SMALL_INTS
    strs: tuple[str, ...] = ()
    separators: tuple[str, ...] = SEPARATORS
    max_size: int = DEFAULT_MAX_SIZE

    def __post_init__(self) -> None:
        if self.max_size < 1:
            raise InputError(f"the largest expression size must be at least 1, got {self.max_size}")
        if any(abs(c) > VALUE_LIMIT for c in self.ints):
            raise InputError(f"int constants must lie within +-2^40, got {max(self.ints, key=abs)}")

    @classmethod
    def for_theory(
        cls,
        theory: Theory,
        table: AnswerTable | None = None,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        ints: Sequence[int] = (),
        strs: Sequence[str] = (),
    ) -> Grammar:
        """Constants from the theory's domains (int bounds and the bound + 1, list and str
        lengths, the characters of short alphabets), from the table's answers (the smallest,
        the largest and the largest + 1 when most answers are ints; up to four distinct short
        texts otherwise), the small ints 0..3 and 10, and any given."""
        found: list[int] = [*SMALL_INTS, *ints]
        texts: list[str] = list(strs)
        for d in theory.inputs:
            _spec_constants(d.spec, found, texts)
        if table is not None:
            _answer_constants(table, found, texts)
        bounded = [c for c in dict.fromkeys(found) if abs(c) <= VALUE_LIMIT]
        small = [c for c in bounded if c in SMALL_INTS or c in ints]
        rest = sorted((c for c in bounded if c not in small), key=abs)
        chosen = sorted(set(small + rest[: max(0, MAX_INT_CONSTANTS - len(small))]))
        return cls(
            inputs=tuple((d.name, d.spec.type) for d in theory.inputs),
            ints=tuple(chosen),
            strs=tuple(dict.fromkeys(texts)),
            max_size=max_size,
        )

    def describe(self) -> str:
        strs = ", ".join(repr(s) for s in self.strs)
        return (f"inputs {', '.join(n for n, _ in self.inputs)}; int constants {', '.join(map(str, self.ints))}"
                + (f"; str constants {strs}" if strs else "") + f"; sizes up to {self.max_size}")


def _spec_constants(spec: Spec, ints: list[int], strs: list[str]) -> None:
    if isinstance(spec, IntRange):
        ints += [spec.lo, spec.hi, spec.hi + 1]
    elif isinstance(spec, ListSpec):
        ints += [spec.min_len, spec.max_len, spec.max_len - 1]  # lengths, and the last index
        _spec_constants(spec.elem, ints, strs)
    elif isinstance(spec, StrSpec):
        ints += [spec.min_len, spec.max_len, spec.max_len - 1]
        if len(spec.alphabet) <= MAX_ALPHABET_CONSTANTS:
            strs += list(spec.alphabet)


def _answer_constants(table: AnswerTable, ints: list[int], strs: list[str]) -> None:
    texts = [a.strip() for a, c in zip(table.answers, table.counted, strict=True) if a is not None and c]
    numbers = [int(t) for t in texts if _CANONICAL_INT.fullmatch(t) and len(t) <= 13]
    if texts and len(numbers) >= len(texts) / 2:
        ints += [min(numbers), max(numbers), max(numbers) + 1]
        return
    distinct = list(dict.fromkeys(t for t in texts if t not in ("True", "False")))
    if 0 < len(distinct) <= 4 and all(len(t) <= 16 for t in distinct):
        strs += distinct


@dataclass(frozen=True)
class SearchBudget:
    """When the search stops even if sizes remain: seconds, expressions tried, memory for the
    values of subexpressions (beyond it, larger expressions are built from those kept)."""

    seconds: float = DEFAULT_SECONDS
    expressions: int | None = None
    memory_mb: int = DEFAULT_MEMORY_MB

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise InputError(f"the search budget must be more than 0 seconds, got {self.seconds}")
        if self.expressions is not None and self.expressions < 1:
            raise InputError(f"the expression budget must be at least 1, got {self.expressions}")


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceAgreement:
    name: str
    n: int
    agreement: float | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "agreement": self.agreement}


@dataclass(frozen=True)
class Candidate:
    """An `expect` expression and how well it explains the answers."""

    expect: str
    agreement: float  # over the counted rows
    n_agree: int
    size: int  # expression nodes, as the parser counts them
    type: str  # int, bool, str, list[int], ...
    slices: tuple[SliceAgreement, ...] = ()
    found_after: int = 0  # expressions tried when it was found
    found_seconds: float = 0.0  # seconds into the search when it was found

    def to_json(self) -> dict[str, Any]:
        return {
            "expect": self.expect,
            "agreement": self.agreement,
            "size": self.size,
            "type": self.type,
            "n_agree": self.n_agree,
            "slices": [s.to_json() for s in self.slices],
            "found_after": self.found_after,
            "found_seconds": self.found_seconds,
        }


@dataclass(frozen=True)
class SearchProgress:
    """How the search is going: for a progress bar and a "best so far" line."""

    size: int  # the size being enumerated
    max_size: int
    tried: int  # expressions built and evaluated
    distinct: int  # behaviours kept
    best: str | None
    best_agreement: float | None
    best_size: int | None
    seconds: float  # since the search started
    phase: str = "search"

    @property
    def done(self) -> int:
        return self.tried

    @property
    def total(self) -> None:
        return None

    @property
    def rate(self) -> float:
        return self.tried / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class RecoverResult:
    candidates: tuple[Candidate, ...]  # best first
    explained: bool  # the best candidate reaches min_agreement
    min_agreement: float
    searched: int  # expressions tried
    distinct: int  # distinct behaviours kept
    seconds: float  # the whole run (answers, search and check)
    search_seconds: float  # the enumeration
    check_seconds: float  # checking the candidates shown with the theory evaluator
    stopped: str  # "exact", "max-size", "time", "expressions"
    stop_note: str  # why it stopped, in words
    complete_size: int  # every expression up to this size was tried
    max_size: int
    n_rows: int  # rows counted in agreement
    table: str  # what the answers were, in words
    grammar: str  # what was searched, in words
    theory: str | None  # the best candidate as a complete theory, ready to save
    notes: tuple[str, ...] = ()
    rejected: int = 0  # candidates that failed the check with the theory machinery (a bug if any)
    question: str = ""
    model_name: str = ""
    fingerprint: str = ""
    table_seconds: float = 0.0

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "question": self.question,
            "candidates": [c.to_json() for c in self.candidates],
            "explained": self.explained,
            "min_agreement": self.min_agreement,
            "searched": self.searched,
            "distinct": self.distinct,
            "seconds": self.seconds,
            "search_seconds": self.search_seconds,
            "check_seconds": self.check_seconds,
            "table_seconds": self.table_seconds,
            "stopped": self.stopped,
            "stop_note": self.stop_note,
            "complete_size": self.complete_size,
            "max_size": self.max_size,
            "n_inputs": self.n_rows,
            "selection": self.table,
            "grammar": self.grammar,
            "theory": self.theory,
            "notes": list(self.notes),
            "rejected": self.rejected,
        }
        if self.model_name:
            doc["model"] = {"name": self.model_name, "fingerprint": self.fingerprint}
        return doc


# --- theory text -------------------------------------------------------------------------------


def with_expect(source: str, expect: str, comment: str = "") -> str:
    """The theory text with `expect EXPR` in place of its `expect` line (or `expect ?`), or,
    for a question without one, right after the `prompt` line."""
    line = f"expect {expect}" + (f"    # {comment}" if comment else "")
    lines = source.splitlines()
    out: list[str] = []
    placed = False
    for text in lines:
        m = _DIRECTIVE.match(text)
        if m and m.group(1) == "expect":
            if not placed:
                out.append(line)
                placed = True
            continue
        out.append(text)
    if not placed:
        at = next((i + 1 for i, text in enumerate(out) if (m := _DIRECTIVE.match(text)) and m.group(1) == "prompt"), len(out))
        out.insert(at, line)
    return "\n".join(out) + "\n"


# --- the search --------------------------------------------------------------------------------


class _Entry:
    """One kept expression: its text, size, type and value on every row."""

    __slots__ = ("_rows", "banked", "candidate", "const", "digest", "found_after", "found_seconds", "hi", "lo", "pooled", "prec", "size",
                 "text", "type", "value")

    def __init__(self, type_: Type, text: str, prec: int, size: int, value: Any, lo: int = 0, hi: int = 0,
                 const: bool = False, candidate: bool = True) -> None:
        self.type = type_
        self.text = text
        self.prec = prec
        self.size = size
        self.value = value
        self.lo = lo
        self.hi = hi
        self.const = const
        self.candidate = candidate
        self._rows: list[Any] | None = None
        self.banked = False  # kept for building larger expressions
        self.pooled = False  # among the best candidates so far
        self.digest: Any = None  # stands in for the value once it is dropped (neither banked nor pooled)
        self.found_after = 0
        self.found_seconds = 0.0

    def rows(self) -> list[Any]:
        """The values as Python objects, one per row."""
        if self._rows is None:
            self._rows = self.value.tolist() if isinstance(self.value, np.ndarray) else list(self.value)
        return self._rows

    def wrap(self, prec: int, strict: bool = False) -> str:
        """The text, parenthesised when it binds less tightly than `prec` needs."""
        return f"({self.text})" if self.prec < prec or (strict and self.prec == prec) else self.text


def _is_int(t: Type) -> bool:
    return isinstance(t, IntType)


def _is_bool(t: Type) -> bool:
    return isinstance(t, BoolType)


def _is_numeric(t: Type) -> bool:
    return isinstance(t, (IntType, BoolType))


def _is_scalar(t: Type) -> bool:
    return isinstance(t, (IntType, BoolType, StrType))


def _dtype(lo: int, hi: int) -> type:
    if -(1 << 15) <= lo and hi < (1 << 15):
        return np.int16
    if -(1 << 31) <= lo and hi < (1 << 31):
        return np.int32
    return np.int64


@functools.cache
def _promote(*dtypes: Any) -> Any:
    return functools.reduce(np.promote_types, dtypes)


def _fits(lo: int, hi: int) -> bool:
    return -VALUE_LIMIT <= lo and hi <= VALUE_LIMIT


# int binary operations: symbol -> (precedence, commutative)
_INT_OPS: dict[str, tuple[int, bool]] = {
    "+": (_P_ADD, True),
    "-": (_P_ADD, False),
    "*": (_P_MUL, True),
    "//": (_P_MUL, False),
    "%": (_P_MUL, False),
    "**": (_P_POW, False),
    "<<": (_P_SHIFT, False),
    ">>": (_P_SHIFT, False),
    "&": (_P_BAND, True),
    "|": (_P_BOR, True),
    "^": (_P_XOR, True),
    "min": (_P_ATOM, True),
    "max": (_P_ATOM, True),
}
_BY_CONSTANT = frozenset({"//", "%", "**", "<<", ">>"})  # the right side must be a constant


def _int_bound(op: str, x: _Entry, y: _Entry) -> tuple[int, int] | None:
    """Bounds of `x op y` from the operands' bounds; None when the operation is not built."""
    xl, xh, yl, yh = x.lo, x.hi, y.lo, y.hi
    if op == "+":
        return xl + yl, xh + yh
    if op == "-":
        return xl - yh, xh - yl
    if op == "*":
        corners = (xl * yl, xl * yh, xh * yl, xh * yh)
        return min(corners), max(corners)
    if op == "min":
        return min(xl, yl), min(xh, yh)
    if op == "max":
        return max(xl, yl), max(xh, yh)
    if op in ("&", "|", "^"):
        bits = max(abs(xl), abs(xh), abs(yl), abs(yh)).bit_length()
        if xl >= 0 and yl >= 0:
            return 0, (1 << bits) - 1
        return -(1 << bits), (1 << bits) - 1
    c = yl  # a constant, by the rules in _int_pair
    if op == "//":
        q = (xl // c, xh // c)
        return min(q), max(q)
    if op == "%":
        return (0, c - 1) if c > 0 else (c + 1, 0)
    if op == "**":
        if max(abs(xl), abs(xh)).bit_length() * c > 42:
            return None
        if xl >= 0 or c % 2 == 1:  # monotonic
            return xl**c, xh**c
        return (0 if xh >= 0 else xh**c), max(xl**c, xh**c)
    if op == "<<":
        return xl << c, xh << c
    if op == ">>":
        return xl >> c, xh >> c
    return None


def _int_apply(op: str, a: np.ndarray, b: np.ndarray, c: int) -> np.ndarray:
    """`a op b` on int arrays already in a dtype that holds the result; `c` is b's value when b is a constant."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "//":
        return a // c
    if op == "%":
        return a - (a // c) * c  # Python's modulo (the sign of the divisor); faster than np.remainder
    if op == "**":
        return a**c
    if op == "<<":
        return a << c
    if op == ">>":
        return a >> c
    if op == "&":
        return a & b
    if op == "|":
        return a | b
    if op == "^":
        return a ^ b
    if op == "min":
        return np.minimum(a, b)
    return np.maximum(a, b)


_LOOP_VARS = ("x", "v", "e", "y", "z", "w", "item", "elem")


@dataclass(frozen=True)
class _ElementFn:
    """An expression of a comprehension's loop variable (`{v}` in `text`), for ints."""

    text: str
    size: int
    fn: Callable[[int], Any]
    type: Type


def _element_fns(constants: Sequence[int]) -> list[_ElementFn]:
    """x + c, x - c, x * c, x // c, x % c, x > c, x < c, x == c for the grammar's constants, and
    x % 2 == 0, x % 2 == 1; smallest first."""
    out = [
        _ElementFn("{v} % 2 == 0", 5, lambda v: v % 2 == 0, BOOL),
        _ElementFn("{v} % 2 == 1", 5, lambda v: v % 2 == 1, BOOL),
    ]
    for c in constants:
        if c < 0:
            continue
        if c >= 1:
            out += [_ElementFn(f"{{v}} + {c}", 3, lambda v, c=c: v + c, INT), _ElementFn(f"{{v}} - {c}", 3, lambda v, c=c: v - c, INT)]
        if c >= 2:
            out += [_ElementFn(f"{{v}} * {c}", 3, lambda v, c=c: v * c, INT), _ElementFn(f"{{v}} // {c}", 3, lambda v, c=c: v // c, INT),
                    _ElementFn(f"{{v}} % {c}", 3, lambda v, c=c: v % c, INT)]
        out += [_ElementFn(f"{{v}} > {c}", 3, lambda v, c=c: v > c, BOOL), _ElementFn(f"{{v}} < {c}", 3, lambda v, c=c: v < c, BOOL),
                _ElementFn(f"{{v}} == {c}", 3, lambda v, c=c: v == c, BOOL)]
    return sorted(out, key=lambda f: f.size)


def _rowwise(fn: Callable[..., Any], *columns: Sequence[Any]) -> list[Any] | None:
    """fn over the rows; None when it fails on any row (as the theory would)."""
    try:
        return list(map(fn, *columns))
    except (ValueError, IndexError, TypeError, ZeroDivisionError, OverflowError, EvalFailure, RecursionError):
        return None


def _base(n: int, b: int) -> str:
    return FUNCTIONS["base"].impl(StepBudget(), n, b)


def _ord(s: str) -> int:
    if len(s) != 1:
        raise ValueError("ord of a str that is not one character")
    return ord(s)


def _join(sep: str) -> Callable[[tuple[Any, ...]], str]:
    return lambda xs: sep.join(render_value(x) for x in xs)


def _index(seq: Any, x: Any) -> int:
    return seq.index(x)


_NO_INT = -(1 << 62)  # an answer that is no int; no candidate value is ever this


class _Answers:
    """Answer texts (None: never matched) in the forms candidates of each type compare with."""

    def __init__(self, texts: list[str | None]) -> None:
        self.texts = texts
        self.ints = np.array([int(t) if t is not None and len(t) <= 13 and _CANONICAL_INT.fullmatch(t) else _NO_INT for t in texts],
                             dtype=np.int64)
        self.narrow: dict[Any, tuple[np.ndarray, int]] = {}
        for dt in (np.int16, np.int32):
            top = int(np.iinfo(dt).max)
            valid = (self.ints >= np.iinfo(dt).min) & (self.ints < top)
            # rows whose answer this dtype cannot hold get its largest value, which a candidate below it never has
            self.narrow[np.dtype(dt)] = (np.where(valid, self.ints, top).astype(dt), top)
        self.bools = np.array([1 if t == "True" else 0 if t == "False" else 2 for t in texts], dtype=np.int8)
        self.int_lists = [_int_list(t) for t in texts]

    def score(self, t: Type, v: Any, hi: int) -> int | None:
        """How many rows the values' rendered text matches; None for a type that renders to no text."""
        if _is_int(t):
            narrow = self.narrow.get(v.dtype)
            if narrow is not None and hi < narrow[1]:
                return int(np.count_nonzero(v == narrow[0]))
            return int(np.count_nonzero(v == self.ints))
        if _is_bool(t):
            return int(np.count_nonzero(v.view(np.int8) == self.bools))
        if isinstance(t, StrType):
            return sum(map(operator.eq, v, self.texts))
        if isinstance(t, ListType) and _is_int(t.elem):
            return sum(map(operator.eq, v, self.int_lists))
        if isinstance(t, ListType) and isinstance(t.elem, StrType):
            return sum(map(operator.eq, map(" ".join, v), self.texts))
        if is_renderable(t):
            return sum(map(operator.eq, map(render_value, v), self.texts))
        return None


class _Search:
    """One run of the enumeration over a table (see the module docstring)."""

    def __init__(self, table: AnswerTable, grammar: Grammar, budget: SearchBudget, cancel: Callable[[], bool]) -> None:
        self.table = table
        self.grammar = grammar
        self.budget = budget
        self.cancel = cancel
        self.n = len(table.inputs)
        if self.n == 0:
            raise InputError("the answer table has no rows")
        missing = [name for name, _ in grammar.inputs if name not in table.names]
        if missing:
            raise InputError(f"the grammar's inputs {missing} are not columns of the answer table")
        self.max_size = grammar.max_size
        self.levels: list[dict[Type, list[_Entry]]] = [{} for _ in range(self.max_size + 2)]
        self.seen: dict[Type, dict[Any, list[_Entry]]] = {}
        rng = np.random.default_rng(0)
        self.probe = np.sort(rng.choice(self.n, size=min(self.n, _PROBE_ROWS), replace=False))
        self.tried = 0
        self.distinct = 0
        self.order = 0
        self.pool: list[tuple[int, int, int, int, _Entry]] = []  # min-heap of the best (n_agree, extra, -size, -order)
        self.pool_size = 64
        self.exact_at: int | None = None
        self.memory = 0
        self.memory_full_at: int | None = None
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + budget.seconds
        self.complete_size = 0
        self.size = 0
        self._answers(table)
        max_len = 1
        for t, name in zip(table.types, table.names, strict=True):
            if isinstance(t, (StrType, ListType)):
                max_len = max([max_len, *(len(x[name]) for x in table.inputs)])
        self.max_len = max(64, 4 * max_len)  # longest str or list the search builds
        # ints of inputs become text (str(a), base(a, 2)) only where text is in play: str or list inputs, or
        # answers that are neither ints nor bools
        texty = (self.counted_answers.ints == _NO_INT) & (self.counted_answers.bools == 2)
        self.texty_answers = bool(np.count_nonzero(texty))
        self.text_ops = any(isinstance(t, (StrType, ListType)) for t in table.types) or bool(np.count_nonzero(texty) > self.n // 2)
        self.loop_var = next(v for v in _LOOP_VARS if v not in table.names)
        self.element_fns = _element_fns(grammar.ints) if any(isinstance(t, ListType) for t in table.types) else []
        self.phase = 0  # 0: build everything; 1: only types that can match an answer; 2: only the others
        self.like: dict[Type, bool] = {}

    # -- answers --

    def _answers(self, table: AnswerTable) -> None:
        """The answers in the forms candidates compare with. Agreement counts the counted rows;
        the others (inputs added to measure a split) break ties between equal agreements."""
        texts = [a.strip() if a is not None else None for a in table.answers]
        self.counted_answers = _Answers([t if c else None for t, c in zip(texts, table.counted, strict=True)])
        extra = [i for i, (t, c) in enumerate(zip(texts, table.counted, strict=True)) if t is not None and not c]
        self.extra = np.array(extra, dtype=np.int64)
        self.extra_answers = _Answers([texts[i] for i in extra]) if extra else None
        self.bool_answers = bool(np.count_nonzero(self.counted_answers.bools != 2))
        self.n_counted = table.n_counted

    def _score(self, e: _Entry) -> int | None:
        """How many counted rows the candidate's rendered value matches; None: not a candidate."""
        return self.counted_answers.score(e.type, e.value, e.hi)

    def _extra_score(self, e: _Entry) -> int:
        """How many of the rows not counted (a split's inputs outside the sample) it matches."""
        if self.extra_answers is None:
            return 0
        v = e.value[self.extra] if isinstance(e.value, np.ndarray) else [e.value[i] for i in self.extra.tolist()]
        return self.extra_answers.score(e.type, v, e.hi) or 0

    # -- keeping expressions --

    def _key(self, t: Type, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            probe = value.take(self.probe)
            return probe.astype(np.int64, copy=False).tobytes() if _is_int(t) else probe.tobytes()
        return hash(value)

    def _offer(self, t: Type, value: Any, text: str | Callable[[], str], prec: int, size: int, *,
               lo: int = 0, hi: int = 0, candidate: bool = True) -> _Entry | None:
        """Keep the expression unless a kept one has the same value on every row."""
        bucket = self.seen.setdefault(t, {}).setdefault(self._key(t, value), [])
        digest = None
        for other in bucket:
            if other.value is None:  # dropped: compare digests
                digest = digest if digest is not None else _digest(value)
                if other.digest == digest:
                    return None
            elif isinstance(value, np.ndarray):
                if bool((other.value == value).all()):
                    return None
            elif other.value == value:
                return None
        const = False
        if _is_int(t):
            lo, hi = int(value.min()), int(value.max())
            if not _fits(lo, hi):
                return None
            dt = _dtype(lo, hi)
            if value.dtype != dt:
                value = value.astype(dt)
            const = lo == hi
        elif _is_bool(t):
            const = bool(value.all()) or not bool(value.any())
        else:
            const = all(v == value[0] for v in value)
        e = _Entry(t, text if isinstance(text, str) else text(), prec, size, value, lo, hi, const, candidate)
        self.order += 1
        self.distinct += 1
        e.found_after = self.tried
        e.found_seconds = time.perf_counter() - self.t0
        bucket.append(e)
        if size < self.max_size:
            self._bank(e)
        if candidate:
            self._consider(e)
        if not e.banked and not e.pooled:
            self._drop(e)
        return e

    @staticmethod
    def _drop(e: _Entry) -> None:
        """Free the value of an expression nothing will build on or show; keep a digest for
        observational equivalence (a 128-bit hash: a false match is beyond unlikely)."""
        e.digest = _digest(e.value)
        e.value = None
        e._rows = None

    def _bank(self, e: _Entry) -> None:
        """Keep e's value for building larger expressions, within the memory budget."""
        cost = e.value.nbytes if isinstance(e.value, np.ndarray) else 64 * self.n
        if self.memory + cost > self.budget.memory_mb * (1 << 20):
            if self.memory_full_at is None:
                self.memory_full_at = e.size
            return
        self.memory += cost
        e.banked = True
        self.levels[e.size].setdefault(e.type, []).append(e)

    def _consider(self, e: _Entry) -> None:
        if not is_renderable(e.type):
            return
        score = self._score(e)
        if score is None:
            return
        item = (score, self._extra_score(e), -e.size, -self.order, e)
        if len(self.pool) < self.pool_size:
            heapq.heappush(self.pool, item)
            e.pooled = True
        elif item[:4] > self.pool[0][:4]:
            out = heapq.heapreplace(self.pool, item)[4]
            e.pooled = True
            out.pooled = False
            if not out.banked:
                self._drop(out)
        if score == self.n_counted and self.n_counted > 0 and self.exact_at is None:
            self.exact_at = e.size

    def best(self) -> _Entry | None:
        return max(self.pool, key=lambda item: item[:4])[4] if self.pool else None

    def bank(self, size: int, t: Type) -> list[_Entry]:
        return self.levels[size].get(t, []) if 0 < size < len(self.levels) else []

    def kinds(self, size: int) -> list[tuple[Type, list[_Entry]]]:
        return list(self.levels[size].items()) if 0 < size < len(self.levels) else []

    # -- the levels --

    def run(self) -> Iterator[SearchProgress | str]:
        """Enumerate size by size; yields progress, and finally why it stopped."""
        last = time.perf_counter()
        most = self.budget.expressions if self.budget.expressions is not None else math.inf
        yield self._progress()
        for size in range(1, self.max_size + 1):
            self.size = size
            k = 0
            for _ in self._level(size):
                self.tried += 1
                k += 1
                if self.exact_at is not None:
                    yield self._progress()
                    yield "exact"
                    return
                if self.tried >= most:
                    yield self._progress()
                    yield "expressions"
                    return
                if k % _CHECK_EVERY == 0:
                    now = time.perf_counter()
                    if self.cancel():
                        raise Cancelled("rule search cancelled")
                    if now > self.deadline:
                        yield "time"
                        return
                    if now - last > _PROGRESS_SECONDS:
                        last = now
                        yield self._progress()
            self.complete_size = size
            yield self._progress()
            if time.perf_counter() > self.deadline:
                yield "time"
                return
        yield "max-size"

    def _progress(self) -> SearchProgress:
        best = self.best()
        return SearchProgress(
            size=self.size,
            max_size=self.max_size,
            tried=self.tried,
            distinct=self.distinct,
            best=best.text if best else None,
            best_agreement=(self._best_score() / self.n_counted) if best and self.n_counted else None,
            best_size=best.size if best else None,
            seconds=time.perf_counter() - self.t0,
        )

    def _best_score(self) -> int:
        return max(item[0] for item in self.pool) if self.pool else 0

    def _level(self, s: int) -> Iterator[None]:
        if s == 1:
            yield from self._terminals()
            return
        # first what can match the answers, then (below the largest size) what only builds larger expressions
        for phase in (1, 2) if s < self.max_size else (1,):
            self.phase = phase
            yield from self._unary(s - 1)
            yield from self._comprehensions(s)
            yield from self._joins(s - 2)
            for left in range(s - 2, 0, -1):
                yield from self._binary(left, s - 1 - left)
            yield from self._ternary(s - 1)
        self.phase = 0

    def _wanted(self, t: Type) -> bool:
        """Whether this pass builds values of type t (pass 1: those that can match an answer)."""
        if self.phase == 0:
            return True
        like = self.like.get(t)
        if like is None:
            like = self.like[t] = self._answer_like(t)
        return like if self.phase == 1 else not like

    def _answer_like(self, t: Type) -> bool:
        answers = self.counted_answers
        if _is_int(t):
            return bool(np.count_nonzero(answers.ints != _NO_INT))
        if _is_bool(t):
            return self.bool_answers
        if isinstance(t, ListType) and _is_int(t.elem):
            return any(v is not None and len(v) != 1 for v in answers.int_lists)
        return is_renderable(t) and self.texty_answers

    def _terminals(self) -> Iterator[None]:
        by_name = {name: [x[name] for x in self.table.inputs] for name in self.table.names}
        for name, t in self.grammar.inputs:
            values = by_name[name]
            if _is_int(t):
                self._offer(t, np.array(values, dtype=np.int64), name, _P_ATOM, 1)
            elif _is_bool(t):
                self._offer(t, np.array(values, dtype=bool), name, _P_ATOM, 1)
            else:
                self._offer(t, tuple(values), name, _P_ATOM, 1)
            yield
        for c in self.grammar.ints:
            if c >= 0:  # a negative literal is `-` applied to one: size 2
                self._offer(INT, np.full(self.n, c, dtype=np.int64), str(c), _P_ATOM, 1)
                yield
        for text in self.grammar.strs:
            self._offer(STR, (text,) * self.n, _str_literal(text), _P_ATOM, 1)
            yield

    # unary operations and one-argument calls: child of size c (the result has size c + 1)
    def _unary(self, c: int) -> Iterator[None]:
        s = c + 1
        for t, entries in self.kinds(c):
            for x in entries:
                if _is_int(t):
                    if self._wanted(INT) and (not x.const or (x.size == 1 and x.lo in (1, 2, 3))):
                        self._offer(INT, -x.value.astype(_dtype(-x.hi, -x.lo), copy=False), lambda x=x: "-" + x.wrap(_P_UNARY, True),
                                    _P_UNARY, s)
                        yield
                    if x.const:
                        continue
                    if x.lo < 0 and self._wanted(INT):
                        self._offer(INT, np.abs(x.value.astype(_dtype(0, max(-x.lo, x.hi)), copy=False)), f"abs({x.text})", _P_ATOM, s)
                        yield
                    if x.size == 1 and self.text_ops and self._wanted(STR):  # str(a) of an input: its digits (of larger ints, rarely a rule and costly)
                        self._offer(STR, tuple(map(str, x.rows())), f"str({x.text})", _P_ATOM, s, candidate=False)
                        yield
                elif _is_bool(t):
                    if x.const:
                        continue
                    if self._wanted(BOOL):
                        self._offer(BOOL, ~x.value, lambda x=x: "not " + x.wrap(_P_NOT, True), _P_NOT, s)
                        yield
                    if self._wanted(INT):
                        self._offer(INT, x.value.astype(np.int16), f"int({x.text})", _P_ATOM, s)
                        yield
                elif isinstance(t, StrType):
                    if x.const:
                        continue
                    yield from self._rows1(INT, len, f"len({x.text})", s, x)
                    yield from self._rows1(INT, int, f"int({x.text})", s, x)
                    yield from self._rows1(INT, _ord, f"ord({x.text})", s, x)
                    yield from self._rows1(STR, operator.itemgetter(slice(None, None, -1)), f"reversed({x.text})", s, x)
                    yield from self._rows1(ListType(STR), tuple, f"list({x.text})", s, x)
                elif isinstance(t, ListType):
                    if x.const:
                        continue
                    elem = t.elem
                    yield from self._rows1(INT, len, f"len({x.text})", s, x)
                    if _is_numeric(elem):
                        yield from self._rows1(INT, sum, f"sum({x.text})", s, x)
                    if is_orderable(elem):
                        yield from self._rows1(elem, min, f"min({x.text})", s, x)
                        yield from self._rows1(elem, max, f"max({x.text})", s, x)
                        yield from self._rows1(t, lambda v: tuple(sorted(v)), f"sorted({x.text})", s, x)
                    yield from self._rows1(t, operator.itemgetter(slice(None, None, -1)), f"reversed({x.text})", s, x)
                    if _is_bool(elem):
                        yield from self._rows1(BOOL, any, f"any({x.text})", s, x)
                        yield from self._rows1(BOOL, all, f"all({x.text})", s, x)

    def _comprehensions(self, s: int) -> Iterator[None]:
        """`[f(x) for x in xs]` and `[x for x in xs if p(x)]` over lists of ints, with f and p from
        a fixed catalogue of element expressions (x + c, x % c, x > c, x % 2 == 0, ...)."""
        for fn in self.element_fns:
            for form in ("map", "filter"):
                if form == "filter" and not _is_bool(fn.type):
                    continue
                size = s - 1 - fn.size - (form == "filter")
                for t, lists in self.kinds(size):
                    if not (isinstance(t, ListType) and _is_int(t.elem)):
                        continue
                    for xs in lists:
                        if xs.const:
                            continue
                        body = fn.text.format(v=self.loop_var)
                        it = xs.wrap(_P_OR, True)
                        if form == "map":
                            text = f"[{body} for {self.loop_var} in {it}]"
                            yield from self._rows1(ListType(fn.type), lambda row, f=fn.fn: tuple(map(f, row)), text, s, xs)
                        else:
                            text = f"[{self.loop_var} for {self.loop_var} in {it} if {body}]"
                            yield from self._rows1(t, lambda row, f=fn.fn: tuple(v for v in row if f(v)), text, s, xs)

    def _joins(self, c: int) -> Iterator[None]:
        """join(xs, SEP): the list of size c, the separator 1."""
        for t, entries in self.kinds(c):
            if not (isinstance(t, ListType) and _is_scalar(t.elem)):
                continue
            for x in entries:
                if x.const:
                    continue
                for sep in self.grammar.separators:
                    # joined by " ", a list renders as itself: the same answer, a larger expression
                    plain = sep == " "
                    yield from self._rows1(STR, _join(sep), f"join({x.text}, {_str_literal(sep)})", c + 2, x, candidate=not plain)

    def _rows1(self, t: Type, fn: Callable[[Any], Any], text: str, size: int, x: _Entry, candidate: bool = True) -> Iterator[None]:
        if not self._wanted(t):
            return
        values = _rowwise(fn, x.rows())
        if values is not None:
            self._offer_rows(t, values, text, _P_ATOM, size, candidate)
        yield

    def _offer_rows(self, t: Type, values: list[Any], text: str | Callable[[], str], prec: int, size: int, candidate: bool = True) -> None:
        """Offer Python values, one per row: ints and bools as arrays, the rest as a tuple."""
        if _is_int(t):
            if any(isinstance(v, int) and abs(v) > VALUE_LIMIT for v in values):
                return
            self._offer(t, np.array(values, dtype=np.int64), text, prec, size, candidate=candidate)
        elif _is_bool(t):
            self._offer(t, np.array(values, dtype=bool), text, prec, size, candidate=candidate)
        else:
            if values and isinstance(values[0], (str, tuple)) and max(map(len, values)) > self.max_len:
                return
            self._offer(t, tuple(values), text, prec, size, candidate=candidate)

    # binary operations: left child of size l, right of size r (the result has size l + r + 1)
    def _binary(self, l: int, r: int) -> Iterator[None]:
        s = l + r + 1
        yield from self._int_pairs(l, r, s)
        yield from self._bool_pairs(l, r, s)
        yield from self._seq_pairs(l, r, s)

    def _int_pairs(self, l: int, r: int, s: int) -> Iterator[None]:
        left, right = self.bank(l, INT), self.bank(r, INT)
        if not left or not right:
            return
        for op, (prec, commutative) in _INT_OPS.items() if self._wanted(INT) else ():
            if commutative and l < r:
                continue  # built the other way round
            self_pairs = op in ("+", "*")  # a + a and a * a mean something; a & a, min(a, a) do not
            for i, x in enumerate(left):
                if x.const and (commutative or op in _BY_CONSTANT):
                    continue
                for j, y in enumerate(right):
                    if commutative and l == r and (j < i or (j == i and not self_pairs)):
                        continue
                    if not self._int_pair_ok(op, x, y):
                        continue
                    bound = _int_bound(op, x, y)
                    if bound is None or not _fits(*bound):
                        continue
                    dt = _promote(x.value.dtype, y.value.dtype, _dtype(*bound))
                    a = x.lo if x.const else x.value.astype(dt, copy=False)
                    b = y.lo if y.const else y.value.astype(dt, copy=False)
                    value = _int_apply(op, a, b, y.lo)
                    if op in ("min", "max"):
                        text: str | Callable[[], str] = f"{op}({x.text}, {y.text})"
                    elif op == "**":
                        text = f"{x.wrap(prec, True)} ** {y.wrap(prec)}"
                    else:
                        text = lambda x=x, y=y, op=op, prec=prec: f"{x.wrap(prec)} {op} {y.wrap(prec, True)}"  # noqa: E731
                    self._offer(INT, value, text, prec, s)
                    yield
        yield from self._int_compares(left, right, l, r, s)

    @staticmethod
    def _int_pair_ok(op: str, x: _Entry, y: _Entry) -> bool:
        """Which int operations are built: not on two constants, not the identities (x + 0,
        x * 1, x // 1, ...), and with a constant on the right where the language would
        otherwise mostly fail or explode (//, %, **, <<, >>)."""
        if x.const and y.const:
            return False
        c = y.lo if y.const else None
        if op in _BY_CONSTANT:
            if c is None or x.const:
                return False
            if op in ("//", "%"):
                return c not in (0, 1, -1)
            if op == "**":
                return 2 <= c <= 4
            return 1 <= c <= 32
        if op in ("+", "-", "&", "|", "^"):
            return c != 0 and not (x.const and x.lo == 0)
        if op == "*":
            return c not in (0, 1, -1) and not (x.const and x.lo in (0, 1, -1))
        return True

    def _int_compares(self, left: list[_Entry], right: list[_Entry], l: int, r: int, s: int) -> Iterator[None]:
        if not self._wanted(BOOL):
            return
        for i, x in enumerate(left):
            if x.const:
                continue
            for j, y in enumerate(right):
                if y is x:
                    continue
                a, b = x.value, (y.lo if y.const else y.value)
                if y.const or l > r or (l == r and j > i):  # == and != once per pair
                    for op, fn in (("==", operator.eq), ("!=", operator.ne)):
                        self._offer(BOOL, fn(a, b), lambda x=x, y=y, op=op: f"{x.wrap(_P_CMP, True)} {op} {y.wrap(_P_CMP, True)}", _P_CMP, s)
                        yield
                ops = (("<", operator.lt), ("<=", operator.le))
                if y.const:
                    ops += ((">", operator.gt), (">=", operator.ge))
                for op, fn in ops:
                    self._offer(BOOL, fn(a, b), lambda x=x, y=y, op=op: f"{x.wrap(_P_CMP, True)} {op} {y.wrap(_P_CMP, True)}", _P_CMP, s)
                    yield

    def _bool_pairs(self, l: int, r: int, s: int) -> Iterator[None]:
        if l < r or not self._wanted(BOOL):
            return
        left, right = self.bank(l, BOOL), self.bank(r, BOOL)
        for i, x in enumerate(left):
            if x.const:
                continue
            for j, y in enumerate(right):
                if y.const or (l == r and j <= i):
                    continue
                for op, fn, prec in (("and", operator.and_, _P_AND), ("or", operator.or_, _P_OR)):
                    self._offer(BOOL, fn(x.value, y.value), lambda x=x, y=y, op=op, prec=prec: f"{x.wrap(prec, True)} {op} {y.wrap(prec, True)}",
                                prec, s)
                    yield

    def _seq_pairs(self, l: int, r: int, s: int) -> Iterator[None]:
        """Strs and lists with something: concatenation, indexing, slicing, searching, repeating."""
        for t, lefts in self.kinds(l):
            if not isinstance(t, (StrType, ListType)):
                continue
            elem = STR if isinstance(t, StrType) else t.elem
            for x in lefts:
                # x + y
                for y in self.bank(r, t):
                    if x.const and y.const:
                        continue
                    yield from self._rows2(t, operator.add, lambda x=x, y=y: f"{x.wrap(_P_ADD)} + {y.wrap(_P_ADD, True)}", _P_ADD, s, x, y)
                if x.const:
                    continue
                for i in self.bank(r, INT):
                    # x[i], x[i:], x[:i]
                    if i.const:
                        c = i.lo
                        yield from self._rows1(elem, operator.itemgetter(c), f"{x.wrap(_P_ATOM)}[{i.text}]", s, x)
                        yield from self._rows1(t, operator.itemgetter(slice(c, None)), f"{x.wrap(_P_ATOM)}[{i.text}:]", s, x)
                        yield from self._rows1(t, operator.itemgetter(slice(None, c)), f"{x.wrap(_P_ATOM)}[:{i.text}]", s, x)
                        if isinstance(t, StrType) and 2 <= c <= 4:
                            yield from self._rows1(t, lambda v, c=c: v * c, f"{x.wrap(_P_MUL)} * {i.text}", s, x)
                    elif i.size == 1:  # by an input (by larger expressions: costly, and rarely a rule)
                        rows = i.rows()
                        yield from self._rows2(elem, operator.getitem, f"{x.wrap(_P_ATOM)}[{i.text}]", _P_ATOM, s, x, i, rows)
                        yield from self._rows2(t, lambda v, k: v[k:], f"{x.wrap(_P_ATOM)}[{i.text}:]", _P_ATOM, s, x, i, rows)
                        yield from self._rows2(t, lambda v, k: v[:k], f"{x.wrap(_P_ATOM)}[:{i.text}]", _P_ATOM, s, x, i, rows)
                # searches: count(x, y), index(x, y), y in x
                for y in self.bank(r, elem) if _is_scalar(elem) and r <= 2 else []:
                    if isinstance(t, StrType) and y.const and y.value[0] == "":
                        continue
                    yield from self._rows2(INT, lambda v, k: v.count(k), f"count({x.text}, {y.text})", _P_ATOM, s, x, y)
                    yield from self._rows2(INT, _index, f"index({x.text}, {y.text})", _P_ATOM, s, x, y)
                    yield from self._rows2(BOOL, lambda v, k: k in v, lambda x=x, y=y: f"{y.wrap(_P_CMP, True)} in {x.wrap(_P_CMP, True)}",
                                           _P_CMP, s, x, y)
            if isinstance(t, StrType):
                for i, x in enumerate(lefts):
                    for j, y in enumerate(self.bank(r, STR)):
                        if x.const or (l == r and j <= i) or l < r:
                            continue
                        yield from self._rows2(BOOL, operator.eq, lambda x=x, y=y: f"{x.wrap(_P_CMP, True)} == {y.wrap(_P_CMP, True)}", _P_CMP, s, x, y)
        # base(n, b), int(s, b): a constant base
        for x in self.bank(l, INT) if self.text_ops and l == 1 else []:
            if x.const:
                continue
            for b in self.bank(r, INT):
                if b.const and 2 <= b.lo <= 36 and b.lo != 10:
                    yield from self._rows1(STR, lambda v, k=b.lo: _base(v, k), f"base({x.text}, {b.text})", s, x)
        for x in self.bank(l, STR):
            if x.const:
                continue
            for b in self.bank(r, INT):
                if b.const and 2 <= b.lo <= 36 and b.lo != 10:
                    yield from self._rows1(INT, lambda v, k=b.lo: int(v, k), f"int({x.text}, {b.text})", s, x)

    def _rows2(self, t: Type, fn: Callable[[Any, Any], Any], text: str | Callable[[], str], prec: int, s: int, x: _Entry, y: _Entry,
               y_rows: list[Any] | None = None) -> Iterator[None]:
        if not self._wanted(t):
            return
        values = _rowwise(fn, x.rows(), y_rows if y_rows is not None else y.rows())
        if values is not None:
            self._offer_rows(t, values, text, prec, s)
        yield

    # three children: `a if c else b`, `x[i:j]`
    def _ternary(self, total: int) -> Iterator[None]:
        s = total + 1
        for sc in range(1, total - 1):
            for c in self.bank(sc, BOOL):
                if c.const:
                    continue
                cond = c.value
                for sa in range(1, total - sc):
                    sb = total - sc - sa
                    for t, bodies in self.kinds(sa):
                        if _is_bool(t) or not self._wanted(t):
                            continue
                        others = self.bank(sb, t)
                        for a in bodies:
                            for b in others:
                                if a is b:
                                    continue
                                text = lambda a=a, b=b, c=c: f"{a.wrap(_P_OR, True)} if {c.wrap(_P_OR, True)} else {b.wrap(_P_IF)}"  # noqa: E731
                                if _is_int(t):
                                    lo, hi = min(a.lo, b.lo), max(a.hi, b.hi)
                                    dt = _dtype(lo, hi)
                                    self._offer(INT, np.where(cond, a.value.astype(dt, copy=False), b.value.astype(dt, copy=False)), text, _P_IF, s)
                                else:
                                    self._offer(t, tuple(p if k else q for k, p, q in zip(c.rows(), a.value, b.value, strict=True)), text, _P_IF, s)
                                yield
        for si in range(1, total - 1):
            for sj in range(1, total - si):
                sx = total - si - sj
                for t, seqs in self.kinds(sx):
                    if not isinstance(t, (StrType, ListType)):
                        continue
                    for x in seqs:
                        if x.const:
                            continue
                        for i in self.bank(si, INT):
                            if not i.const:
                                continue
                            for j in self.bank(sj, INT):
                                if not j.const or j.lo == i.lo:
                                    continue
                                yield from self._rows1(t, operator.itemgetter(slice(i.lo, j.lo)), f"{x.wrap(_P_ATOM)}[{i.text}:{j.text}]", s, x)

    # -- the result --

    def candidates(self) -> list[_Entry]:
        return [item[4] for item in sorted(self.pool, key=lambda item: item[:4], reverse=True)]


def _digest(value: Any) -> Any:
    """A 128-bit digest of a value vector (ints as int64, so the dtype does not matter)."""
    if isinstance(value, np.ndarray):
        data = value.astype(np.int64, copy=False).tobytes() if value.dtype != bool else value.tobytes()
        return hashlib.blake2b(data, digest_size=16).digest()
    return hash(value), hashlib.blake2b(repr(value[:64]).encode(), digest_size=8).digest()


def _int_list(text: str | None) -> tuple[int, ...] | None:
    """The ints a rendered list of ints would show as this text, or None when no list of ints renders so."""
    if text is None:
        return None
    if text == "":
        return ()
    parts = text.split(" ")
    if all(len(p) <= 13 and _CANONICAL_INT.fullmatch(p) for p in parts):
        return tuple(int(p) for p in parts)
    return None


def _str_literal(text: str) -> str:
    from tui_interp.theory.render import format_value

    return format_value(text, limit=10_000)


# --- checking candidates with the theory machinery ----------------------------------------------


def _check(table: AnswerTable, entry: _Entry, fast: Sequence[str]) -> tuple[int, list[bool]] | None:
    """Check a candidate with the theory machinery: its size as the parser counts it, and which
    rows match. None when the question with it as `expect` does not parse and check, or the
    theory evaluator fails on a row or renders any row differently from `fast` (the search's
    values, rendered)."""
    from tui_interp.theory.evaluator import Compiled
    from tui_interp.theory.nodes import node_count

    text = with_expect(table.source, entry.text)
    try:
        theory = parse_theory(text, table.path)
    except TheoryError as e:
        log.warning("recover: candidate %r does not check: %s", entry.text, e)
        return None
    if theory.expect is None:
        log.warning("recover: candidate %r gave no expect line", entry.text)
        return None
    expect = Compiled(theory.expect.expr)  # checked by parse_theory; the table's inputs are normalised by the domain
    matches = []
    for x, mine, answer in zip(table.inputs, fast, table.answers, strict=True):
        try:
            real = expect.text(dict(x))[1]
        except TheoryEvalError as e:
            log.warning("recover: candidate %r fails on an input: %s", entry.text, e)
            return None
        if real != mine:
            log.warning("recover: candidate %r renders %r where the search computed %r", entry.text, real, mine)
            return None
        matches.append(answer is not None and real == answer.strip())
    size = node_count(theory.expect.expr)
    if size != entry.size:
        log.warning("recover: candidate %r has %d nodes; the search counted %d", entry.text, size, entry.size)
    return size, matches


def _slices(table: AnswerTable, matches: Sequence[bool]) -> tuple[SliceAgreement, ...]:
    out = []
    for name, members in table.slices:
        n = sum(members)
        agree = sum(m for m, inside in zip(matches, members, strict=True) if inside)
        out.append(SliceAgreement(name, n, agree / n if n else None))
    return tuple(out)


def iter_search(
    table: AnswerTable,
    grammar: Grammar,
    budget: SearchBudget | None = None,
    *,
    top: int = DEFAULT_TOP,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    cancel: Callable[[], bool] = lambda: False,
) -> Iterator[SearchProgress | RecoverResult]:
    """Yield SearchProgress events, then the RecoverResult (see the module docstring).
    Raises Cancelled when cancel() turns true."""
    budget = budget if budget is not None else SearchBudget()
    if top < 1:
        raise InputError(f"--top must be at least 1, got {top}")
    if not 0.0 <= min_agreement <= 1.0:
        raise InputError(f"--min-agreement must be within 0..1, got {min_agreement}")
    if table.n_counted == 0:
        raise InputError("no row of the answer table is counted: nothing to explain")
    search = _Search(table, grammar, budget, cancel)
    stopped = "max-size"
    for event in search.run():
        if isinstance(event, str):
            stopped = event
        else:
            yield event
    search_seconds = time.perf_counter() - search.t0
    chosen: list[Candidate] = []
    best_text: str | None = None
    rejected = 0
    n = table.n_counted
    shown: set[tuple[str, ...]] = set()
    for entry in search.candidates():
        if len(chosen) >= top:
            break
        fast = tuple(render_value(v) for v in entry.rows())
        if fast in shown:
            continue  # the same text on every row as a better one, from another type (`list(max(list(s)))` after `max(list(s))`)
        score = search._score(entry) or 0
        checked = _check(table, entry, fast)
        if checked is None:
            rejected += 1
            continue
        size, matches = checked
        n_agree = sum(m for m, c in zip(matches, table.counted, strict=True) if c)
        if n_agree != score:
            log.warning("recover: candidate %r: the theory agrees on %d rows, the search counted %d", entry.text, n_agree, score)
            rejected += 1
            continue
        shown.add(fast)
        chosen.append(Candidate(entry.text, n_agree / n, n_agree, size, describe(entry.type), _slices(table, matches),
                                entry.found_after, entry.found_seconds))
    if chosen:
        best_text = with_expect(table.source, chosen[0].expect, f"recovered: agrees on {chosen[0].agreement:.2%} of {table.description}")
    notes = []
    if search.memory_full_at is not None:
        notes.append(f"the values of subexpressions filled the memory budget ({budget.memory_mb} MiB) at size {search.memory_full_at}: "
                     "larger expressions were built from those kept until then")
    if rejected:
        notes.append(f"{rejected} candidate(s) failed the check with the theory evaluator and were dropped (a bug in the search)")
    explained = bool(chosen) and chosen[0].agreement >= min_agreement
    yield RecoverResult(
        candidates=tuple(chosen),
        explained=explained,
        min_agreement=min_agreement,
        searched=search.tried,
        distinct=search.distinct,
        seconds=time.perf_counter() - search.t0,
        search_seconds=search_seconds,
        check_seconds=time.perf_counter() - search.t0 - search_seconds,
        stopped=stopped,
        stop_note=_stop_note(stopped, search, budget),
        complete_size=search.complete_size,
        max_size=grammar.max_size,
        n_rows=n,
        table=table.description,
        grammar=grammar.describe(),
        theory=best_text,
        notes=tuple(notes),
        rejected=rejected,
    )


def _stop_note(stopped: str, search: _Search, budget: SearchBudget) -> str:
    done = search.complete_size
    upto = f"every expression up to size {done} was tried" if done else "no size was searched completely"
    if stopped == "exact":
        return (f"a candidate of size {search.exact_at} agrees on every row, so nothing can rank above it (another would have the "
                f"same value on every row, and be pruned as equivalent); {upto}")
    if stopped == "max-size":
        return f"{upto} (--max-size {search.max_size})"
    if stopped == "time":
        return f"the time budget ({budget.seconds:g} s) ran out while trying size {search.size}: {upto}"
    return f"the expression budget ({budget.expressions:,}) ran out while trying size {search.size}: {upto}"


def search_rules(
    table: AnswerTable,
    grammar: Grammar,
    budget: SearchBudget | None = None,
    *,
    top: int = DEFAULT_TOP,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    progress: Callable[[SearchProgress], None] | None = None,
    cancel: Callable[[], bool] = lambda: False,
) -> RecoverResult:
    """Run iter_search to the end (calling `progress` with each event) and return its result."""
    for event in iter_search(table, grammar, budget, top=top, min_agreement=min_agreement, cancel=cancel):
        if isinstance(event, RecoverResult):
            return event
        if progress is not None:
            progress(event)
    raise TuiInterpError("internal: the search ended without a result")


# --- with a model ------------------------------------------------------------------------------


def iter_recover(
    lm: Any,
    theory: Theory,
    *,
    limit: int = DEFAULT_ENUMERATE,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    answer_tokens: int | None = None,
    top: int = DEFAULT_TOP,
    max_size: int = DEFAULT_MAX_SIZE,
    seconds: float = DEFAULT_SECONDS,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    memory_mb: int = DEFAULT_MEMORY_MB,
    max_work: int = MAX_WORK,
    cancel: Callable[[], bool] = lambda: False,
) -> Iterator[Progress | SearchProgress | RecoverResult]:
    """Answer every input of the question's domain with the model (all of it when it has at
    most `limit` inputs, else a seeded uniform sample of `sample`; the split files' inputs are
    added to measure the splits, not counted), then search for the rule. Yields the table's
    Progress events, SearchProgress events, and finally the RecoverResult."""
    from tui_interp.engine.table import TableInfo, iter_table

    t0 = time.perf_counter()
    if limit < 1 or sample < 1:
        raise InputError("--limit and --sample must be at least 1")
    notes = []
    if not theory.is_question:
        notes.append(f"the theory's `expect {theory.expect.source if theory.expect else ''}` was ignored: recover proposes its own")
    if max_size < 1:
        raise InputError(f"--max-size must be at least 1, got {max_size}")
    budget = SearchBudget(seconds=seconds, memory_mb=memory_mb)
    domain = theory.domain
    selection = domain.select(limit=limit if domain.raw_size <= limit else sample, seed=seed)
    chosen = list(selection.inputs)
    if not chosen:
        raise InputError(f"theory {theory.name!r}: the domain is empty (check the `where` filter)")
    counted = [True] * len(chosen)
    if theory.splits and not selection.enumerated:
        seen = {tuple(x.values()) for x in chosen}
        for split in theory.splits:
            for x in split.inputs():
                key = tuple(x.values())
                if key not in seen:
                    seen.add(key)
                    chosen.append(x)
                    counted.append(False)
    if not selection.enumerated:
        notes.append(f"agreement is measured on {selection.describe()}, not the whole domain")
    if len(chosen) > len(selection.inputs):
        notes.append(f"{len(chosen) - len(selection.inputs):,} inputs of the split files were added to measure the splits (not counted in agreement)")
    rows: list[Any] = []
    info: TableInfo | None = None
    for event in iter_table(lm, _as_question(theory), inputs=chosen, answer_tokens=answer_tokens, cancel=cancel, max_work=max_work):
        if isinstance(event, TableInfo):
            info = event
        elif isinstance(event, list):
            rows += event
        else:
            yield event
    table_seconds = time.perf_counter() - t0
    if info is not None:
        notes.append(f"answers: {info.answer_tokens}")
    table = AnswerTable.from_rows(theory, rows, counted=counted, description=selection.describe())
    grammar = Grammar.for_theory(theory, table, max_size=max_size)
    result: RecoverResult | None = None
    for event in iter_search(table, grammar, budget, top=top, min_agreement=min_agreement, cancel=cancel):
        if isinstance(event, RecoverResult):
            result = event
        else:
            yield event
    if result is None:
        raise TuiInterpError("internal: the search ended without a result")
    yield replace(
        result,
        seconds=time.perf_counter() - t0,
        table_seconds=table_seconds,
        notes=tuple(notes) + result.notes,
        question=theory.name,
        model_name=lm.checkpoint.name,
        fingerprint=lm.checkpoint.fingerprint,
    )


def _as_question(theory: Theory) -> Theory:
    """The theory without its `expect`, so the table reports the model's answers (the answer
    length then comes from the split files or --answer-tokens, as for any question)."""
    if theory.is_question:
        return theory
    return parse_theory(with_expect(theory.source, "?"), theory.path)


def recover(lm: Any, theory: Theory, **options: Any) -> RecoverResult:
    """Run iter_recover to the end and return its result."""
    for event in iter_recover(lm, theory, **options):
        if isinstance(event, RecoverResult):
            return event
    raise TuiInterpError("internal: the recovery ended without a result")

