"""Helpers shared by the theory tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tui_interp.theory import Diagnostic, check_theory

DATA = Path(__file__).parent / "data"

BASE = """theory "t"
input a: int in 0..9
input b: int in 0..9
input s: str of "01" len 1..4
input xs: list[int in 0..63] len 8
prompt "{a} {b} ="
expect a + b
"""
"""A valid theory: line 1 theory, 2-5 inputs, 6 prompt, 7 expect."""


@dataclass(frozen=True)
class Marked:
    """A line with the expected span between « and » (an empty «» marks a one-column span)."""

    text: str
    col: int
    end_col: int


def marked(line: str) -> Marked:
    start = line.index("«")
    end = line.index("»")
    text = line.replace("«", "").replace("»", "")
    col = start + 1
    end_col = end  # » sits one character later than the last marked character, « is removed
    if end_col == col:  # empty mark: one column
        end_col = col + 1
    return Marked(text, col, end_col)


def with_line(line_no: int, text: str, base: str = BASE) -> str:
    """BASE with line `line_no` replaced (or appended when it is one past the end)."""
    lines = base.rstrip("\n").split("\n")
    if line_no == len(lines) + 1:
        lines.append(text)
    else:
        lines[line_no - 1] = text
    return "\n".join(lines) + "\n"


def errors(text: str) -> list[Diagnostic]:
    return [d for d in check_theory(text) if d.is_error]


def warnings(text: str) -> list[Diagnostic]:
    return [d for d in check_theory(text) if not d.is_error]
