"""The public face of the theory language: parse, check, load, and the Theory object.

    check_theory(text) -> list[Diagnostic]   every error and warning, for as-you-type editing
    parse_theory(text, path=None) -> Theory  checked and ready to run; raises the first error
    load_theory(path) -> Theory              reads a UTF-8 file (TheoryError naming it if not)

A Theory renders prompts and expected answers for inputs from its Domain:

    theory = load_theory("modadd.theory")
    for x in theory.domain.select(limit=200_000, seed=0).inputs:
        ev = theory.evaluate(x)   # ev.prompt, ev.expected, ev.expected_text, ev.slices
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tui_interp.errors import TheoryError
from tui_interp.theory.checker import Checker
from tui_interp.theory.diagnostics import Diagnostic, TheoryEvalError
from tui_interp.theory.domain import Assignment, Domain, SpecError
from tui_interp.theory.evaluator import Compiled, CompiledTemplate, Env
from tui_interp.theory.expressions import ExprError, parse_expression
from tui_interp.theory.lexer import ColumnMap
from tui_interp.theory.limits import MAX_SOURCE_CHARS
from tui_interp.theory.nodes import (
    AttendsClaim,
    Claim,
    Condition,
    Expr,
    Generator,
    InputDecl,
    Name,
    Placeholder,
    Position,
    SliceDecl,
    Span,
    Template,
)
from tui_interp.theory.parser import Diagnostics, ParsedFile, parse_file
from tui_interp.theory.render import Value, format_input, render_value
from tui_interp.theory.types import ERROR, Type

R = TypeVar("R")
_FILE_START = Span(1, 1, 2)


def iter_nodes(expr: Expr) -> Iterator[Expr]:
    """The expression and every expression inside it."""
    yield expr
    for f in dataclasses.fields(expr):
        value = getattr(expr, f.name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, Expr):
                yield from iter_nodes(item)
            elif isinstance(item, Generator):
                yield from iter_nodes(item.iter)
                for cond in item.conds:
                    yield from iter_nodes(cond)


def names_used(expr: Expr) -> frozenset[str]:
    """Every name the expression mentions (inputs and loop variables)."""
    return frozenset(node.id for node in iter_nodes(expr) if isinstance(node, Name))


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
    """Everything a comparison needs about one input."""

    input: Assignment
    prompt: str
    expected: Value
    expected_text: str
    slices: tuple[bool, ...]


@dataclass(frozen=True, eq=False)
class Theory:
    """A parsed, type-checked theory, ready to evaluate on inputs from `domain`.

    Inputs are mappings from input name to value (ints, bools, strs, lists or tuples);
    a malformed one raises InputError, an expression failing on one raises TheoryEvalError.
    """

    name: str
    source: str
    path: str | None
    inputs: tuple[InputDecl, ...]
    wheres: tuple[Condition, ...]
    prompt: Template
    expect: Condition
    expect_type: Type
    slices: tuple[Slice, ...]
    claims: tuple[Claim, ...]
    warnings: tuple[Diagnostic, ...]
    domain: Domain = field(repr=False)
    _prompt: CompiledTemplate = field(repr=False)
    _expect: Compiled = field(repr=False)
    _slices: tuple[Compiled, ...] = field(repr=False)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.inputs)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as source text, so a theory can be shipped to worker processes."""
        return (parse_theory, (self.source, self.path))

    def _env(self, x: Mapping[str, Any]) -> Env:
        return self.domain.normalize(x)

    def _run(self, env: Env, fn: Callable[[], R]) -> R:
        try:
            return fn()
        except TheoryEvalError as e:
            raise TheoryEvalError(
                f"{e.message} (input: {format_input(env)})", e.span, path=self.path, input=env
            ) from None

    def render_prompt(self, x: Mapping[str, Any]) -> str:
        """The prompt text for input x."""
        env = self._env(x)
        return self._run(env, lambda: self._prompt.render(env))

    def prompt_pieces(self, x: Mapping[str, Any]) -> tuple[PromptPiece, ...]:
        """The prompt for x in pieces, with character offsets and the inputs behind each."""
        env = self._env(x)
        pieces = self._run(env, lambda: self._prompt.pieces(env))
        out = []
        offset = 0
        inputs = set(self.input_names)
        for text, placeholder in pieces:
            used = frozenset(names_used(placeholder.expr) & inputs) if placeholder is not None else frozenset()
            source = placeholder.source if placeholder is not None else None
            out.append(PromptPiece(text, offset, offset + len(text), source, used))
            offset += len(text)
        return tuple(out)

    def expected(self, x: Mapping[str, Any]) -> Value:
        """The value `expect` gives for x (lists are tuples)."""
        env = self._env(x)
        return self._run(env, lambda: self._expect(env))

    def render_expected(self, x: Mapping[str, Any]) -> str:
        """The text the model should output for x (see render.py for the rules)."""
        return render_value(self.expected(x))

    def slice_values(self, x: Mapping[str, Any]) -> dict[str, bool]:
        """Whether x is in each slice, by slice name."""
        return {s.name: s.predicate(x) for s in self.slices}

    def evaluate(self, x: Mapping[str, Any]) -> Evaluation:
        """Prompt, expected value and text, and slice membership of x, in one pass."""
        env = self._env(x)

        def run() -> Evaluation:
            prompt = self._prompt.render(env)
            expected = self._expect(env)
            slices = tuple(bool(fn(env)) for fn in self._slices)
            return Evaluation(dict(env), prompt, expected, render_value(expected), slices)

        return self._run(env, run)

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

        def report(span: Span, message: str, is_error: bool) -> None:
            if is_error:
                diags.add(span, message)

        Checker({d.name: d.spec.type for d in self.inputs}, report).check(expr)
        if diags.items:
            raise diags.sorted()[0].to_error()
        env = self._env(x)
        compiled = Compiled(expr)
        return self._run(env, lambda: compiled(env))

    def describe_input(self, x: Mapping[str, Any]) -> str:
        """`a=3, b=5` for messages and tables."""
        return format_input(self._env(x))


