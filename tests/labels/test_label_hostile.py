"""Hostile input to `tui-interp label add|list|rm|export`: never a traceback, never a hang.

Each command given a FIFO, a device or a directory for its label file, evidence nested
thousands deep, component numbers of thousands of digits, file names that are not UTF-8,
or a label file crafted to break the parser, fails at once with one line on stderr and
exit code 2. Markdown exports render label text as text: never HTML, a link or an image.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.labels import store as store_module

runner = CliRunner()
COMMANDS = [("list",), ("export",), ("export", "--format", "json"), ("list", "--json"), ("add", "L0.H1", "x"), ("rm", "L0.H1")]
GOOD_LABEL = {"component": "L0", "name": "n", "note": "", "tags": [], "evidence": [], "created": "2025-01-01T00:00:00Z", "updated": "2025-01-01T00:00:00Z"}


def invoke(*args: object, seconds: float = 30.0):
    """Run `tui-interp label ARGS` in a daemon thread; fail the test if it has not finished in `seconds`."""
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(runner.invoke(app, ["label", *(str(a) for a in args)])), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"tui-interp label {' '.join(map(str, args))} blocked for over {seconds} s"
    return outcome[0]


def one_line_error(*args: object) -> str:
    """The command fails with exit 2, one short line on stderr, nothing on stdout, no traceback."""
    result = invoke(*args)
    assert result.exit_code == 2, (result.exit_code, result.stdout[:500], result.stderr[:500], result.exception)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[:1000]
    assert len(lines[0]) < 400, lines[0]
    return lines[0]


def command_args(command: tuple[str, ...], model: Path) -> list[object]:
    return [command[0], model, *command[1:]]


# ---------------------------------------------------------------- not a regular file


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_fifo_as_the_default_label_file(tiny_gpt2: Path, command: tuple[str, ...]) -> None:
    path = tiny_gpt2 / "labels.json"
    os.mkfifo(path)
    assert one_line_error(*command_args(command, tiny_gpt2)) == f"error: {path}: is a named pipe (FIFO), not a label file"
    assert not store_module.lock_path(path).exists()  # refused before the lock


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_fifo_given_with_labels(tiny_gpt2: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    message = one_line_error(*command_args(command, tiny_gpt2), "--labels", fifo)
    assert message == f"error: {fifo}: is a named pipe (FIFO), not a label file"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_device_given_with_labels(tiny_gpt2: Path, command: tuple[str, ...]) -> None:
    assert one_line_error(*command_args(command, tiny_gpt2), "--labels", "/dev/null") == "error: /dev/null: is a device, not a label file"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_directory_as_the_label_file(tiny_gpt2: Path, command: tuple[str, ...]) -> None:
    (tiny_gpt2 / "labels.json").mkdir()
    message = one_line_error(*command_args(command, tiny_gpt2))
    assert message == f"error: {tiny_gpt2 / 'labels.json'}: is a directory, not a label file"


# ---------------------------------------------------------------- odd values on the command line


def test_evidence_nested_5000_deep(tiny_gpt2: Path) -> None:
    for deep in ("[" * 5000 + "]" * 5000, '{"a": ' * 5000 + "1" + "}" * 5000, "[" + '{"a": ' * 5000 + "1" + "}" * 5000 + "]"):
        assert one_line_error("add", tiny_gpt2, "L0.H1", "x", "--evidence", deep) == "error: evidence is nested more than 32 levels deep"
    assert not (tiny_gpt2 / "labels.json").exists()


def test_evidence_32_levels_deep_is_accepted(tiny_gpt2: Path) -> None:
    evidence = '{"a": ' * 31 + "[]" + "}" * 31  # 31 objects around an array: 32 levels
    assert invoke("add", tiny_gpt2, "L0.H1", "x", "--evidence", evidence).exit_code == 0
    assert invoke("add", tiny_gpt2, "L0.H2", "x", "--evidence", f"[{evidence}]").exit_code == 0
    assert one_line_error("add", tiny_gpt2, "L0.H3", "x", "--evidence", '{"b": ' + evidence + "}") == (
        "error: evidence is nested more than 32 levels deep"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "L" + "9" * 5000 + ".H1", "x"), "a layer, head or neuron number of over 9 digits"),
        (("add", "L1.H" + "9" * 5000, "x"), "a layer, head or neuron number of over 9 digits"),
        (("add", "L1.N" + "1" * 5000, "x"), "a layer, head or neuron number of over 9 digits"),
        (("rm", "L" + "9" * 5000 + ".H1"), "a layer, head or neuron number of over 9 digits"),
        (("add", "L0.H1", "x", "--evidence", '{"v": 1' + "0" * 5000 + "}"), "evidence: a number of 5,001 digits is too long (at most 4,300)"),
        (("add", "L0.H1", "x", "--evidence", '{"v": 1e999}'), "evidence item 1 contains inf, which JSON cannot store"),
        (("add", "L0.H1", "x", "--evidence", '{"v": "\\ud800"}'), "evidence item 1 contains a lone surrogate (U+D800)"),
        (("add", "L0.H1", "x", "--evidence", "{\udcff}"), "evidence contains a lone surrogate (U+DCFF)"),
        (("add", "L0.H1", "x", "--note", "bad \udcff"), "note contains a lone surrogate (U+DCFF)"),
        (("add", "L0.H1", "x", "--tag", "bad \udcff"), "tag contains a lone surrogate (U+DCFF)"),
        (("add", "L0.H1", "x", "--tag", "two\nlines" + "x" * 5000), "must be one line"),
        (("add", "L0.\udcff", "x"), "unknown component id"),
    ],
)
def test_odd_values_are_one_line_errors(tiny_gpt2: Path, args: tuple[str, ...], message: str) -> None:
    assert message in one_line_error(args[0], tiny_gpt2, *args[1:])
    assert not (tiny_gpt2 / "labels.json").exists()


def test_a_label_file_name_that_is_not_utf8(tiny_gpt2: Path, tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("Windows file names are UTF-16")
    labels = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.json"))  # Latin-1 bytes, as an old disk might hold
    try:
        labels.touch()
        labels.unlink()
    except (OSError, UnicodeError):
        pytest.skip("this filesystem refuses file names that are not UTF-8")
    shown = f"{tmp_path}/caf\\xe9.json"
    added = invoke("add", tiny_gpt2, "L0.H1", "head", "--labels", labels)
    assert added.exit_code == 0, (added.stderr, added.exception)
    assert added.stdout == f"Added L0.H1: head  ({shown})\n"
    assert labels.is_file()
    listed = invoke("list", tiny_gpt2, "--labels", labels, "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)["labels_path"] == shown
    missing = Path(os.fsdecode(os.fsencode(tmp_path) + b"/nowhere\xff/labels.json"))
    assert one_line_error("add", tiny_gpt2, "L0.H1", "x", "--labels", missing) == (
        f"error: cannot write {tmp_path}/nowhere\\xff/labels.json: directory {tmp_path}/nowhere\\xff does not exist"
    )


def test_a_message_with_a_line_break_stays_one_line(tiny_gpt2: Path, tmp_path: Path) -> None:
    labels = tmp_path / "two\nlines" / "labels.json"
    message = one_line_error("add", tiny_gpt2, "L0.H1", "x", "--labels", labels)
    assert message == f"error: cannot write {tmp_path}/two\\nlines/labels.json: directory {tmp_path}/two\\nlines does not exist"


# ---------------------------------------------------------------- label files crafted to break the parser


def label_file(**label_fields: object) -> str:
    document = {"format": "tui-interp.labels/1", "model": {"name": "tiny", "fingerprint": "x"}, "labels": [{**GOOD_LABEL, **label_fields}]}
    return json.dumps(document, indent=2) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"labels": ' + "[" * 5000 + "]" * 5000 + "}", "not a label file: JSON nested too deeply"),
        (label_file(component="L" + "9" * 5000), "a layer, head or neuron number of over 9 digits"),
        (label_file(evidence=[{"v": 10**4000}]).replace("1" + "0" * 4000, "1" + "0" * 4400), "a number of 4,401 digits is too long"),
        (label_file(created="0001-01-01T00:00:00+01:00"), "timestamp '0001-01-01T00:00:00+01:00' is out of range"),
        (label_file(updated="9999-12-31T23:59:59-01:00"), "timestamp '9999-12-31T23:59:59-01:00' is out of range"),
        (label_file(created="9" * 5000), "invalid timestamp '99999"),
        (label_file(evidence=[json.loads('{"a": ' * 40 + "1" + "}" * 40)]), "evidence item 1 is nested more than 32 levels deep"),
        (label_file(tags=["a\n" + "b" * 5000]), "must be one line"),
        (json.dumps({"format": ["x"] * 100_000}), "format is an array"),
    ],
)
@pytest.mark.parametrize("command", COMMANDS)
def test_crafted_label_files_are_one_line_errors(tiny_gpt2: Path, command: tuple[str, ...], text: str, message: str) -> None:
    path = tiny_gpt2 / "labels.json"
    path.write_text(text, encoding="utf-8")
    error = one_line_error(*command_args(command, tiny_gpt2))
    assert error.startswith(f"error: {path}: not a ") and message in error
    assert path.read_text(encoding="utf-8") == text  # never overwritten


# ---------------------------------------------------------------- Markdown export


HOSTILE = {
    "name": '<img src=x onerror="alert(1)"> [click](javascript:alert(1))',
    "note": "![pixel](https://tracker.example/p.png)\n<script>alert(2)</script> &lt;b&gt; [ref][1] <https://evil.example>",
    "tag": "<b>bold</b>",
    "evidence": json.dumps({"kind": "<iframe src=//evil>", "link": "[x](https://evil.example)", "command": "![i](https://e.example/i.png)"}),
}


def hostile_export(tiny_gpt2: Path) -> str:
    added = invoke(
        "add", tiny_gpt2, "L1.H3", HOSTILE["name"], "--note", HOSTILE["note"], "--tag", HOSTILE["tag"], "--evidence", HOSTILE["evidence"]
    )
    assert added.exit_code == 0, added.stderr
    result = invoke("export", tiny_gpt2, "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    assert invoke("export", tiny_gpt2, "--format", "md").stdout == result.stdout
    return result.stdout


def test_markdown_export_escapes_html_links_and_images(tiny_gpt2: Path) -> None:
    row = hostile_export(tiny_gpt2).splitlines()[2]
    assert row.startswith(
        "| `L1.H3` | &lt;img src=x onerror=\"alert(1)\"&gt; \\[click\\](javascript:alert(1)) | &lt;b&gt;bold&lt;/b&gt; | "
        "!\\[pixel\\](https://tracker.example/p.png)<br>&lt;script&gt;alert(2)&lt;/script&gt; &amp;lt;b&amp;gt; \\[ref\\]\\[1\\] "
        "&lt;https://evil.example&gt; | &lt;iframe src=//evil&gt;: link=\\[x\\](https://evil.example) (!\\[i\\](https://e.example/i.png)) | "
    )


def test_markdown_export_renders_as_inert_text(tiny_gpt2: Path) -> None:
    """Rendered by a CommonMark renderer with HTML allowed (as GitHub renders tables), nothing becomes a tag."""
    html = MarkdownIt("commonmark").enable("table").render(hostile_export(tiny_gpt2))
    for tag in ("<img", "<a ", "<script", "<iframe", "<b>"):
        assert tag not in html, tag
    assert html.count("<br>") == 1  # the note's line break, and nothing else became markup
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; [click](javascript:alert(1))" in html  # shown as written
    assert "![pixel](https://tracker.example/p.png)" in html
