"""Split files: `split NAME from "FILE"` names a set of inputs, with optional answers.

FILE is JSONL (one object per line, keys the input names, values typed as JSON) or, by its
`.csv` extension, CSV (a header row of input names; cells parsed by each input's declared type).
An optional `answer` key/column holds the expected output text. Every row must give every
input exactly once and lie in the domain, `where` included; a problem is a TheoryError whose
message names the file and its line (`train.jsonl:17: b=200 is outside int in 0..112`).
Duplicate rows count once. A file is read once per content: a small cache keyed by the file's
content and the domain keeps as-you-type checking cheap.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_interp.errors import InputError, TheoryError
from tui_interp.fileio import regular_file
from tui_interp.theory.diagnostics import TheoryEvalError
from tui_interp.theory.domain import Assignment, BoolSpec, Domain, IntRange, ListSpec, Spec, SpecError
from tui_interp.theory.limits import MAX_INT_DIGITS, MAX_SPLIT_BYTES, MAX_SPLIT_ROWS
from tui_interp.theory.nodes import Span, SplitDecl
from tui_interp.theory.render import Value, format_input, format_value, render_value

ANSWER = "answer"
Key = tuple[Value, ...]
Rows = dict[Key, str | None]
_BOOLS = {"true": True, "True": True, "1": True, "false": False, "False": False, "0": False}
_INT = re.compile(r"[+-]?[0-9]+")
_CACHE: OrderedDict[Hashable, tuple[Rows, bool]] = OrderedDict()
_CACHE_SIZE = 4


class _RowError(Exception):
    """A problem with one row; `line` when it is known where the problem is raised."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, eq=False)
class Split:
    """The inputs of a split file, in file order with duplicates removed, and their answers.

    `contains` and `answer` take an input as a mapping, normalised by the domain (a malformed
    one raises InputError); each costs one dict lookup.
    """

    name: str
    path: Path
    span: Span
    has_answers: bool
    """Every row of the file has an answer."""
    _names: tuple[str, ...] = field(repr=False)
    _rows: Rows = field(repr=False)
    _normalize: Callable[[Mapping[str, Any]], Assignment] = field(repr=False)

    @property
    def size(self) -> int:
        """How many distinct inputs the file holds."""
        return len(self._rows)

    def inputs(self) -> list[Assignment]:
        return [dict(zip(self._names, key, strict=True)) for key in self._rows]

    def contains(self, x: Mapping[str, Any]) -> bool:
        return tuple(self._normalize(x).values()) in self._rows

    def has_key(self, key: Key) -> bool:
        """Membership of an already normalised input, given as its values in input order."""
        return key in self._rows

    def answer(self, x: Mapping[str, Any]) -> str | None:
        """The answer text the file gives for x, or None (no answer, or not in the split)."""
        return self._rows.get(tuple(self._normalize(x).values()))


def load_split(decl: SplitDecl, theory_path: str | os.PathLike[str] | None, domain: Domain, signature: Hashable) -> Split:
    """Read a split file against a domain; a TheoryError naming the file (and line) if it is bad.

    FILE is relative to the theory file's directory (the current one without a path);
    `signature` identifies the domain and its `where`, for the cache (keyed by content).
    """
    base = Path(theory_path).parent if theory_path is not None else Path()
    path = (base / decl.file).resolve()
    regular_file(path, "split file", error=TheoryError)
    try:
        size = path.stat().st_size
        if size > MAX_SPLIT_BYTES:
            raise TheoryError(f"{decl.file}: the split file is too large ({size:,} bytes; the limit is {MAX_SPLIT_BYTES:,})")
        with open(path, "rb") as f:
            data = f.read(MAX_SPLIT_BYTES + 1)
    except OSError as e:
        raise TheoryError(f"{decl.file}: cannot read the split file: {e.strerror or e}") from None
    if len(data) > MAX_SPLIT_BYTES:
        raise TheoryError(f"{decl.file}: the split file is too large (more than {MAX_SPLIT_BYTES:,} bytes)")
    is_csv = path.suffix.lower() == ".csv"
    key = (hashlib.blake2b(data, digest_size=16).digest(), is_csv, signature)
    if key not in _CACHE:
        _CACHE[key] = _parse(data, decl.file, is_csv, domain)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    rows, has_answers = _CACHE[key]
    return Split(decl.name, path, decl.span, has_answers, domain.names, rows, domain.normalize)


def _parse(data: bytes, shown: str, is_csv: bool, domain: Domain) -> tuple[Rows, bool]:
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TheoryError(f"{shown}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} cannot be decoded)") from None
    records = _csv_records(text, domain) if is_csv else _jsonl_records(text)
    rows: Rows = {}
    first_line: dict[Key, int] = {}
    has_answers = True
    line = 1
    try:
        for count, (line, record) in enumerate(records, 1):
            if count > MAX_SPLIT_ROWS:
                raise _RowError(f"more than {MAX_SPLIT_ROWS:,} rows")
            answer = _answer(record.pop(ANSWER)) if ANSWER in record else None
            has_answers = has_answers and answer is not None
            x = _input(record, domain)
            k = tuple(x.values())
            if k not in rows:
                if not domain.accepts(x):
                    raise _RowError(f"{format_input(x)} is outside the domain: the `where` filter rejects it")
                rows[k], first_line[k] = answer, line
            elif answer is not None and rows[k] is not None and rows[k] != answer:
                raise _RowError(
                    f"{format_input(x)} is on line {first_line[k]} with answer {format_value(rows[k] or '')} "
                    f"and here with {format_value(answer)}"
                )
            elif rows[k] is None:
                rows[k] = answer
    except _RowError as e:
        raise TheoryError(f"{shown}:{e.line or line}: {e}") from None
    except TheoryEvalError as e:  # the `where` filter failed on this row
        raise TheoryError(f"{shown}:{line}: {e.message}") from None
    return rows, has_answers and bool(rows)


