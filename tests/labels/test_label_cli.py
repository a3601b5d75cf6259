"""`tui-interp label add|list|rm|export` on a real tiny checkpoint: outputs, --json documents, exit codes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.labels import parse_label_file

runner = CliRunner()
EVIDENCE = '{"kind": "ablation", "metric": "loss", "value": 2.5, "command": "tui-interp ablate tiny --ablate L1.H3"}'


def invoke(*args: object):
    return runner.invoke(app, ["label", *(str(a) for a in args)])


def ok(*args: object):
    result = invoke(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def bad_input(*args: object) -> str:
    """Run a command that must fail with exit 2: one line on stderr, nothing on stdout, no traceback."""
    result = invoke(*args)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_add_then_list(tiny_gpt2: Path, wide_console: None) -> None:
    added = ok(
        "add", tiny_gpt2, "L1.H3", "previous-token head", "--note", "found by ablation", "--tag", "attention", "--tag", "induction", "--evidence", EVIDENCE
    )
    assert added.stdout.startswith("Added L1.H3: previous-token head")
    assert added.stderr == ""
    ok("add", tiny_gpt2, "L0.mlp", "bigram lookup")
    listed = ok("list", tiny_gpt2)
    assert "2 labels" in listed.stdout
    out = listed.stdout
    assert out.index("L0.mlp") < out.index("L1.H3")  # forward-pass order
    for text in ("previous-token head", "bigram lookup", "attention, induction", "found by ablation"):
        assert text in out
    saved = parse_label_file((tiny_gpt2 / "labels.json").read_text(), "labels.json")
    assert [str(x.component) for x in saved.labels] == ["L0.mlp", "L1.H3"]
    assert saved.labels[1].evidence[0]["command"] == "tui-interp ablate tiny --ablate L1.H3"


def test_list_of_a_model_without_labels(tiny_gpt2: Path) -> None:
    result = ok("list", tiny_gpt2)
    assert "No labels yet for tiny" in result.stdout
    assert not (tiny_gpt2 / "labels.json").exists()


def test_add_json(tiny_gpt2: Path) -> None:
    document = json.loads(ok("add", tiny_gpt2, "L0.H2", "name", "--tag", "t", "--json").stdout)
    assert document["action"] == "added"
    assert document["labels_path"] == str(tiny_gpt2 / "labels.json")
    assert document["model"]["name"] == "tiny" and len(document["model"]["fingerprint"]) > 0
    assert document["bound_to"] == document["model"]
    assert document["exists"] is True and document["warnings"] == []
    label = document["label"]
    assert {k: label[k] for k in ("component", "name", "note", "tags", "evidence")} == {
        "component": "L0.H2", "name": "name", "note": "", "tags": ["t"], "evidence": []
    }  # fmt: skip
    assert label["created"] == label["updated"] and label["created"].endswith("Z")
    again = json.loads(ok("add", tiny_gpt2, "L0.H2", "renamed", "--json").stdout)
    assert again["action"] == "updated" and again["label"]["created"] == label["created"]


def test_list_json_is_the_only_thing_on_stdout(tiny_gpt2: Path) -> None:
    ok("add", tiny_gpt2, "embed", "tokens", "--evidence", "[" + EVIDENCE + ", {\"kind\": \"note\"}]")
    result = ok("list", tiny_gpt2, "--json")
    document = json.loads(result.stdout)
    assert result.stderr == ""
    assert [x["component"] for x in document["labels"]] == ["embed"]
    assert [e["kind"] for e in document["labels"][0]["evidence"]] == ["ablation", "note"]


def test_rm(tiny_gpt2: Path) -> None:
    ok("add", tiny_gpt2, "L0.H1", "a")
    ok("add", tiny_gpt2, "L0.H2", "b")
    assert ok("rm", tiny_gpt2, "L0.H1").stdout.startswith("Removed L0.H1: a")
    document = json.loads(ok("rm", tiny_gpt2, "L0.H2", "--json").stdout)
    assert document["action"] == "removed" and document["label"]["name"] == "b"
    assert json.loads(ok("list", tiny_gpt2, "--json").stdout)["labels"] == []
    assert bad_input("rm", tiny_gpt2, "L0.H2") == f"error: no label for L0.H2 in {tiny_gpt2 / 'labels.json'}"


def test_export_markdown_escapes_cells(tiny_gpt2: Path) -> None:
    ok("add", tiny_gpt2, "L1.H3", "a | b", "--note", "line 1\nline 2", "--tag", "x", "--evidence", EVIDENCE)
    ok("add", tiny_gpt2, "embed", "tokens")
    result = ok("export", tiny_gpt2, "--format", "md")
    lines = result.stdout.splitlines()
    assert lines[0] == "| Component | Name | Tags | Note | Evidence | Updated |"
    assert lines[1] == "| --- | --- | --- | --- | --- | --- |"
    assert lines[2].startswith("| `embed` | tokens |  |  |  | ")
    assert lines[3].startswith(
        "| `L1.H3` | a \\| b | x | line 1<br>line 2 | ablation: metric=loss, value=2.5 (tui-interp ablate tiny --ablate L1.H3) | "
    )
    assert len(lines) == 4
    assert all(len(re.split(r"(?<!\\)\|", line)) == 8 for line in lines)  # six cells on every row
    assert ok("export", tiny_gpt2).stdout == result.stdout  # md is the default


def test_export_json_is_the_label_file(tiny_gpt2: Path) -> None:
    ok("add", tiny_gpt2, "L1.H3", "head")
    file_text = (tiny_gpt2 / "labels.json").read_text(encoding="utf-8")
    assert ok("export", tiny_gpt2, "--format", "json").stdout == file_text
    assert ok("export", tiny_gpt2, "--json").stdout == file_text


def test_labels_option_overrides_the_default_location(tiny_gpt2: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "research" / "labels.json"
    elsewhere.parent.mkdir()
    ok("add", tiny_gpt2, "L0", "block zero", "--labels", elsewhere)
    assert elsewhere.exists() and not (tiny_gpt2 / "labels.json").exists()
    assert json.loads(ok("list", tiny_gpt2, "--labels", elsewhere, "--json").stdout)["labels"][0]["name"] == "block zero"


def test_bare_safetensors_file_keeps_labels_beside_it(tiny_gpt2: Path, tmp_path: Path) -> None:
    bare_dir = tmp_path / "bare"
    bare_dir.mkdir()
    shutil.copy(tiny_gpt2 / "model.safetensors", bare_dir / "tiny.safetensors")
    shutil.copy(tiny_gpt2 / "config.json", bare_dir / "config.json")
    ok("add", bare_dir / "tiny.safetensors", "L0.H0", "head")
    assert (bare_dir / "tiny.labels.json").exists()


def test_weights_changed_since_labelling_warns_on_stderr(tiny_gpt2: Path) -> None:
    ok("add", tiny_gpt2, "L0.H1", "head")
    path = tiny_gpt2 / "labels.json"
    document = json.loads(path.read_text())
    document["model"]["fingerprint"] = "0" * 16
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    listed = ok("list", tiny_gpt2)
    assert listed.stderr.startswith("warning: the labels in")
    assert "weights changed since labelling" in listed.stderr
    as_json = ok("list", tiny_gpt2, "--json")
    assert as_json.stderr == ""
    document = json.loads(as_json.stdout)
    assert document["bound_to"]["fingerprint"] == "0" * 16 != document["model"]["fingerprint"]
    assert len(document["warnings"]) == 1
    exported = ok("export", tiny_gpt2)
    assert "weights changed" in exported.stderr and "weights changed" not in exported.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("L9.H2", "x"), "error: L9.H2: model has 2 layers (L0..L1)"),
        (("L0.H4", "x"), "error: L0.H4: model has 4 heads per layer (H0..H3)"),
        (("l0.h1", "x"), "error: unknown component id 'l0.h1'; did you mean 'L0.H1'?"),
        (("L*.H1", "x"), "error: 'L*.H1' is a pattern; give a single component id here"),
        (("L0.H1", ""), "error: label name must not be empty"),
        (("L0.H1", "two\nlines"), "error: label name must be one line, but it contains a line break (U+000A); put longer text in the note"),
        (("L0.H1", "x", "--evidence", "{kind: 1}"), "error: evidence is not valid JSON: Expecting property name enclosed in double quotes at column 2"),
        (("L0.H1", "x", "--evidence", "[1]"), "error: evidence item 1 must be a JSON object, got a number"),
        (("L0.H1", "x", "--tag", ""), "error: a tag must not be empty"),
    ],
)
def test_add_bad_input(tiny_gpt2: Path, args: tuple[str, ...], message: str) -> None:
    assert bad_input("add", tiny_gpt2, *args) == message
    assert not (tiny_gpt2 / "labels.json").exists()


def test_missing_model_is_bad_input(tmp_path: Path) -> None:
    assert "no such file or directory" in bad_input("list", tmp_path / "nope")


@pytest.mark.parametrize("command", [("list",), ("export",), ("add", "L0", "x"), ("rm", "L0")])
def test_corrupt_label_file_is_reported_and_untouched(tiny_gpt2: Path, command: tuple[str, ...]) -> None:
    path = tiny_gpt2 / "labels.json"
    path.write_bytes(b'{"format": "tui-interp.labels/1", "labels": [')
    message = bad_input(command[0], tiny_gpt2, *command[1:])
    assert message.startswith(f"error: {path}: not a label file: invalid JSON at line 1")
    assert path.read_bytes() == b'{"format": "tui-interp.labels/1", "labels": ['


def test_label_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["label", "--help"])
    assert result.exit_code == 0
    for command in ("add", "list", "rm", "export"):
        assert command in result.stdout
