"""Diagnostics (errors and warnings with a span) and the evaluation error.

`check_theory` returns every Diagnostic of a file so an editor can underline them as the
user types; `parse_theory` raises the first error as a TheoryError. Run-time failures of an
expression (division by zero, an index out of range, a limit exceeded) are TheoryEvalError,
a TheoryError that also names the input it failed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tui_interp.errors import TheoryError
from tui_interp.theory.nodes import Span

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a theory file. Columns are 1-based, `end_col` exclusive."""

    line: int
    col: int
    end_col: int
    message: str
    severity: Severity = "error"

    @classmethod
    def at(cls, span: Span, message: str, severity: Severity = "error") -> Diagnostic:
        return cls(span.line, span.col, max(span.end_col, span.col + 1), message, severity)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_error(self, path: str | None = None) -> TheoryError:
        return TheoryError(self.message, line=self.line, col=self.col, end_col=self.end_col, path=path)

    def __str__(self) -> str:
        return f"line {self.line}, col {self.col}: {self.severity}: {self.message}"


class TheoryEvalError(TheoryError):
    """An expression failed at run time on one input (division by zero, a limit, ...).

    `input` is the assignment it failed on, when known.
    """

    def __init__(
        self,
        message: str,
        span: Span,
        *,
        path: str | None = None,
        input: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, line=span.line, col=span.col, end_col=span.end_col, path=path)
        self.span = span
        self.input = dict(input) if input is not None else None


def format_caret(source: str, line: int, col: int, end_col: int | None = None) -> str:
    """The source line and a caret line under columns [col, end_col), for terminal output.

    3 | expect a + "x"
      |        ^^^^^^^
    """
    lines = source.split("\n")
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1].rstrip("\r").replace("\t", " ")
    end = end_col if end_col is not None and end_col > col else col + 1
    gutter = f"{line} | "
    pad = " " * (len(gutter) - 2) + "| "
    return f"{gutter}{text}\n{pad}{' ' * (col - 1)}{'^' * max(1, end - col)}"


def describe_error(error: TheoryError, source: str) -> str:
    """`path:line:col: message` followed by the caret excerpt (for the CLI)."""
    excerpt = format_caret(source, error.line, error.col, error.end_col)
    return f"{error}\n{excerpt}" if excerpt else str(error)
