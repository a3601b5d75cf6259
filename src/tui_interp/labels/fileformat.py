"""The label-file format: text <-> LabelFile.

A label file is JSON, pretty-printed and sorted by component in forward-pass order so that
a diff reads well::

    {
      "format": "tui-interp.labels/1",
      "model": {"name": ..., "fingerprint": ...},
      "labels": [{"component", "name", "note", "tags", "evidence", "created", "updated"}, ...]
    }

The text is exactly ``json.dumps(document, indent=2, ensure_ascii=False) + "\\n"``. Unknown keys
(top level, model, label) are kept, so a file edited by hand or by a newer version loses
nothing when this version writes it.

Speed: a store re-reads and rewrites the whole file on every change, and files with
thousands of labels are normal (one per neuron). So the serialised text of each label is
remembered, and a file this module wrote is parsed by splitting it into per-label chunks and
looking each chunk up; only chunks not seen before are decoded and validated. The shortcut
is taken only when re-serialising the result reproduces the text byte for byte, so it
returns exactly what the full parse would; anything else takes the full parse.

Measured against plain `json.dumps(indent=2)` / `json.loads` + validation by
`benchmarks/bench_labels.py` (2-core CPU, 20,000 labels with evidence): one `LabelStore.add`
in a process that has read or written the file before (the TUI, a script) takes 0.29 s here
and 2.9 s with plain json; in a fresh process (`tui-interp label add`) 2.5 s vs 2.9 s. The
cost: a fresh process that only reads (`label list`) decodes chunk by chunk, 2.7 s vs 1.3 s.
"""

from __future__ import annotations

import json
import threading
from json.encoder import encode_basestring
from typing import Any

from tui_interp.components import parse_component
from tui_interp.errors import ComponentError, LabelStoreError
from tui_interp.labels.records import (
    FORMAT,
    FORMAT_PREFIX,
    LABEL_KEYS,
    MODEL_KEYS,
    TOP_KEYS,
    InvalidLabelError,
    Label,
    LabelFile,
    ModelRef,
    format_time,
    json_type,
    parse_json_int,
    parse_time,
    shorten,
)

# Layout of the "labels" array in the text dump_label_file writes.
_LABELS_KEY = ',\n  "labels": '
_LABELS_OPEN = _LABELS_KEY + "[\n    {\n"
_LABEL_SEP = "\n    },\n    {\n"
_LABELS_CLOSE = "\n    }\n  ]"
_INNER_INDENT = 3  # label fields sit at 3 levels of two spaces

_MEMO_LIMIT = 100_000
_memo: dict[str, Label] = {}  # label chunk text -> the Label it is the exact serialisation of
_memo_lock = threading.Lock()


# ---------------------------------------------------------------- write


def dump_label_file(label_file: LabelFile) -> str:
    """The file's text: exactly ``json.dumps(label_file.to_document(), indent=2, ensure_ascii=False) + "\\n"``."""
    parts = ["{\n", '  "format": ', encode_basestring(FORMAT), ",\n", '  "model": ']
    parts.append(pretty(label_file.model.to_dict(), 1))
    if label_file.labels:
        parts.append(_LABELS_OPEN)
        parts.append(_LABEL_SEP.join(label_chunk(label) for label in label_file.labels))
        parts.append(_LABELS_CLOSE)
    else:
        parts.append(_LABELS_KEY + "[]")
    for key, value in label_file.extra.items():
        parts.append(f",\n  {encode_basestring(key)}: {pretty(value, 1)}")
    parts.append("\n}\n")
    return "".join(parts)


def label_chunk(label: Label) -> str:
    """The fields of one label as they appear inside its braces in a label file (remembered)."""
    cached = label.__dict__.get("_chunk")
    if cached is not None:
        return cached
    chunk = _render_label(label)
    object.__setattr__(label, "_chunk", chunk)  # a cache beside the fields; labels are immutable
    _remember(chunk, label)
    return chunk


