"""The public face of the theory language: parse, check, load, and the Theory object.

    check_theory(text, path=None) -> list[Diagnostic]  every error and warning, as you type
    parse_theory(text, path=None) -> Theory   checked and ready to run; raises the first error
    load_theory(path) -> Theory               reads a UTF-8 file (TheoryError naming it if not)

`path` is the theory file's path: split files are found relative to its directory.

A Theory renders prompts and expected answers for inputs from its Domain:

    theory = load_theory("modadd.theory")
    for x in theory.domain.select(limit=200_000, seed=0).inputs:
        ev = theory.evaluate(x)   # ev.prompt, ev.expected, ev.expected_text, ev.slices, ev.splits
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tui_interp.errors import TheoryError
from tui_interp.fileio import regular_file
from tui_interp.theory.checker import Checker
from tui_interp.theory.diagnostics import Diagnostic, TheoryEvalError
from tui_interp.theory.domain import Assignment, Domain
from tui_interp.theory.evaluator import Compiled, CompiledTemplate, Env
from tui_interp.theory.expressions import ExprError, parse_expression
from tui_interp.theory.lexer import ColumnMap
from tui_interp.theory.limits import COST_SAFETY_FACTOR, COST_SAMPLE_STEPS, COST_SAMPLES, MAX_SOURCE_CHARS, MAX_STEPS
from tui_interp.theory.nodes import AttendsClaim, Claim, Condition, Expr, InputDecl, Name, Span, Template, iter_nodes
from tui_interp.theory.parser import Diagnostics, ParsedFile, parse_file
from tui_interp.theory.render import Value, format_input
from tui_interp.theory.runtime import Budget
from tui_interp.theory.splits import Split, load_split
from tui_interp.theory.types import ERROR, Type

R = TypeVar("R")
_FILE_START = Span(1, 1, 2)


def names_used(expr: Expr) -> frozenset[str]:
    """Every name the expression mentions (inputs and loop variables)."""
    return frozenset(node.id for node in iter_nodes(expr) if isinstance(node, Name))


def _explain(path: str | None, env: Assignment, fn: Callable[[], R], what: str = "") -> R:
    """Run fn; a TheoryEvalError gains `what` in front, the input behind, and the path."""
    try:
        return fn()
    except TheoryEvalError as e:
        message = f"{what}{e.message} (input: {format_input(env)})"
        raise TheoryEvalError(message, e.span, path=path, input=env) from None


@dataclass(frozen=True)
class Slice:
    """A `slice` line: `predicate(x)` says whether input x is in the slice."""

    name: str
    source: str
    span: Span
    predicate: Callable[[Mapping[str, Any]], bool] = field(repr=False, compare=False)

    def __iter__(self) -> Iterator[Any]:
        """Unpack as `(name, predicate)`: `for name, holds in theory.slices: ...`."""
        return iter((self.name, self.predicate))


@dataclass(frozen=True)
class PromptPiece:
    """A piece of a rendered prompt: characters [start, end) came from literal text
    (`placeholder` None) or from a placeholder that uses `inputs`."""

    text: str
    start: int
    end: int
    placeholder: str | None
    inputs: frozenset[str]


@dataclass(frozen=True)
class Evaluation:
    """Everything a comparison needs about one input. `expected` and `expected_text` are None
    when the theory is a question; `slices` and `splits` follow the theory's order."""

    input: Assignment
    prompt: str
    expected: Value | None
    expected_text: str | None
    slices: tuple[bool, ...]
    splits: tuple[bool, ...] = ()
    steps: int = 0
    """The work the prompt, `expect` and slices took (see runtime.py: a step is about a loop
    iteration); each of them may use up to MAX_STEPS."""


@dataclass(frozen=True)
class CostEstimate:
    """What evaluating one input costs, at most, in steps; and the costliest expression."""

    steps_per_input: int
    expression: str
    span: Span


