"""Label records: plain, immutable, validated data.

A `Label` says what one component does (name, note, tags) and why we believe it
(evidence: JSON objects such as an ablation effect with the command that measured it).
A `LabelFile` is the content of one label file: the model it is bound to and its labels
in forward-pass order. Text is stored exactly as given; only what cannot be stored
faithfully (a multi-line name, a lone surrogate, NaN in evidence) is refused.

Evidence and extra fields are frozen (read-only mappings, tuples for arrays) so a record
cannot change after it is made; `to_dict()` gives plain JSON-ready dicts and lists.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from tui_interp.components import Component
from tui_interp.errors import LabelStoreError

FORMAT = "tui-interp.labels/1"
FORMAT_PREFIX = "tui-interp.labels/"
LABEL_KEYS = ("component", "name", "note", "tags", "evidence", "created", "updated")
MODEL_KEYS = ("name", "fingerprint")
TOP_KEYS = ("format", "model", "labels")

# Characters that end a line for str.splitlines(); a name or tag must contain none of them.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_LINE_BREAK_RE = re.compile("[" + "".join(sorted(LINE_BREAKS)) + "]")
MAX_JSON_DEPTH = 32  # levels of objects and arrays in one evidence item or extra field (the item is level 1)

JsonObject = Mapping[str, Any]


class InvalidLabelError(LabelStoreError):
    """A label field is invalid (empty or multi-line name, evidence that is not a JSON object...)."""


class LabelNotFoundError(LabelStoreError):
    """An operation named a component that has no label."""


def utc_now() -> datetime:
    """The current time in UTC, to the second (what `created` and `updated` record)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass(frozen=True)
class ModelRef:
    """The model a label file is bound to: its name and weight fingerprint."""

    name: str
    fingerprint: str
    extra: JsonObject = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        check_text("model name", self.name)
        check_text("model fingerprint", self.fingerprint)
        object.__setattr__(self, "extra", freeze_extra(self.extra, MODEL_KEYS, "model"))

    def to_dict(self) -> dict[str, Any]:
        """The "model" object of a label file."""
        return {"name": self.name, "fingerprint": self.fingerprint, **thaw(self.extra)}


@dataclass(frozen=True)
class Label:
    """What a person found one component does, with the evidence for it.

    `name` is one line and non-empty; `note` is free text; `tags` are non-empty one-line
    strings without duplicates; `evidence` is a tuple of JSON objects, e.g.
    ``{"kind": "ablation", "metric": "loss", "value": 2.3, "command": "tui-interp ablate ..."}``.
    `extra` keeps unknown keys read from a file, so writing the file back loses nothing.
    """

    component: Component
    name: str
    note: str = ""
    tags: tuple[str, ...] = ()
    evidence: tuple[JsonObject, ...] = ()
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    extra: JsonObject = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.component, Component):
            raise InvalidLabelError(f"label component must be a Component, got {type(self.component).__name__}")
        check_name(self.name)
        check_text("note", self.note)
        object.__setattr__(self, "tags", normalise_tags(self.tags))
        object.__setattr__(self, "evidence", normalise_evidence(self.evidence))
        object.__setattr__(self, "created", _aware("created", self.created))
        object.__setattr__(self, "updated", _aware("updated", self.updated))
        object.__setattr__(self, "extra", freeze_extra(self.extra, LABEL_KEYS, "label"))

    def to_dict(self) -> dict[str, Any]:
        """The label as it appears in a label file (known keys first, then kept extras)."""
        return {
            "component": str(self.component),
            "name": self.name,
            "note": self.note,
            "tags": list(self.tags),
            "evidence": [thaw(item) for item in self.evidence],
            "created": format_time(self.created),
            "updated": format_time(self.updated),
            **thaw(self.extra),
        }

    def merged(
        self,
        *,
        name: str,
        note: str | None = None,
        tags: Iterable[str] = (),
        evidence: Iterable[JsonObject] = (),
        now: datetime | None = None,
    ) -> Label:
        """This label renamed; its note replaced if `note` is given; tags and evidence added.

        Duplicate tags and evidence identical to an existing item are not added twice.
        `created` is kept and `updated` set to `now`.
        """
        new_evidence = list(self.evidence)
        for item in normalise_evidence(evidence):
            if item not in new_evidence:
                new_evidence.append(item)
        return replace(
            self,
            name=name,
            note=self.note if note is None else note,
            tags=(*self.tags, *normalise_tags(tags)),
            evidence=tuple(new_evidence),
            updated=now or utc_now(),
        )