def _render_label(label: Label) -> str:
    enc = encode_basestring
    pad = "  " * _INNER_INDENT
    fields = [
        ("component", enc(str(label.component))),
        ("name", enc(label.name)),
        ("note", enc(label.note)),
        ("tags", pretty(label.tags, _INNER_INDENT)),
        ("evidence", pretty(label.evidence, _INNER_INDENT)),
        ("created", enc(format_time(label.created))),
        ("updated", enc(format_time(label.updated))),
    ]
    fields.extend((key, pretty(value, _INNER_INDENT)) for key, value in label.extra.items())
    return ",\n".join(f"{pad}{enc(key)}: {text}" for key, text in fields)


def pretty(value: Any, level: int) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False)`` as it appears `level` steps deep.

    Hand-written because json's indenting encoder is pure Python and slower (a cold dump of
    20,000 labels: 0.74 s vs 1.3 s in `benchmarks/bench_labels.py`); tests check the two agree.
    """
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    inner = "  " * (level + 1)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = ",\n".join(inner + pretty(item, level + 1) for item in value)
        return "[\n" + items + "\n" + "  " * level + "]"
    if not value:
        return "{}"
    items = ",\n".join(f"{inner}{encode_basestring(key)}: {pretty(item, level + 1)}" for key, item in value.items())
    return "{\n" + items + "\n" + "  " * level + "}"


def _remember(chunk: str, label: Label) -> None:
    with _memo_lock:
        if len(_memo) >= _MEMO_LIMIT:
            _memo.clear()
        _memo[chunk] = label


# ---------------------------------------------------------------- read


def parse_label_file(text: str, source: str) -> LabelFile:
    """Parse and validate a label file's text; LabelStoreError names `source` and the problem."""
    fast = _parse_written(text)
    if fast is not None:
        return fast
    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_int=parse_json_int)
    except json.JSONDecodeError as e:
        hint = " (it contains git merge-conflict markers; resolve them first)" if "<<<<<<<" in text else ""
        raise LabelStoreError(f"{source}: not a label file: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}{hint}") from e
    except ValueError as e:  # NaN / Infinity, which JSON does not allow
        raise LabelStoreError(f"{source}: not a label file: {e}") from e
    except RecursionError as e:
        raise LabelStoreError(f"{source}: not a label file: JSON nested too deeply") from e
    return label_file_from_document(document, source)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def label_file_from_document(document: Any, source: str) -> LabelFile:
    """Validate a decoded label-file document and build the LabelFile."""
    if not isinstance(document, dict):
        raise LabelStoreError(f"{source}: not a label file: expected a JSON object, found {json_type(document)}")
    fmt = document.get("format")
    if fmt != FORMAT:
        raise LabelStoreError(f"{source}: {_format_problem(fmt)}")
    model = _model_from(document.get("model"), source)
    raw_labels = document.get("labels")
    if not isinstance(raw_labels, list):
        raise LabelStoreError(f'{source}: not a valid label file: "labels" must be an array, found {json_type(raw_labels)}')
    labels = [_label_from(item, i, source) for i, item in enumerate(raw_labels)]
    extra = {k: v for k, v in document.items() if k not in TOP_KEYS}
    try:
        return LabelFile(model=model, labels=tuple(labels), extra=extra)
    except InvalidLabelError as e:
        raise LabelStoreError(f"{source}: not a valid label file: {e}") from e


def _format_problem(fmt: Any) -> str:
    if isinstance(fmt, str) and fmt.startswith(FORMAT_PREFIX):
        return f"written in format {shorten(fmt)}, which this version cannot read (it reads {FORMAT!r}); upgrade tui-interp"
    if fmt is None:
        return f'not a label file: no "format" field (expected {FORMAT!r})'
    shown = shorten(fmt) if isinstance(fmt, str) else json_type(fmt)
    return f"not a label file: format is {shown}, expected {FORMAT!r}"