# --- analysis ----------------------------------------------------------------------------------


@dataclass
class _Analysis:
    parsed: ParsedFile
    diags: Diagnostics
    expect_type: Type = ERROR


def _analyse(text: str) -> _Analysis:
    diags = Diagnostics()
    if len(text) > MAX_SOURCE_CHARS:
        diags.add(_FILE_START, f"the file is too large ({len(text):,} characters; the limit is {MAX_SOURCE_CHARS:,})")
        return _Analysis(ParsedFile(), diags)
    parsed = parse_file(text, diags)
    env: dict[str, Type] = {d.name: d.spec.type for d in parsed.inputs}
    env.update({name: ERROR for name in parsed.bad_inputs})

    def report(span: Span, message: str, is_error: bool) -> None:
        diags.add(span, message, "error" if is_error else "warning")

    checker = Checker(env, report)
    for cond in parsed.wheres:
        checker.check_bool(cond.expr, "`where`")
    if parsed.prompt is not None:
        for placeholder in parsed.prompt.placeholders:
            checker.check_renderable(placeholder.expr, "a prompt placeholder")
    analysis = _Analysis(parsed, diags)
    if parsed.expect is not None:
        analysis.expect_type = checker.check_renderable(parsed.expect.expr, "`expect`")
    for s in parsed.slices:
        checker.check_bool(s.cond.expr, "`slice`")
    _check_claims(parsed, env, diags)
    _check_missing(parsed, diags)
    return analysis


def _check_claims(parsed: ParsedFile, env: Mapping[str, Type], diags: Diagnostics) -> None:
    placeholders = parsed.prompt.placeholders if parsed.prompt is not None else ()
    for claim in parsed.claims:
        if isinstance(claim, AttendsClaim):
            for pos in (claim.source, claim.target):
                _check_position(pos, env, placeholders, parsed.prompt, diags)


def _check_position(
    pos: Position,
    env: Mapping[str, Type],
    placeholders: tuple[Placeholder, ...],
    prompt: Template | None,
    diags: Diagnostics,
) -> None:
    if pos.kind == "input":
        name = str(pos.value)
        if name not in env:
            inputs = ", ".join(env) or "none"
            diags.add(
                pos.span, f'unknown input `{name}` (the inputs are: {inputs}); for token text use quotes: "{name}"'
            )
        elif prompt is not None and not any(name in names_used(p.expr) for p in placeholders):
            diags.add(pos.span, f"input `{name}` does not appear in the prompt, so it has no position")
    elif pos.kind == "text" and prompt is not None and str(pos.value) not in prompt.literal_text:
        diags.add(
            pos.span,
            f"{pos.value!r} is not in the prompt's fixed text; it can only match where an input renders to it",
            "warning",
        )