@dataclass(frozen=True)
class LabelFile:
    """The content of one label file: the model it is bound to and its labels, in forward-pass order."""

    model: ModelRef
    labels: tuple[Label, ...] = ()
    extra: JsonObject = field(default_factory=dict)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.labels, key=_label_key))
        keys = [_label_key(label) for label in ordered]
        if len(set(keys)) != len(keys):
            for before, after in itertools.pairwise(ordered):
                if _label_key(before) == _label_key(after):
                    raise InvalidLabelError(f"two labels for {after.component}")
        object.__setattr__(self, "labels", ordered)
        object.__setattr__(self, "extra", freeze_extra(self.extra, TOP_KEYS, "label file"))

    def get(self, component: Component) -> Label | None:
        """The label of `component`, or None."""
        key = component.sort_key
        for label in self.labels:
            if _label_key(label) == key:
                return label
        return None

    def with_label(self, label: Label) -> LabelFile:
        """This file with `label` added, replacing any label of the same component."""
        key = _label_key(label)
        kept = tuple(old for old in self.labels if _label_key(old) != key)
        return replace(self, labels=(*kept, label))

    def without(self, component: Component) -> LabelFile:
        """This file without the label of `component` (LabelNotFoundError if it has none)."""
        key = component.sort_key
        kept = tuple(old for old in self.labels if _label_key(old) != key)
        if len(kept) == len(self.labels):
            raise LabelNotFoundError(f"no label for {component}")
        return replace(self, labels=kept)

    def to_document(self) -> dict[str, Any]:
        """The JSON document this file is written as."""
        return {
            "format": FORMAT,
            "model": self.model.to_dict(),
            "labels": [label.to_dict() for label in self.labels],
            **thaw(self.extra),
        }


def _label_key(label: Label) -> tuple[int, int, int, int]:
    """Forward-pass position of a label's component (unique per component)."""
    return label.component.sort_key


# ---------------------------------------------------------------- field checks