@dataclass(frozen=True, eq=False)
class Theory:
    """A parsed, type-checked theory, ready to evaluate on inputs from `domain`.

    Inputs are mappings from input name to value (ints, bools, strs, lists or tuples);
    a malformed one raises InputError, an expression failing on one raises TheoryEvalError.
    A theory without `expect` (or with `expect ?`) is a question: `expect` is None.
    """

    name: str
    source: str
    path: str | None
    inputs: tuple[InputDecl, ...]
    wheres: tuple[Condition, ...]
    prompt: Template
    expect: Condition | None
    expect_type: Type
    slices: tuple[Slice, ...]
    splits: tuple[Split, ...]
    claims: tuple[Claim, ...]
    warnings: tuple[Diagnostic, ...]
    domain: Domain = field(repr=False)
    _prompt: CompiledTemplate = field(repr=False)
    _expect: Compiled | None = field(repr=False)
    _slices: tuple[Compiled, ...] = field(repr=False)
    _wheres: tuple[Compiled, ...] = field(repr=False)

    @property
    def is_question(self) -> bool:
        """True when the theory has no `expect` (or `expect ?`): it asks what the model computes."""
        return self._expect is None

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.inputs)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as source text, so a theory can be shipped to worker processes."""
        return (parse_theory, (self.source, self.path))

    def _run(self, x: Mapping[str, Any], fn: Callable[[Env], R]) -> R:
        env = self.domain.normalize(x)
        return _explain(self.path, env, lambda: fn(env))

    def render_prompt(self, x: Mapping[str, Any]) -> str:
        """The prompt text for input x."""
        return self._run(x, self._prompt.render)

    def prompt_pieces(self, x: Mapping[str, Any]) -> tuple[PromptPiece, ...]:
        """The prompt for x in pieces, with character offsets and the inputs behind each."""
        out = []
        offset = 0
        for text, placeholder in self._run(x, self._prompt.pieces):
            used = names_used(placeholder.expr) & set(self.input_names) if placeholder is not None else frozenset()
            source = placeholder.source if placeholder is not None else None
            out.append(PromptPiece(text, offset, offset + len(text), source, used))
            offset += len(text)
        return tuple(out)

    def _expected(self) -> Compiled:
        if self._expect is None:
            raise TheoryError(f"theory {self.name!r} is a question: it has no `expect` line", path=self.path)
        return self._expect

    def expected(self, x: Mapping[str, Any]) -> Value:
        """The value `expect` gives for x (lists are tuples); a TheoryError for a question."""
        return self._run(x, self._expected())

    def render_expected(self, x: Mapping[str, Any]) -> str:
        """The text the model should output for x (see render.py for the rules)."""
        expect = self._expected()
        return self._run(x, lambda env: expect.text(env)[1])

    def slice_values(self, x: Mapping[str, Any]) -> dict[str, bool]:
        """Whether x is in each slice, by slice name."""
        return {s.name: s.predicate(x) for s in self.slices}

    def evaluate(self, x: Mapping[str, Any]) -> Evaluation:
        """Prompt, expected value and text, and slice membership of x, in one pass."""

        def run(env: Env) -> Evaluation:
            budgets = [Budget() for _ in range(2 + len(self._slices))]
            prompt = self._prompt.render(env, budgets[0])
            expected, text = self._expect.text(env, budgets[1]) if self._expect is not None else (None, None)
            slices = tuple(bool(fn(env, b)) for fn, b in zip(self._slices, budgets[2:], strict=True))
            key = tuple(env.values())
            splits = tuple(s.has_key(key) for s in self.splits)
            return Evaluation(dict(env), prompt, expected, text, slices, splits, sum(b.steps for b in budgets))

        return self._run(x, run)

    def cost_estimate(self) -> CostEstimate:
        """A measured estimate of the steps one input's full evaluation costs (`where`, prompt,
        `expect` and slices), and the expression that costs the most.

        Measured, not proven: up to COST_SAMPLES inputs drawn uniformly from the unfiltered
        domain (seed 0) are evaluated, each expression with a fresh Budget, `where` on all of
        them and the rest on those it keeps; sampling stops early once COST_SAMPLE_STEPS steps
        are spent. The estimate is the most steps one input took, times COST_SAFETY_FACTOR. An
        expression that fails counts the steps it used until then (a budget overrun counts
        MAX_STEPS): the estimate never raises for a theory that fails on some inputs.
        """
        parts: list[tuple[str, Span, Callable[[Env, Budget], object]]] = [
            (c.source, fn.span, fn) for c, fn in zip(self.wheres, self._wheres, strict=True)
        ]
        n_wheres = len(parts)
        parts += [(p.source, p.expr.span, fn) for p, fn in self._prompt.placeholders()]
        if self.expect is not None and self._expect is not None:
            parts.append((self.expect.source, self._expect.span, self._expect.text))
        parts += [(s.source, fn.span, fn) for s, fn in zip(self.slices, self._slices, strict=True)]
        worst = [0] * len(parts)
        most = spent = 0
        rng = random.Random(0)
        for _ in range(COST_SAMPLES):
            if spent > COST_SAMPLE_STEPS:
                break
            env = self.domain.draw(rng)
            total = 0
            for i, (_, _, fn) in enumerate(parts):
                budget = Budget()
                try:
                    ok = fn(env, budget)
                except TheoryEvalError:
                    ok = i >= n_wheres  # a failing `where` keeps nothing; other parts go on
                steps = min(budget.steps, MAX_STEPS)
                worst[i] = max(worst[i], steps)
                total += steps
                if i < n_wheres and not ok:
                    break
            most, spent = max(most, total), spent + total
        costliest = max(range(len(parts)), key=worst.__getitem__, default=None)
        source, span = (parts[costliest][0], parts[costliest][1]) if costliest is not None else ("", _FILE_START)
        return CostEstimate(max(1, most * COST_SAFETY_FACTOR), source, span)

    def evaluate_expression(self, text: str, x: Mapping[str, Any]) -> Value:
        """Check and evaluate one expression over this theory's inputs (for a REPL or a hover).

        Raises TheoryError (line 1, columns within `text`) when the expression does not check,
        TheoryEvalError when it fails on x.
        """
        diags = Diagnostics()
        try:
            expr = parse_expression(text, ColumnMap(1, 0))
        except ExprError as e:
            raise Diagnostic.at(e.span, e.message).to_error() from None
        Checker({d.name: d.spec.type for d in self.inputs}, diags.add).check(expr)
        if diags.items:
            raise diags.sorted()[0].to_error()
        return self._run(x, Compiled(expr))


# --- analysis ----------------------------------------------------------------------------------


@dataclass
class _Analysis:
    parsed: ParsedFile
    diags: Diagnostics
    expect_type: Type = ERROR
    domain: Domain | None = None
    wheres: tuple[Compiled, ...] = ()
    splits: tuple[Split, ...] = ()


def _analyse(text: str, path: str | os.PathLike[str] | None) -> _Analysis:
    """Parse and check; when that is clean, build the domain and read the split files.
    Every problem goes to the Diagnostics."""
    diags = Diagnostics()
    if len(text) > MAX_SOURCE_CHARS:
        diags.add(_FILE_START, f"the file is too large ({len(text):,} characters; the limit is {MAX_SOURCE_CHARS:,})")
        return _Analysis(ParsedFile(), diags)
    parsed = parse_file(text, diags)
    env: dict[str, Type] = {d.name: d.spec.type for d in parsed.inputs}
    env.update(dict.fromkeys(parsed.bad_inputs, ERROR))
    checker = Checker(env, diags.add)
    for cond in parsed.wheres:
        checker.check_bool(cond.expr, "`where`")
    placeholders = parsed.prompt.placeholders if parsed.prompt is not None else ()
    for placeholder in placeholders:
        checker.check_renderable(placeholder.expr, "a prompt placeholder")
    analysis = _Analysis(parsed, diags)
    if parsed.expect is not None:
        analysis.expect_type = checker.check_renderable(parsed.expect.expr, "`expect`")
    for s in parsed.slices:
        checker.check_bool(s.cond.expr, "`slice`")
    for claim in parsed.claims:
        for pos in (claim.source, claim.target) if isinstance(claim, AttendsClaim) else ():
            if pos.kind == "input" and str(pos.value) not in env:
                name = str(pos.value)
                diags.add(
                    pos.span,
                    f"unknown input `{name}` (the inputs are: {', '.join(env) or 'none'}); "
                    f'for token text use quotes: "{name}"',
                )
            elif pos.kind == "input" and parsed.prompt is not None:
                if not any(pos.value in names_used(p.expr) for p in placeholders):
                    diags.add(pos.span, f"input `{pos.value}` does not appear in the prompt, so it has no position")
            elif pos.kind == "text" and parsed.prompt is not None and str(pos.value) not in parsed.prompt.literal_text:
                message = f"{pos.value!r} is not in the prompt's fixed text; it can only match where an input renders to it"
                diags.add(pos.span, message, "warning")
    if "prompt" not in parsed.seen:
        diags.add(parsed.name_span or _FILE_START, 'missing `prompt` line, e.g. prompt "{a} + {b} ="')
    if "theory" not in parsed.seen:
        diags.add(_FILE_START, 'no `theory "NAME"` line: the theory is named after its file (or "untitled")', "warning")
    if not diags.has_errors:
        analysis.wheres = tuple(Compiled(c.expr) for c in parsed.wheres)
        analysis.domain = _domain(analysis.wheres, parsed, None if path is None else str(path))
        signature = (tuple((d.name, str(d.spec)) for d in parsed.inputs), tuple(w.source for w in parsed.wheres))
        splits = []
        for decl in parsed.splits:
            try:
                splits.append(load_split(decl, path, analysis.domain, signature))
            except TheoryError as e:
                diags.add(decl.span, e.message)
        analysis.splits = tuple(splits)
    return analysis


def _domain(wheres: tuple[Compiled, ...], parsed: ParsedFile, path: str | None) -> Domain:
    def where(env: Assignment) -> bool:
        scratch = dict(env)
        return _explain(path, env, lambda: all(w(scratch) for w in wheres), "`where` failed: ")

    return Domain([(d.name, d.spec) for d in parsed.inputs], where if wheres else None)


def check_theory(text: str, path: str | os.PathLike[str] | None = None) -> list[Diagnostic]:
    """Every error and warning in a theory's text, sorted by position (never raises).

    `path` is where the theory lives (or will): split files are read relative to it.
    """
    return _analyse(text, path).diags.sorted()


def parse_theory(text: str, path: str | os.PathLike[str] | None = None) -> Theory:
    """Parse and type-check a theory and read its split files; raise the first error as a
    TheoryError (with `path`)."""
    analysis = _analyse(text, path)
    path = None if path is None else str(path)
    parsed, diagnostics, domain = analysis.parsed, analysis.diags.sorted(), analysis.domain
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        raise errors[0].to_error(path)
    if parsed.prompt is None or domain is None:  # reported as errors above
        raise TheoryError("the theory needs a `prompt` line", path=path)
    slice_fns = tuple(Compiled(decl.cond.expr) for decl in parsed.slices)

    def holds(name: str, fn: Compiled) -> Callable[[Mapping[str, Any]], bool]:
        def predicate(x: Mapping[str, Any]) -> bool:
            env = domain.normalize(x)
            return _explain(path, env, lambda: bool(fn(env)), f"slice {name!r} failed: ")

        return predicate

    return Theory(
        name=parsed.name if parsed.name is not None else (Path(path).stem if path else "untitled"),
        source=text,
        path=path,
        inputs=tuple(parsed.inputs),
        wheres=tuple(parsed.wheres),
        prompt=parsed.prompt,
        expect=parsed.expect,
        expect_type=analysis.expect_type,
        slices=tuple(
            Slice(d.name, d.cond.source, d.span, holds(d.name, fn)) for d, fn in zip(parsed.slices, slice_fns, strict=True)
        ),
        splits=analysis.splits,
        claims=tuple(parsed.claims),
        warnings=tuple(diagnostics),
        domain=domain,
        _prompt=CompiledTemplate(parsed.prompt),
        _expect=Compiled(parsed.expect.expr) if parsed.expect is not None else None,
        _slices=slice_fns,
        _wheres=analysis.wheres,
    )


def load_theory(path: str | Path) -> Theory:
    """Read and parse a theory file; unreadable, oversized or non-UTF-8 files are TheoryErrors."""
    where = str(path)
    try:
        with open(regular_file(path, "theory file", error=TheoryError), "rb") as f:
            data = f.read(MAX_SOURCE_CHARS + 1)
    except PermissionError:
        raise TheoryError(f"cannot read theory file {where}: permission denied", path=where) from None
    except OSError as e:
        raise TheoryError(f"cannot read theory file {where}: {e.strerror or e}", path=where) from None
    if len(data) > MAX_SOURCE_CHARS:
        raise TheoryError(f"theory file {where} is too large (more than {MAX_SOURCE_CHARS:,} bytes)", path=where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        col = len(data[line_start : e.start].decode("utf-8", errors="replace")) + 1
        raise TheoryError(
            f"theory file {where} is not UTF-8 text (byte 0x{data[e.start]:02x} cannot be decoded)",
            line=data.count(b"\n", 0, e.start) + 1,
            col=col,
            path=where,
        ) from None
    return parse_theory(text.removeprefix("\ufeff"), path=where)
