"""Split files (`split NAME from "FILE"`) and questions (no `expect`, or `expect ?`)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_interp.errors import InputError, TheoryError
from tui_interp.theory import check_theory, load_theory, parse_theory
from tui_interp.theory import splits as splits_module

HEAD = """theory "splits"
input a: int in 0..112
input b: int in 0..112
where a != 7
prompt "{a} {b} ="
expect (a + b) % 113
slice "wraps": a + b >= 113
"""
SPLIT_LINE = 9  # the line a test's `split` directive lands on (after one more line)


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def theory_with(tmp_path: Path, directive: str) -> str:
    """The theory text with `directive` as line 9, saved beside the split files."""
    text = HEAD + "slice b > 100\n" + directive + "\n"
    (tmp_path / "t.theory").write_text(text)
    return text


def split_error(tmp_path: Path, name: str, rows: list[str]) -> str:
    """The message check_theory reports for a split file, which must be its only error."""
    write(tmp_path / name, rows)
    text = theory_with(tmp_path, f'split train from "{name}"')
    found = [d for d in check_theory(text, tmp_path / "t.theory") if d.is_error]
    assert len(found) == 1, found
    (d,) = found
    line = text.split("\n")[SPLIT_LINE - 1]
    assert (d.line, d.col, d.end_col) == (SPLIT_LINE, 1, len(line) + 1)
    with pytest.raises(TheoryError) as info:
        parse_theory(text, tmp_path / "t.theory")
    assert info.value.message == d.message
    assert (info.value.line, info.value.col) == (SPLIT_LINE, 1)
    return d.message


def test_jsonl_split(tmp_path: Path) -> None:
    write(
        tmp_path / "train.jsonl",
        [
            '{"a": 1, "b": 2, "answer": "3"}',
            "",
            '{"b": 5, "a": 100, "answer": 105}',
            '{"a": 1, "b": 2, "answer": "3"}',  # a duplicate: counted once
            '{"a": 4, "b": 4}',
        ],
    )
    text = theory_with(tmp_path, 'split train from "train.jsonl"')
    theory = parse_theory(text, str(tmp_path / "t.theory"))
    (split,) = theory.splits
    assert (split.name, split.path, split.size, split.has_answers) == ("train", tmp_path / "train.jsonl", 3, False)
    assert (split.span.line, split.span.col) == (SPLIT_LINE, 1)
    assert split.inputs() == [{"a": 1, "b": 2}, {"a": 100, "b": 5}, {"a": 4, "b": 4}]
    assert split.contains({"a": 100, "b": 5}) and not split.contains({"a": 5, "b": 100})
    assert split.answer({"a": 100, "b": 5}) == "105"
    assert split.answer({"a": 4, "b": 4}) is None and split.answer({"a": 0, "b": 0}) is None
    with pytest.raises(InputError):
        split.contains({"a": 1})
    assert theory.evaluate({"a": 1, "b": 2}).splits == (True,)
    assert theory.evaluate({"a": 2, "b": 1}).splits == (False,)


def test_csv_split_with_every_type(tmp_path: Path) -> None:
    text = (
        'theory "types"\ninput n: int in -5..5\ninput f: bool\ninput s: str of "a,\\" b" len 0..4\n'
        'input xs: list[int in 0..9] len 0..3\nprompt "{n} {f} {s} {xs}"\nexpect n\nsplit dev from "dev.csv"\n'
    )
    (tmp_path / "dev.csv").write_text(
        'xs,answer,n,f,s\n"[1, 2]",x y,-3,true,"a,"""\n[],,+4,0,\n"[9]",z,5,True, b\n', encoding="utf-8"
    )
    theory = parse_theory(text, tmp_path / "t.theory")
    (split,) = theory.splits
    assert split.inputs() == [
        {"n": -3, "f": True, "s": 'a,"', "xs": (1, 2)},
        {"n": 4, "f": False, "s": "", "xs": ()},
        {"n": 5, "f": True, "s": " b", "xs": (9,)},
    ]
    assert [split.answer(x) for x in split.inputs()] == ["x y", "", "z"]
    assert split.has_answers


