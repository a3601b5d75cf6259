"""Exports of a label file: a Markdown table to paste into a write-up, or the file's JSON."""

from __future__ import annotations

import json
from typing import Any

from tui_interp.display import visible
from tui_interp.labels.fileformat import dump_label_file
from tui_interp.labels.records import JsonObject, Label, LabelFile, format_time

MARKDOWN_COLUMNS = ("Component", "Name", "Tags", "Note", "Evidence", "Updated")


def to_json(label_file: LabelFile) -> str:
    """The label file's own JSON text (the format other tools and `git diff` see)."""
    return dump_label_file(label_file)


def to_markdown(label_file: LabelFile) -> str:
    """A GitHub-flavoured Markdown table with one row per label, in forward-pass order.

    Cells are escaped (see `markdown_cell`), so any name, note, tag or evidence keeps the
    table intact and renders as the text it is: never as HTML, a link or an image.
    """
    lines = [_row(MARKDOWN_COLUMNS), _row(("---",) * len(MARKDOWN_COLUMNS))]
    lines.extend(_row(_cells(label)) for label in label_file.labels)
    return "\n".join(lines) + "\n"


def _cells(label: Label) -> tuple[str, ...]:
    return (
        f"`{label.component}`",
        markdown_cell(label.name),
        markdown_cell(", ".join(label.tags)),
        markdown_cell(label.note),
        markdown_cell("\n".join(describe_evidence(item) for item in label.evidence)),
        format_time(label.updated),
    )


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


# What could make a cell's text render as something else: HTML (tags, entities, autolinks
# like <javascript:...>) becomes character references; link and image syntax ([x](url),
# ![x](url), [x][ref]) loses its brackets to backslash escapes; `\\` and `|` are escaped so
# the text and the table stay as written.
_MARKDOWN_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\\": "\\\\", "|": "\\|", "[": "\\[", "]": "\\]"})


def markdown_cell(text: str) -> str:
    """Text made safe for one Markdown table cell: shown as written, inert, on one table row.

    Control characters become visible escapes, HTML becomes `&lt;...&gt;`, link and image
    brackets are backslash-escaped, `|` becomes `\\|` and line breaks become `<br>`.
    """
    shown = visible(text.replace("\r\n", "\n"), keep_newlines=True)
    return shown.translate(_MARKDOWN_ESCAPES).replace("\n", "<br>")


def describe_evidence(item: JsonObject) -> str:
    """One evidence object in a line: `kind: key=value, ... (command)`."""
    rest = {k: v for k, v in item.items() if k not in ("kind", "command")}
    text = ", ".join(f"{k}={_scalar(v)}" for k, v in rest.items())
    kind = item.get("kind")
    if kind is not None:
        text = f"{_scalar(kind)}: {text}" if text else _scalar(kind)
    command = item.get("command")
    if command is not None:
        text = f"{text} ({_scalar(command)})" if text else _scalar(command)
    return text


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
