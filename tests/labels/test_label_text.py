"""Any text a person (or a script) types is stored exactly and shown escaped.

Names and notes with arbitrary Unicode, control characters and Rich markup: the store keeps
them byte for byte; `label list` shows markup literally and control characters as escapes.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.errors import LabelStoreError
from tui_interp.labels import InvalidLabelError, LabelStore, ModelRef, encodable, fileformat, markdown_cell, visible
from tui_interp.labels.records import LINE_BREAKS

MARKUP = ["[bold]", "[/bold]", "[/]", "[red on blue]", "[link=https://example.com]", "\\[", "[", "]", ":smile:", "\x1b[31m", "\x1b]8;;x\x07"]
CONTROL = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\x9b", "\u202e", "\u2066", "\u200b", "\ufeff"]

# Text mixing anything Unicode allows (no surrogates: not text), markup and controls.
pieces = st.one_of(st.text(max_size=8), st.sampled_from(MARKUP), st.sampled_from(CONTROL))
any_text = st.lists(pieces, max_size=6).map("".join)
names = any_text.filter(lambda s: bool(s.strip()) and not any(ch in LINE_BREAKS for ch in s))

runner = CliRunner()
_counter = itertools.count()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, note=any_text, tag=names)
def test_store_keeps_any_name_and_note_exactly(tmp_path: Path, name: str, note: str, tag: str) -> None:
    path = tmp_path / f"labels-{next(_counter)}.json"
    store = LabelStore(path, ModelRef("tiny", "fp"))
    store.add("L0.H1", name, note=note, tags=[tag])
    raw = json.loads(path.read_text(encoding="utf-8"))["labels"][0]
    assert (raw["name"], raw["note"], raw["tags"]) == (name, note, [tag])
    fileformat._memo.clear()  # read back through the full parser too
    label = store.read().get("L0.H1")
    assert (label.name, label.note, label.tags) == (name, note, (tag,))


@given(st.text(), st.sampled_from(sorted(LINE_BREAKS)), st.text())
def test_any_name_with_a_line_break_is_refused(before: str, line_break: str, after: str) -> None:
    with pytest.raises(InvalidLabelError, match="must be one line"):
        LabelStore(Path("unused.json"), ModelRef("m", "f")).add("L0", f"x{before}{line_break}{after}")


@given(any_text)
def test_visible_leaves_no_terminal_control_characters(text: str) -> None:
    shown = visible(text)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in shown)
    assert "\u202e" not in shown and "\u2066" not in shown
    if text.isprintable():
        assert shown == text


def test_visible_examples() -> None:
    assert visible("a\x1b[31mb\tc\n") == "a\\x1b[31mb\\tc\\n"
    assert visible("line1\nline2", keep_newlines=True) == "line1\nline2"
    assert visible("evil\u202eexe.txt") == "evil\\u202eexe.txt"
    assert visible("ok [bold] ünïcødé 漢字 🙂") == "ok [bold] ünïcødé 漢字 🙂"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, note=any_text)
def test_cli_shows_names_escaped_and_json_exact(tiny_gpt2: Path, wide_console: None, name: str, note: str) -> None:
    labels = tiny_gpt2 / f"labels-{next(_counter)}.json"
    # options first and `--`, so a name such as "-x" is not taken for an option
    added = runner.invoke(app, ["label", "add", "--note", note, "--labels", str(labels), "--", str(tiny_gpt2), "L1.H3", name])
    assert added.exit_code == 0, added.output
    assert f"Added L1.H3: {visible(name)}  (" in added.stdout
    listed = runner.invoke(app, ["label", "list", str(tiny_gpt2), "--labels", str(labels)])
    assert listed.exit_code == 0, listed.output
    assert not any(ord(ch) < 0x20 and ch != "\n" for ch in listed.stdout)  # no raw control characters
    assert "\x9b" not in listed.stdout and "\u202e" not in listed.stdout
    as_json = runner.invoke(app, ["label", "list", str(tiny_gpt2), "--labels", str(labels), "--json"])
    label = json.loads(as_json.stdout)["labels"][0]
    assert (label["name"], label["note"]) == (name, note)


def test_cli_list_shows_rich_markup_literally(tiny_gpt2: Path, wide_console: None) -> None:
    name = "[bold]induction[/bold] [red]head[/] \x1b[2J"
    assert runner.invoke(app, ["label", "add", str(tiny_gpt2), "L1.H3", name, "--note", "[link=http://x]click[/link]"]).exit_code == 0
    listed = runner.invoke(app, ["label", "list", str(tiny_gpt2)])
    assert listed.exit_code == 0
    assert "[bold]induction[/bold] [red]head[/] \\x1b[2J" in listed.stdout
    assert "[link=http://x]click[/link]" in listed.stdout
    assert "\x1b" not in listed.stdout


def test_lone_surrogate_from_an_undecodable_argument_is_refused(tiny_gpt2: Path) -> None:
    result = runner.invoke(app, ["label", "add", str(tiny_gpt2), "L0", "bad \udcff byte"])
    assert result.exit_code == 2
    assert "lone surrogate (U+DCFF)" in result.stderr
    assert not (tiny_gpt2 / "labels.json").exists()


def test_invalid_label_error_is_a_label_store_error() -> None:
    assert issubclass(InvalidLabelError, LabelStoreError)


def test_visible_and_encodable_escape_lone_surrogates() -> None:
    undecodable = "caf\udce9.json"  # how Python hands over the Latin-1 byte 0xE9 of a file name
    assert visible(undecodable) == "caf\\xe9.json"
    assert visible("a\ud800b") == "a\\ud800b"
    assert encodable(undecodable) == "caf\\xe9.json" and encodable(Path("/m/caf\udce9")) == "/m/caf\\xe9"
    assert encodable("a\ud800b\x1b") == "a\\ud800b\x1b"  # control characters are JSON's to escape
    assert encodable("ünïcødé 漢字") == "ünïcødé 漢字"
    for text in (visible(undecodable), encodable(undecodable), encodable("a\ud800b")):
        text.encode("utf-8")  # any stream can write it


@given(any_text)
def test_markdown_cell_leaves_no_markup(text: str) -> None:
    cell = markdown_cell(text)
    assert "\n" not in cell and "<" not in cell.replace("<br>", "")
    assert ">" not in cell.replace("<br>", "")
    unescaped = cell.replace("\\\\", "")  # what remains after removing escaped backslashes
    for ch in "[]|":
        assert all(unescaped[i - 1] == "\\" for i, c in enumerate(unescaped) if c == ch), (ch, cell)


def test_markdown_cell_examples() -> None:
    assert markdown_cell("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert markdown_cell("[x](javascript:alert(1)) ![i](y.png)") == "\\[x\\](javascript:alert(1)) !\\[i\\](y.png)"
    assert markdown_cell("a | b\\c &amp;\r\nd\x1b") == "a \\| b\\\\c &amp;amp;<br>d\\\\x1b"