def check_text(what: str, value: object) -> str:
    """A text field: a str of valid Unicode (no lone surrogates, which UTF-8 cannot hold)."""
    if not isinstance(value, str):
        raise InvalidLabelError(f"{what} must be a string, got {json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = ord(value[e.start])
        raise InvalidLabelError(f"{what} contains a lone surrogate (U+{bad:04X}), which is not valid Unicode text") from None
    return value


def check_name(name: object) -> str:
    """A label name: non-empty and one line; any other character (controls, markup) is kept."""
    text = check_text("label name", name)
    if not text.strip():
        raise InvalidLabelError("label name must not be empty")
    found = _LINE_BREAK_RE.search(text)
    if found:
        raise InvalidLabelError(
            f"label name must be one line, but it contains a line break (U+{ord(found.group()):04X}); "
            "put longer text in the note"
        )
    return text


def normalise_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags as a tuple without duplicates (first kept); each non-empty and one line."""
    if isinstance(tags, (str, bytes)):
        raise InvalidLabelError("tags must be a list of strings, not one string")
    out: list[str] = []
    for tag in tags:
        check_text("tag", tag)
        if not tag.strip():
            raise InvalidLabelError("a tag must not be empty")
        if _LINE_BREAK_RE.search(tag):
            raise InvalidLabelError(f"tag {shorten(tag)} must be one line")
        if tag not in out:
            out.append(tag)
    return tuple(out)


def normalise_evidence(evidence: Iterable[JsonObject]) -> tuple[JsonObject, ...]:
    """Evidence as a tuple of frozen JSON objects; anything else raises InvalidLabelError."""
    if isinstance(evidence, (str, bytes, Mapping)):
        raise InvalidLabelError("evidence must be a list of JSON objects")
    items = []
    for i, item in enumerate(evidence):
        if not isinstance(item, Mapping):
            raise InvalidLabelError(f"evidence item {i + 1} must be a JSON object, got {json_type(item)}")
        items.append(freeze(item, f"evidence item {i + 1}"))
    return tuple(items)


def parse_evidence(text: str) -> list[JsonObject]:
    """Evidence typed by a person: one JSON object, or a JSON array of objects.

    Nesting is bounded before the text is decoded (each item at most MAX_JSON_DEPTH levels),
    so no input can exhaust the decoder's recursion.
    """
    check_text("evidence", text)
    depth = json_nesting(text)
    if depth > MAX_JSON_DEPTH + 1 or (depth > MAX_JSON_DEPTH and text.lstrip()[:1] != "["):
        raise InvalidLabelError(f"evidence is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=parse_json_int)
    except json.JSONDecodeError as e:
        raise InvalidLabelError(f"evidence is not valid JSON: {e.msg} at column {e.colno}") from e
    except ValueError as e:  # NaN / Infinity
        raise InvalidLabelError(f"evidence: {e}") from e
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidLabelError(f"evidence must be a JSON object or an array of objects, got {json_type(value)}")
    return list(normalise_evidence(value))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


MAX_INT_DIGITS = 4300  # Python's own default limit for converting between int and str
_INT_LIMIT = 10**MAX_INT_DIGITS  # the smallest int with more digits


def parse_json_int(text: str) -> int:
    """A JSON integer (the `parse_int` of json.loads), refused with a clear message when too long to store."""
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"a number of {digits:,} digits is too long (at most {MAX_INT_DIGITS:,})")
    return int(text)


_JSON_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')


def json_nesting(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count).

    A scan without recursion, to run before a decoder meets hostile input; on text that is
    not valid JSON it gives some bound, and the decoder reports the actual error.
    """
    depth = deepest = 0
    for token in _JSON_STRING_OR_BRACKET.finditer(text):
        ch = token.group()
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def json_type(value: Any) -> str:
    """How a value is called in JSON terms, for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------- frozen JSON


def freeze(value: Any, where: str, depth: int = 0) -> Any:
    """A read-only deep copy of a JSON value (mappings become read-only, arrays tuples).

    Raises InvalidLabelError for what JSON cannot store: non-string keys, NaN or infinity,
    other types, lone surrogates, objects and arrays nested more than MAX_JSON_DEPTH levels
    (`depth` is the number of levels around `value`).
    """
    if depth >= MAX_JSON_DEPTH and isinstance(value, (Mapping, list, tuple)):
        raise InvalidLabelError(f"{where} is nested more than {MAX_JSON_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_INT_LIMIT < value < _INT_LIMIT:
            raise InvalidLabelError(f"{where} contains a number too long to store (over {MAX_INT_DIGITS:,} digits)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidLabelError(f"{where} contains {value!r}, which JSON cannot store")
        return value
    if isinstance(value, str):
        return check_text(where, value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidLabelError(f"{where} has a non-string key {_brief_repr(key)}")
            out[check_text(where, key)] = freeze(item, where, depth + 1)
        return MappingProxyType(out)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item, where, depth + 1) for item in value)
    raise InvalidLabelError(f"{where} contains {json_type(value)}, which is not a JSON value")


def thaw(value: Any) -> Any:
    """A plain, mutable copy of a frozen JSON value (dicts and lists)."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value


def freeze_extra(extra: Mapping[str, Any], known: tuple[str, ...], where: str) -> JsonObject:
    """Unknown keys kept from a file: JSON values under keys that are not known keys."""
    if not isinstance(extra, Mapping):
        raise InvalidLabelError(f"{where} extra fields must be a mapping")
    clash = [key for key in extra if key in known]
    if clash:
        raise InvalidLabelError(f"{where} extra fields clash with known keys: {', '.join(clash)}")
    return freeze(extra, f"{where} extra fields")


# ---------------------------------------------------------------- time


def format_time(t: datetime) -> str:
    """ISO 8601 in UTC with a Z, e.g. 2025-03-01T12:00:00Z (microseconds only when present)."""
    utc = t.astimezone(timezone.utc)
    spec = "seconds" if utc.microsecond == 0 else "microseconds"
    return utc.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_time(text: object) -> datetime:
    """Parse an ISO 8601 timestamp into UTC; one without an offset is taken as UTC."""
    if not isinstance(text, str):
        raise InvalidLabelError(f"a timestamp must be a string, got {json_type(text)}")
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        t = datetime.fromisoformat(iso)
    except ValueError as e:
        raise InvalidLabelError(f"invalid timestamp {shorten(text)} (expected ISO 8601 such as 2025-03-01T12:00:00Z)") from e
    return _in_utc(f"timestamp {shorten(text)}", t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc))


def _aware(what: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidLabelError(f"label {what} must be a datetime, got {type(value).__name__}")
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    _in_utc(f"label {what} {value.isoformat()}", aware)
    return aware


def _in_utc(what: str, t: datetime) -> datetime:
    """`t` in UTC; InvalidLabelError when that falls outside the years 1..9999 a datetime holds."""
    try:
        return t.astimezone(timezone.utc)
    except OverflowError as e:
        raise InvalidLabelError(f"{what} is out of range: in UTC it falls outside the years 1 to 9999") from e


def shorten(text: str, limit: int = 60) -> str:
    """`repr(text)` cut to about `limit` characters, for quoting what a user wrote in a message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} characters)"


def _brief_repr(value: object, limit: int = 60) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long to convert
        return "(an int of over 4,300 digits)"
    return text if len(text) <= limit else text[:limit] + "..."
