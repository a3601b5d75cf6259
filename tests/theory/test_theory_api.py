"""The public API: load/parse/check, the Theory object, rendering, claims, pickling."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import pytest
from theory_testlib import DATA

from tui_interp.errors import TheoryError
from tui_interp.theory import (
    AttendsClaim,
    LabelClaim,
    NeedsClaim,
    SufficesClaim,
    check_theory,
    describe_error,
    format_caret,
    format_input,
    format_value,
    load_theory,
    parse_theory,
    render_value,
    to_json,
)
from tui_interp.theory.types import INT, ListType


def test_modadd_file() -> None:
    theory = load_theory(DATA / "modadd.theory")
    assert theory.name == "modular addition"
    assert theory.path == str(DATA / "modadd.theory")
    assert theory.input_names == ("a", "b")
    assert [str(d.spec) for d in theory.inputs] == ["int in 0..112", "int in 0..112"]
    assert theory.domain.size == 12769
    x = {"a": 100, "b": 20}
    assert theory.render_prompt(x) == "100 20 ="
    assert theory.expected(x) == 7
    assert theory.render_expected(x) == "7"
    assert theory.slice_values(x) == {"wraps": True}
    assert [s.name for s in theory.slices] == ["wraps"]
    assert theory.slices[0].source == "a + b >= 113"
    assert theory.slices[0].predicate({"a": 1, "b": 2}) is False
    [(name, holds)] = theory.slices
    assert name == "wraps" and holds({"a": 100, "b": 13}) is True
    assert theory.expect_type == INT
    assert [type(c) for c in theory.claims] == [NeedsClaim, SufficesClaim, AttendsClaim]
    assert theory.warnings == ()
    assert theory.source == (DATA / "modadd.theory").read_text()


def test_every_shipped_example_parses_and_runs() -> None:
    for path in sorted(DATA.glob("*.theory")):
        if path.name == "broken.theory":
            continue
        theory = load_theory(path)
        sel = theory.domain.select(limit=300, seed=1)
        assert len(sel.inputs) > 0
        for x in sel.inputs[:50]:
            ev = theory.evaluate(x)
            assert ev.prompt == theory.render_prompt(x)
            assert ev.expected == theory.expected(x)
            assert ev.expected_text == render_value(ev.expected)
            assert len(ev.slices) == len(theory.slices)


def test_broken_example_reports_every_problem() -> None:
    found = check_theory((DATA / "broken.theory").read_text())
    assert [d.line for d in found] == [3, 4, 5, 6, 7, 8]
    with pytest.raises(TheoryError) as info:
        load_theory(DATA / "broken.theory")
    assert str(info.value).startswith(f"{DATA / 'broken.theory'}:3:17: empty range 9..0")


def test_evaluate_returns_everything_for_one_input() -> None:
    theory = load_theory(DATA / "sort.theory")
    ev = theory.evaluate({"xs": [5, 3, 9, 1, 7, 2, 8, 6]})
    assert ev.input == {"xs": (5, 3, 9, 1, 7, 2, 8, 6)}
    assert ev.prompt == "5 3 9 1 7 2 8 6 |"
    assert ev.expected == (1, 2, 3, 5, 6, 7, 8, 9)
    assert ev.expected_text == "1 2 3 5 6 7 8 9"
    assert ev.slices == (False,)


def test_prompt_pieces_map_characters_to_inputs() -> None:
    theory = load_theory(DATA / "induction.theory")
    pieces = theory.prompt_pieces({"seq": [3, 1, 4], "k": 1})
    assert [(p.text, p.start, p.end, p.placeholder, sorted(p.inputs)) for p in pieces] == [
        ("3 1 4", 0, 5, "join(seq, ' ')", ["seq"]),
        (" ", 5, 6, None, []),
        ("1", 6, 7, "seq[k]", ["k", "seq"]),
    ]
    assert "".join(p.text for p in pieces) == theory.render_prompt({"seq": [3, 1, 4], "k": 1})


def test_rendering_rules() -> None:
    assert render_value(-12) == "-12"
    assert render_value(True) == "True"
    assert render_value(False) == "False"
    assert render_value("a b") == "a b"
    assert render_value((3, 1, 2)) == "3 1 2"
    assert render_value(()) == ""
    assert render_value(("x", "y")) == "x y"
    assert render_value((True, False)) == "True False"
    assert format_value('a"b\n') == '"a\\"b\\n"'
    assert format_value((1, ("x",))) == '[1, ["x"]]'
    assert format_value("x" * 200).endswith("...") and len(format_value("x" * 200)) == 80
    assert format_input({"a": 1, "s": "01", "xs": (1, 2)}) == 'a=1, s="01", xs=[1, 2]'
    assert to_json({"xs": (1, (2, 3))}["xs"]) == [1, [2, 3]]


def test_prompt_renders_lists_and_bools_and_braces() -> None:
    theory = parse_theory(
        'theory "r"\ninput xs: list[int in 0..9] len 3\ninput f: bool\n'
        "prompt \"{{{xs}}} {f} {join(xs, '')} {[c for c in 'ab']}\"\nexpect xs\n"
    )
    x = {"xs": [1, 2, 3], "f": False}
    assert theory.render_prompt(x) == "{1 2 3} False 123 a b"
    assert theory.render_expected(x) == "1 2 3"


def test_claims_are_parsed_with_defaults_and_spans() -> None:
    text = (
        'theory "c"\ninput a: int in 0..9\nprompt "{a} ="\nexpect a\n'
        "claim needs L0.mlp\n"
        "claim needs L0.mlp L1.mlp, L*.H* using zero below 25%\n"
        "claim suffices embed, L0.H0 above 0.95 using resample\n"
        'claim attends L0.H2 from "=" to a above .3\n'
        "claim attends L1.H0 from -1 to 0\n"
        'claim label L0.H1 "previous token"\n'
    )
    c = parse_theory(text).claims
    assert isinstance(c[0], NeedsClaim)
    assert [r.text for r in c[0].components] == ["L0.mlp"]
    assert (c[0].ablation, c[0].threshold.op, c[0].threshold.value, c[0].threshold.explicit) == (
        "mean",
        "below",
        0.5,
        False,
    )
    assert c[0].text == "needs L0.mlp"
    assert (c[0].span.line, c[0].span.col, c[0].span.end_col) == (5, 7, 19)
    assert [(r.text, r.is_glob) for r in c[1].components] == [("L0.mlp", False), ("L1.mlp", False), ("L*.H*", True)]
    assert (c[1].ablation, c[1].threshold.value, c[1].threshold.explicit) == ("zero", 0.25, True)
    span = c[1].threshold.span
    assert span is not None and (span.col, span.end_col) == (45, 54)
    assert isinstance(c[2], SufficesClaim)
    assert (c[2].ablation, c[2].threshold.op, c[2].threshold.value) == ("resample", "above", 0.95)
    assert isinstance(c[3], AttendsClaim)
    assert (c[3].head.text, c[3].source.kind, c[3].source.value, c[3].target.kind, c[3].target.value) == (
        "L0.H2",
        "text",
        "=",
        "input",
        "a",
    )
    assert c[3].threshold.value == 0.3
    assert (c[4].source.kind, c[4].source.value, c[4].target.value, c[4].threshold.value) == ("index", -1, 0, 0.5)
    assert isinstance(c[5], LabelClaim)
    assert (c[5].component.text, c[5].label) == ("L0.H1", "previous token")
    assert c[0].threshold.holds(0.4) and not c[0].threshold.holds(0.5)
    assert c[2].threshold.holds(0.96) and not c[2].threshold.holds(0.95)
    assert str(c[2].threshold) == "above 0.95"


def test_check_theory_is_clean_on_a_good_theory() -> None:
    assert check_theory((DATA / "modadd.theory").read_text()) == []


def test_load_theory_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(TheoryError, match=r"nope\.theory: no such theory file"):
        load_theory(tmp_path / "nope.theory")
    with pytest.raises(TheoryError, match="is a directory, expected a theory file"):
        load_theory(tmp_path)
    fifo = tmp_path / "pipe.theory"
    os.mkfifo(fifo)
    with pytest.raises(TheoryError, match="is a named pipe"):  # refused at once, never opened
        load_theory(fifo)
    bad = tmp_path / "bad.theory"
    bad.write_bytes(b'theory "x"\nprompt "caf\xe9"\n')
    with pytest.raises(TheoryError) as info:
        load_theory(bad)
    e = info.value
    assert (e.line, e.col, e.path) == (2, 12, str(bad))
    assert "is not UTF-8 text (byte 0xe9 cannot be decoded)" in e.message
    big = tmp_path / "big.theory"
    big.write_bytes(b"#" * 1_000_001)
    with pytest.raises(TheoryError, match="is too large"):
        load_theory(big)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_load_theory_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.theory"
    path.write_text('theory "x"\n')
    path.chmod(0)
    try:
        with pytest.raises(TheoryError, match="permission denied"):
            load_theory(path)
    finally:
        path.chmod(0o600)


def test_load_theory_accepts_a_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "win.theory"
    path.write_bytes(b'\xef\xbb\xbftheory "w"\r\ninput a: int in 0..3\r\nprompt "{a}"\r\nexpect a\r\n')
    theory = load_theory(path)
    assert theory.name == "w"
    assert theory.render_prompt({"a": 2}) == "2"


def test_error_formatting_with_a_caret() -> None:
    text = 'theory "t"\ninput a: int in 0..9\nprompt "{a}"\nexpect a + "x"\n'
    with pytest.raises(TheoryError) as info:
        parse_theory(text, path="t.theory")
    assert describe_error(info.value, text) == (
        "t.theory:4:8: cannot add int and str; convert the int with str(...) or the str with int(...)\n"
        '4 | expect a + "x"\n'
        "  |        ^^^^^^^"
    )
    assert format_caret(text, 99, 1) == ""


def test_theories_pickle_as_source() -> None:
    theory = load_theory(DATA / "induction.theory")
    clone = pickle.loads(pickle.dumps(theory))
    x = {"seq": [4, 2, 4, 7], "k": 0}
    assert clone.evaluate(x) == theory.evaluate(x)
    assert clone.name == theory.name and clone.path == theory.path


def test_expect_type_is_recorded() -> None:
    theory = load_theory(DATA / "sort.theory")
    assert theory.expect_type == ListType(INT)


def test_mutation_through_the_theory_stays_in_the_domain() -> None:
    theory = load_theory(DATA / "induction.theory")
    rng = random.Random(0)
    x = theory.domain.sample(1, seed=0)[0]
    for _ in range(500):
        y = theory.domain.mutate(x, rng)
        assert y is not None and theory.domain.contains(y)
        theory.evaluate(y)
        x = y