def _model_from(raw: Any, source: str) -> ModelRef:
    if not isinstance(raw, dict):
        raise LabelStoreError(f'{source}: not a valid label file: "model" must be an object, found {json_type(raw)}')
    for key in MODEL_KEYS:
        if not isinstance(raw.get(key), str):
            raise LabelStoreError(f'{source}: not a valid label file: "model.{key}" must be a string')
    extra = {k: v for k, v in raw.items() if k not in MODEL_KEYS}
    try:
        return ModelRef(name=raw["name"], fingerprint=raw["fingerprint"], extra=extra)
    except InvalidLabelError as e:
        raise LabelStoreError(f"{source}: not a valid label file: {e}") from e


def _label_from(raw: Any, i: int, source: str) -> Label:
    where = f"{source}: not a valid label file: label {i + 1}"
    if not isinstance(raw, dict):
        raise LabelStoreError(f"{where} must be an object, found {json_type(raw)}")
    missing = [key for key in LABEL_KEYS if key not in raw]
    if missing:
        raise LabelStoreError(f"{where} lacks {', '.join(repr(k) for k in missing)}")
    try:
        return _label_fields(raw)
    except (InvalidLabelError, ComponentError) as e:
        component = raw.get("component")
        shown = shorten(component) if isinstance(component, str) else json_type(component)
        raise LabelStoreError(f"{where} ({shown}): {e}") from e


def _label_fields(raw: dict[str, Any]) -> Label:
    text = raw["component"]
    if not isinstance(text, str):
        raise InvalidLabelError(f'"component" must be a string, got {json_type(text)}')
    component = parse_component(text)
    if str(component) != text:
        raise InvalidLabelError(f"component {shorten(text)} must be written {str(component)!r}")
    for key in ("tags", "evidence"):
        if not isinstance(raw[key], list):
            raise InvalidLabelError(f'"{key}" must be an array, got {json_type(raw[key])}')
    return Label(
        component=component,
        name=raw["name"],
        note=raw["note"],
        tags=tuple(raw["tags"]),
        evidence=tuple(raw["evidence"]),
        created=parse_time(raw["created"]),
        updated=parse_time(raw["updated"]),
        extra={k: v for k, v in raw.items() if k not in LABEL_KEYS},
    )


def _parse_written(text: str) -> LabelFile | None:
    """The shortcut for text this module wrote; None whenever it does not apply."""
    start = text.find(_LABELS_OPEN)
    end = text.find(_LABELS_CLOSE, start + 1) if start >= 0 else -1
    if end < 0:
        return None
    head = text[:start] + _LABELS_KEY + "[]" + text[end + len(_LABELS_CLOSE) :]
    try:
        document = json.loads(head, parse_constant=_reject_constant, parse_int=parse_json_int)
        empty = label_file_from_document(document, "")
    except (ValueError, LabelStoreError, RecursionError):
        return None
    labels = []
    for chunk in text[start + len(_LABELS_OPEN) : end].split(_LABEL_SEP):
        label = _memo.get(chunk) or _decode_chunk(chunk)
        if label is None:
            return None
        labels.append(label)
    try:
        result = LabelFile(model=empty.model, labels=tuple(labels), extra=empty.extra)
    except InvalidLabelError:
        return None
    # Each chunk is its label's exact serialisation, so the file re-serialises to `text`
    # when the header does and the labels were already in order (no duplicates: checked above).
    in_order = all(a is b for a, b in zip(result.labels, labels, strict=True))
    return result if in_order and dump_label_file(empty) == head else None


def _decode_chunk(chunk: str) -> Label | None:
    """Decode one label's chunk; None unless it is valid and is that label's exact serialisation."""
    try:
        raw = json.loads("{\n" + chunk + "\n}", parse_constant=_reject_constant, parse_int=parse_json_int)
        if not isinstance(raw, dict) or any(key not in raw for key in LABEL_KEYS):
            return None
        label = _label_fields(raw)
    except (ValueError, InvalidLabelError, ComponentError, RecursionError):
        return None
    return label if label_chunk(label) == chunk else None