def _check_missing(parsed: ParsedFile, diags: Diagnostics) -> None:
    where = parsed.name_span or _FILE_START
    if "prompt" not in parsed.seen:
        diags.add(where, 'missing `prompt` line, e.g. prompt "{a} + {b} ="')
    if "expect" not in parsed.seen:
        diags.add(where, "missing `expect` line, e.g. expect (a + b) % 113")
    if "theory" not in parsed.seen:
        diags.add(_FILE_START, 'no `theory "NAME"` line: the theory is named after its file (or "untitled")', "warning")


def check_theory(text: str) -> list[Diagnostic]:
    """Every error and warning in a theory's text, sorted by position (never raises)."""
    return _analyse(text).diags.sorted()


def parse_theory(text: str, path: str | None = None) -> Theory:
    """Parse and type-check a theory; raise the first error as a TheoryError (with `path`)."""
    analysis = _analyse(text)
    diagnostics = analysis.diags.sorted()
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        raise errors[0].to_error(path)
    return _build(analysis, text, path, tuple(diagnostics))


def _build(analysis: _Analysis, text: str, path: str | None, warnings: tuple[Diagnostic, ...]) -> Theory:
    parsed = analysis.parsed
    if parsed.prompt is None or parsed.expect is None:  # reported as errors by _check_missing
        raise TheoryError("the theory needs a `prompt` and an `expect` line", path=path)
    wheres = tuple(Compiled(c.expr) for c in parsed.wheres)

    def where(env: Assignment) -> bool:
        scratch = dict(env)
        try:
            return all(w(scratch) for w in wheres)
        except TheoryEvalError as e:
            raise TheoryEvalError(
                f"`where` failed: {e.message} (input: {format_input(env)})", e.span, path=path, input=env
            ) from None

    try:
        domain = Domain([(d.name, d.spec) for d in parsed.inputs], where if wheres else None)
    except SpecError as e:
        raise TheoryError(str(e), path=path) from None
    slice_fns = tuple(Compiled(decl.cond.expr) for decl in parsed.slices)
    slices = tuple(_make_slice(decl, fn, domain, path) for decl, fn in zip(parsed.slices, slice_fns, strict=True))
    name = parsed.name if parsed.name is not None else (Path(path).stem if path else "untitled")
    return Theory(
        name=name,
        source=text,
        path=path,
        inputs=tuple(parsed.inputs),
        wheres=tuple(parsed.wheres),
        prompt=parsed.prompt,
        expect=parsed.expect,
        expect_type=analysis.expect_type,
        slices=slices,
        claims=tuple(parsed.claims),
        warnings=warnings,
        domain=domain,
        _prompt=CompiledTemplate(parsed.prompt),
        _expect=Compiled(parsed.expect.expr),
        _slices=slice_fns,
    )


def _make_slice(decl: SliceDecl, compiled: Compiled, domain: Domain, path: str | None) -> Slice:

    def predicate(x: Mapping[str, Any]) -> bool:
        env = domain.normalize(x)
        try:
            return bool(compiled(env))
        except TheoryEvalError as e:
            raise TheoryEvalError(
                f"slice {decl.name!r} failed: {e.message} (input: {format_input(env)})", e.span, path=path, input=env
            ) from None

    return Slice(decl.name, decl.cond.source, decl.span, predicate)


def load_theory(path: str | Path) -> Theory:
    """Read and parse a theory file; unreadable, oversized or non-UTF-8 files are TheoryErrors."""
    where = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SOURCE_CHARS + 1)
    except FileNotFoundError:
        raise TheoryError(f"theory file not found: {where}", path=where) from None
    except IsADirectoryError:
        raise TheoryError(f"{where} is a directory, not a theory file", path=where) from None
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
        line = data.count(b"\n", 0, e.start) + 1
        col = len(data[line_start : e.start].decode("utf-8", errors="replace")) + 1
        raise TheoryError(
            f"theory file {where} is not UTF-8 text (byte 0x{data[e.start]:02x} cannot be decoded)",
            line=line,
            col=col,
            path=where,
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return parse_theory(text, path=where)
