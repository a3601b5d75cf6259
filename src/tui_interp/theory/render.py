"""Values to text: what goes into a prompt, what the model should answer, what a person reads.

Rendering rules (prompt placeholders and `expect` use the same ones):

- int: decimal, `-` for negatives (`-12`)
- bool: `True` / `False` (as Python's `str`)
- str: the string itself, unquoted
- list: its elements rendered and joined by one space (`[3, 1, 2]` -> `3 1 2`), which most
  tokenizers split into one token per element; a theory that wants another format says so
  with `join(xs, "")`, `join(xs, ", ")`, `str(...)` or `base(...)`.

Lists of lists are not rendered implicitly (the checker refuses them): join them explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Value = int | bool | str | tuple["Value", ...]
"""A runtime value: lists are tuples (immutable, hashable)."""

_SHOW_MAX = 80


def render_value(value: Value) -> str:
    """The text of a value in a prompt or as an expected answer (see the module docstring)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    return " ".join(render_value(v) for v in value)


def format_value(value: Value, limit: int = _SHOW_MAX) -> str:
    """A value as a person reads it in a message: Python literal syntax, shortened."""
    if isinstance(value, tuple):
        text = "[" + ", ".join(format_value(v, limit) for v in value) + "]"
    elif isinstance(value, str):
        text = _quote(value)
    else:
        text = render_value(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(text: str) -> str:
    """Double-quoted, with the escapes the theory language reads back."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def format_input(assignment: Mapping[str, Value], limit: int = _SHOW_MAX) -> str:
    """`a=3, b=5, s="0110"`."""
    return ", ".join(f"{k}={format_value(v, limit)}" for k, v in assignment.items())


def to_json(value: Value) -> Any:
    """A JSON-ready value: tuples become lists."""
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return value