def _input(record: dict[str, Any], domain: Domain) -> Assignment:
    try:
        x = domain.normalize(record)
    except InputError as e:
        raise _RowError(str(e)) from None
    for name, spec in zip(domain.names, domain.specs, strict=True):
        if not spec.contains(x[name]):
            raise _RowError(f"{name}={format_value(x[name])} is outside {spec}")
    return x


def _answer(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) or (isinstance(value, list) and all(isinstance(v, (int, str)) for v in value)):
        return render_value(tuple(value) if isinstance(value, list) else value)
    raise _RowError(f"the answer must be a string, a whole number, a bool or a list of those, got {_json_kind(value)}")


# --- JSONL -------------------------------------------------------------------------------------


def _jsonl_records(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, row in enumerate(text.split("\n"), 1):
        if not row.strip():
            continue
        try:
            value = _json(row)
        except _RowError as e:
            raise _RowError(str(e), line) from None
        if not isinstance(value, dict):
            raise _RowError(f"expected an object with the inputs as keys, got {_json_kind(value)}", line)
        yield line, value


def _json(text: str) -> Any:
    """JSON; floats, NaN, ints over MAX_INT_DIGITS and repeated keys refused."""
    try:
        return json.loads(
            text,
            parse_float=_refuse("floats are not supported: only whole numbers"),
            parse_constant=_refuse("NaN and Infinity are not supported"),
            parse_int=_json_int,
            object_pairs_hook=_object,
        )
    except json.JSONDecodeError as e:
        raise _RowError(f"not valid JSON: {e.msg} (column {e.colno})") from None
    except RecursionError:
        raise _RowError("not valid JSON: nested too deeply") from None


def _refuse(message: str) -> Callable[[str], Any]:
    def refuse(text: str) -> Any:
        raise _RowError(f"{message} ({text[:20]})")

    return refuse


def _json_int(text: str) -> int:
    if len(text.lstrip("+-").lstrip("0")) > MAX_INT_DIGITS:
        raise _RowError(f"the number {text[:12]}... is too large ({len(text):,} digits)")
    return int(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _RowError(f"key {key!r} is given twice")
        out[key] = value
    return out


def _json_kind(value: Any) -> str:
    kinds = {type(None): "null", dict: "an object", list: "an array", str: "a string", bool: "a bool", int: "a number"}
    return kinds.get(type(value), "a value")


# --- CSV ---------------------------------------------------------------------------------------


def _csv_records(text: str, domain: Domain) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    specs = dict(zip(domain.names, domain.specs, strict=True))
    header: list[str] | None = None
    line = next_line = 1
    try:
        for cells in reader:
            line, next_line = next_line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = _header(cells, domain)
                continue
            if len(cells) != len(header):
                raise _RowError(f"{len(cells)} cells, but the header has {len(header)} columns")
            pairs = zip(header, cells, strict=True)
            yield line, {name: cell if name == ANSWER else _cell(specs[name], cell, name) for name, cell in pairs}
    except csv.Error as e:
        raise _RowError(f"not valid CSV: {e}", next_line) from None
    except _RowError as e:
        raise _RowError(str(e), e.line or line) from None


def _header(cells: list[str], domain: Domain) -> list[str]:
    for i, cell in enumerate(cells):
        if cell in cells[:i]:
            raise _RowError(f"column {cell!r} is given twice")
        if cell not in domain.names and cell != ANSWER:
            raise _RowError(f"unknown column {cell!r} (the inputs are {', '.join(domain.names)})")
    missing = [name for name in domain.names if name not in cells]
    if missing:
        raise _RowError(f"no column for input {missing[0]!r}")
    return cells


def _cell(spec: Spec, cell: str, name: str) -> Value:
    """A CSV cell as a value of the input's declared type."""
    if isinstance(spec, IntRange):
        if not _INT.fullmatch(cell.strip()):
            raise _RowError(f"{name}: {format_value(cell)} is not a whole number")
        return _json_int(cell.strip())
    if isinstance(spec, BoolSpec):
        if cell.strip() not in _BOOLS:
            raise _RowError(f"{name}: {format_value(cell)} is not a bool (true, false, True, False, 1 or 0)")
        return _BOOLS[cell.strip()]
    if isinstance(spec, ListSpec):
        try:
            return spec.normalize(_json(cell))
        except SpecError as e:
            raise _RowError(f"input {name!r}: {e}") from None
    return cell