def test_files_are_relative_to_the_theory_or_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    write(tmp_path / "data" / "s.jsonl", ['{"a": 3, "b": 4}'])
    text = theory_with(tmp_path, 'split s from "data/s.jsonl"')
    assert load_theory(tmp_path / "t.theory").splits[0].path == tmp_path / "data" / "s.jsonl"
    monkeypatch.chdir(tmp_path)
    assert parse_theory(text).splits[0].size == 1
    monkeypatch.chdir(tmp_path / "data")
    message = [d.message for d in check_theory(text) if d.is_error][0]
    assert message.endswith("data/s.jsonl: no such split file")


def test_several_splits_in_order(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", ['{"a": 1, "b": 1}'])
    write(tmp_path / "b.csv", ["a,b", "1,1", "2,2"])
    text = HEAD + 'split train from "a.jsonl"\nsplit test from "b.csv"\n'
    theory = parse_theory(text, tmp_path / "t.theory")
    assert [(s.name, s.size) for s in theory.splits] == [("train", 1), ("test", 2)]
    assert theory.evaluate({"a": 1, "b": 1}).splits == (True, True)
    assert theory.evaluate({"a": 2, "b": 2}).splits == (False, True)


JSONL_ERRORS = [
    (['{"a": 1, "b": 2}', '{"a": 1, "b": 200}'], "train.jsonl:2: b=200 is outside int in 0..112"),
    (['{"a": 7, "b": 2}'], "train.jsonl:1: a=7, b=2 is outside the domain: the `where` filter rejects it"),
    (['{"a": 1}'], "train.jsonl:1: missing input 'b'"),
    (['{"a": 1, "b": 2, "c": 3}'], "train.jsonl:1: unknown input 'c' (the inputs are a, b)"),
    (['{"a": 1, "b": 2, "a": 3}'], "train.jsonl:1: key 'a' is given twice"),
    (['{"a": "1", "b": 2}'], "train.jsonl:1: input 'a': expected an int, got str"),
    (['{"a": true, "b": 2}'], "train.jsonl:1: input 'a': expected an int, got bool"),
    (['{"a": 1.5, "b": 2}'], "train.jsonl:1: floats are not supported: only whole numbers (1.5)"),
    (['{"a": NaN, "b": 2}'], "train.jsonl:1: NaN and Infinity are not supported (NaN)"),
    (['{"a": ' + "9" * 5000 + ', "b": 2}'], "train.jsonl:1: the number 999999999999... is too large (5,000 digits)"),
    (['{"a": 1, "b": 2', ""], "train.jsonl:1: not valid JSON: Expecting ',' delimiter (column 16)"),
    (["", "", "[1, 2]"], "train.jsonl:3: expected an object with the inputs as keys, got an array"),
    (["[" * 100000 + "]" * 100000], "train.jsonl:1: not valid JSON: nested too deeply"),
    (['{"a": 1, "b": 2, "answer": null}'], "train.jsonl:1: the answer must be a string, a whole number, a bool"),
    (['{"a": 1, "b": 2, "answer": [[1]]}'], "train.jsonl:1: the answer must be a string, a whole number, a bool or a list"),
    (
        ['{"a": 1, "b": 2, "answer": "3"}', '{"a": 1, "b": 2, "answer": "4"}'],
        'train.jsonl:2: a=1, b=2 is on line 1 with answer "3" and here with "4"',
    ),
]


@pytest.mark.parametrize("rows, message", JSONL_ERRORS, ids=[m for _, m in JSONL_ERRORS])
def test_jsonl_errors_name_the_file_and_line(tmp_path: Path, rows: list[str], message: str) -> None:
    assert split_error(tmp_path, "train.jsonl", rows).startswith(message)


CSV_ERRORS = [
    (["a,b", "1,2", "1,200"], "train.csv:3: b=200 is outside int in 0..112"),
    (["a,b,c", "1,2,3"], "train.csv:1: unknown column 'c' (the inputs are a, b)"),
    (["a", "1"], "train.csv:1: no column for input 'b'"),
    (["a,b,a", "1,2,3"], "train.csv:1: column 'a' is given twice"),
    (["a,b", "1,2,3"], "train.csv:2: 3 cells, but the header has 2 columns"),
    (["a,b", "1,x"], 'train.csv:2: b: "x" is not a whole number'),
    (["a,b", "", "1,1.5"], 'train.csv:3: b: "1.5" is not a whole number'),
    (["a,b", '1,"2', "3"], 'train.csv:2: b: "2\\n3\\n" is not a whole number'),  # an open quote runs to the end
    (["a,b", "1,2\x00"], 'train.csv:2: b: "2\\x00" is not a whole number'),
]


@pytest.mark.parametrize("rows, message", CSV_ERRORS, ids=[m for _, m in CSV_ERRORS])
def test_csv_errors_name_the_file_and_line(tmp_path: Path, rows: list[str], message: str) -> None:
    assert split_error(tmp_path, "train.csv", rows).startswith(message)


def test_csv_cells_of_bools_and_lists(tmp_path: Path) -> None:
    text = 'theory "t"\ninput f: bool\ninput xs: list[int in 0..3] len 2\nprompt "{f}"\nexpect f\nsplit s from "s.csv"\n'
    theory_path = tmp_path / "t.theory"

    def error(rows: list[str]) -> str:
        write(tmp_path / "s.csv", rows)
        return [d.message for d in check_theory(text, theory_path) if d.is_error][0]

    assert error(["f,xs", 'yes,"[1, 2]"']) == 's.csv:2: f: "yes" is not a bool (true, false, True, False, 1 or 0)'
    assert error(["f,xs", '1,"[1, 2, 3]"']) == "s.csv:2: xs=[1, 2, 3] is outside list[int in 0..3] len 2"
    assert error(["f,xs", '1,"[1, 2.0]"']) == "s.csv:2: floats are not supported: only whole numbers (2.0)"
    assert error(["f,xs", '1,"[1, ""2""]"']) == "s.csv:2: input 'xs': expected an int, got str"
    assert error(["f,xs", "1,[1"]).startswith("s.csv:2: not valid JSON")


def test_files_that_are_not_split_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = theory_with(tmp_path, 'split train from "nope.jsonl"')
    (d,) = [d for d in check_theory(text, tmp_path / "t.theory") if d.is_error]
    assert d.message == f"{tmp_path / 'nope.jsonl'}: no such split file"
    text = theory_with(tmp_path, 'split train from "."')
    assert "is a directory, expected a split file" in check_theory(text, tmp_path / "t.theory")[0].message
    os.mkfifo(tmp_path / "pipe.jsonl")
    text = theory_with(tmp_path, 'split train from "pipe.jsonl"')
    assert "is a named pipe (FIFO), expected a split file" in check_theory(text, tmp_path / "t.theory")[0].message
    (tmp_path / "bad.jsonl").write_bytes(b'{"a": 1, "b": 2}\n{"a": "\xff"}\n')
    text = theory_with(tmp_path, 'split train from "bad.jsonl"')
    assert check_theory(text, tmp_path / "t.theory")[0].message == (
        "bad.jsonl:2: not UTF-8 text (byte 0xff cannot be decoded)"
    )
    monkeypatch.setattr(splits_module, "MAX_SPLIT_BYTES", 20)
    write(tmp_path / "big.jsonl", ['{"a": 1, "b": 2}', '{"a": 1, "b": 3}'])
    text = theory_with(tmp_path, 'split train from "big.jsonl"')
    assert check_theory(text, tmp_path / "t.theory")[0].message == (
        "big.jsonl: the split file is too large (34 bytes; the limit is 20)"
    )
    monkeypatch.setattr(splits_module, "MAX_SPLIT_BYTES", 1000)
    monkeypatch.setattr(splits_module, "MAX_SPLIT_ROWS", 2)
    assert split_error(tmp_path, "rows.jsonl", ['{"a": 1, "b": 2}'] * 3) == "rows.jsonl:3: more than 2 rows"


def test_an_empty_file_is_an_empty_split(tmp_path: Path) -> None:
    write(tmp_path / "e.jsonl", [])
    text = theory_with(tmp_path, 'split e from "e.jsonl"')
    (split,) = parse_theory(text, tmp_path / "t.theory").splits
    assert (split.size, split.inputs(), split.has_answers) == (0, [], False)


SPLIT_SYNTAX = [
    ('split «"x"» from "f.jsonl"', "expected the split's name, e.g. split train from \"train.jsonl\"; got '\"x\"'"),
    ("split train «to» 'f.jsonl'", "expected `from` and the file in quotes"),
    ("split train from «f»", "expected the file in quotes"),
    ('split train from «""»', "expected the file in quotes"),
    ('split train from "f.jsonl" «x»', "unexpected 'x' after the file"),
    ('split «wraps» from "f.jsonl"', "a slice named 'wraps' is already on line 7"),
    ("split«»", "`split` needs a name and a file"),
]


@pytest.mark.parametrize("line, message", SPLIT_SYNTAX, ids=[c[0] for c in SPLIT_SYNTAX])
def test_split_directive_syntax(line: str, message: str) -> None:
    start = line.index("«")
    end = line.index("»") - 1
    text = HEAD + line.replace("«", "").replace("»", "") + "\n"
    (d,) = [d for d in check_theory(text) if d.is_error]
    assert (d.line, d.col, d.end_col) == (8, start + 1, max(end, start + 1) + 1)
    assert message in d.message


def test_split_names_are_distinct_from_each_other_and_from_slices(tmp_path: Path) -> None:
    text = HEAD + 'split t from "a.jsonl"\nsplit t from "b.jsonl"\nslice "t": a > 1\n'
    found = [(d.line, d.message) for d in check_theory(text) if d.is_error]
    assert found == [(9, "a split named 't' is already on line 8"), (10, "a split named 't' is already on line 8")]


# --- questions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("expect", ["", "expect ?\n", "expect   ?   # what does it compute?\n"])
def test_a_theory_without_expect_is_a_question(expect: str) -> None:
    text = 'theory "q"\ninput a: int in 0..9\nprompt "{a} ="\n' + expect
    assert [d for d in check_theory(text) if d.is_error] == []
    theory = parse_theory(text)
    assert theory.is_question and theory.expect is None
    ev = theory.evaluate({"a": 3})
    assert (ev.prompt, ev.expected, ev.expected_text, ev.slices, ev.splits) == ("3 =", None, None, (), ())
    with pytest.raises(TheoryError, match="theory 'q' is a question: it has no `expect` line"):
        theory.expected({"a": 3})
    assert not parse_theory(text.replace("?", "a") if expect else text + "expect a\n").is_question


def test_expect_question_mark_still_counts_as_the_one_expect() -> None:
    text = 'theory "q"\ninput a: int in 0..9\nprompt "{a} ="\nexpect ?\nexpect a\n'
    (d,) = [d for d in check_theory(text) if d.is_error]
    assert (d.line, d.message) == (5, "second `expect` line (the first is line 4)")


# --- round trips and corruption (hypothesis) ---------------------------------------------------

RT_THEORY = """theory "round trip"
input n: int in -1000..1000
input f: bool
input s: str of "ab,\\"' \\n\\té" len 0..6
input xs: list[int in 0..99] len 0..4
input ss: list[str of "xy" len 1..2] len 0..3
input g: list[list[bool] len 1] len 0..2
prompt "{n}"
expect n
split data from "data.{ext}"
"""

assignments = st.fixed_dictionaries(
    {
        "n": st.integers(-1000, 1000),
        "f": st.booleans(),
        "s": st.text(alphabet="ab,\"' \n\té", max_size=6),
        "xs": st.lists(st.integers(0, 99), max_size=4),
        "ss": st.lists(st.text(alphabet="xy", min_size=1, max_size=2), max_size=3),
        "g": st.lists(st.lists(st.booleans(), min_size=1, max_size=1), max_size=2),
    }
)
ROUND_TRIP = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _as_values(x: dict) -> dict:
    return {k: tuple(tuple(v) if isinstance(v, list) else v for v in x[k]) if isinstance(x[k], list) else x[k] for k in x}


def _unique(rows: list[dict]) -> list[dict]:
    out: list[dict] = []
    for x in map(_as_values, rows):
        if x not in out:
            out.append(x)
    return out


@ROUND_TRIP
@given(st.lists(assignments, max_size=8), st.lists(st.text(max_size=5), min_size=8, max_size=8))
def test_jsonl_round_trip(tmp_path: Path, rows: list[dict], answers: list[str]) -> None:
    lines = [json.dumps(dict(x, answer=answers[i])) for i, x in enumerate(rows)]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = RT_THEORY.replace("{ext}", "jsonl")
    try:
        theory = parse_theory(text, tmp_path / "t.theory")
    except TheoryError as e:  # only a duplicate input with two different answers is refused
        assert "with answer" in e.message
        return
    (split,) = theory.splits
    assert split.inputs() == _unique(rows)
    assert split.has_answers == bool(rows)
    for i, x in enumerate(rows):
        assert split.contains(x)
        assert split.answer(x) == next(answers[j] for j, y in enumerate(rows) if _as_values(y) == _as_values(x))
        assert i >= 0


@ROUND_TRIP
@given(st.lists(assignments, max_size=8))
def test_csv_round_trip(tmp_path: Path, rows: list[dict]) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["g", "s", "n", "f", "xs", "ss"])
    for x in rows:
        writer.writerow([json.dumps(x["g"]), x["s"], x["n"], x["f"], json.dumps(x["xs"]), json.dumps(x["ss"])])
    (tmp_path / "data.csv").write_text(out.getvalue(), encoding="utf-8", newline="")
    theory = parse_theory(RT_THEORY.replace("{ext}", "csv"), tmp_path / "t.theory")
    (split,) = theory.splits
    assert split.inputs() == _unique(rows)
    assert split.size == len(_unique(rows)) and not split.has_answers


GOOD = ['{"n": 1, "f": true, "s": "a", "xs": [1], "ss": ["x"], "g": [[true]]}'] * 3 + [
    '{"n": -5, "f": false, "s": "", "xs": [], "ss": [], "g": []}'
]


@settings(ROUND_TRIP, max_examples=150)
@given(st.integers(0, 3), st.integers(0, 80), st.text(min_size=1, max_size=3), st.sampled_from(["insert", "replace", "delete"]))
def test_corrupted_lines_give_file_line_errors(tmp_path: Path, row: int, at: int, junk: str, op: str) -> None:
    lines = list(GOOD)
    line = lines[row]
    at = min(at, len(line))
    lines[row] = {
        "insert": line[:at] + junk + line[at:],
        "replace": line[:at] + junk + line[at + len(junk) :],
        "delete": line[:at] + line[at + len(junk) :],
    }[op]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")
    try:
        parse_theory(RT_THEORY.replace("{ext}", "jsonl"), tmp_path / "t.theory")
    except TheoryError as e:
        assert e.line == 10 and e.message.startswith("data.jsonl:"), e
        file_line = int(e.message.split(":")[1])
        assert row + 1 <= file_line <= len("\n".join(lines).split("\n")), e
