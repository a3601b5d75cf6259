"""`tui-interp train` end to end with a tiny step count, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.engine.compare import compare
from tui_interp.model import load_model, open_checkpoint
from tui_interp.tasks.card import parse_front_matter
from tui_interp.theory import load_theory

runner = CliRunner()


def _train(out: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["train", "modadd", "--out", str(out), "--steps", "3", "--threads", "1", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_train_writes_a_loadable_checkpoint_with_card_and_theory(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    doc = _train(out, "--seed", "2", "--train-frac", "0.5")
    assert doc["task"] == "modadd" and doc["steps"] == 3 and doc["stopped"] == "steps"
    assert sorted(p.name for p in out.iterdir()) == doc["files"] == [
        "README.md", "config.json", "modadd.question", "modadd.theory", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
        "train.jsonl"]
    assert doc["fingerprint"] == open_checkpoint(out).fingerprint
    lm = load_model(out, device="cpu")
    assert lm.config.n_layers == 1 and lm.config.d_model == 128 and lm.config.architecture == "gpt2"
    assert lm.need_tokenizer().encode("4 5 =") == [4, 5, 113]
    card = (out / "README.md").read_text()
    fields = parse_front_matter(card)
    assert fields["train_accuracy"] == round(doc["train_accuracy"], 6)
    assert fields["test_accuracy"] == round(doc["test_accuracy"], 6)
    assert fields["seed"] == 2 and fields["task"] == "modadd" and fields["task_options"] == {"train_frac": 0.5}
    assert doc["command"] in card and "--train-frac 0.5" in doc["command"] and "--seed 2" in doc["command"]
    assert "--eval-every 100" in doc["command"]  # it decides where an early stop lands
    assert "6,384 (50%) train" in card  # the split is described
    theory = (out / "modadd.theory").read_text()
    assert 'prompt "{a} {b} ="' in theory and "expect (a + b) % 113" in theory and 'split train from "train.jsonl"' in theory
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 6384 and all(r["answer"] == str((r["a"] + r["b"]) % 113) for r in rows)
    question = load_theory(out / "modadd.question")
    assert question.is_question and question.splits[0].size == 6384
    compared = compare(lm, load_theory(out / "modadd.theory"), search=False)  # the written theory runs as written
    assert {s.name for s in compared.slices} >= {"train", "not train"}


def test_train_other_operations_and_the_llama_family(tmp_path: Path) -> None:
    doc = _train(tmp_path / "mul", "--task-option", "p=11", "--task-option", "op=mul", "--task-option", "arch=llama")
    lm = load_model(tmp_path / "mul", device="cpu")
    assert lm.config.architecture == "llama" and doc["fingerprint"] == lm.checkpoint.fingerprint
    theory = load_theory(tmp_path / "mul" / "modadd.theory")
    assert "expect (a * b) % 11" in theory.source
    rows = [json.loads(line) for line in (tmp_path / "mul" / "train.jsonl").read_text().splitlines()]
    assert all(r["answer"] == str(r["a"] * r["b"] % 11) for r in rows)


SMALL = ("--task-option", "p=11")  # 121 pairs: the same code path in a fraction of the time


def test_train_is_reproducible_from_the_command_in_the_card(tmp_path: Path) -> None:
    first = _train(tmp_path / "a", *SMALL)
    second = _train(tmp_path / "b", *SMALL)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert first["fingerprint"] == second["fingerprint"]
    assert first["test_accuracy"] == second["test_accuracy"]


def test_train_human_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "parity", "--out", str(tmp_path / "p"), "--steps", "2", "--task-option", "n_bits=6"])
    assert result.exit_code == 0, result.output
    assert "train accuracy" in result.stdout and "parity.theory" in result.stdout
    assert load_model(tmp_path / "p", device="cpu").config.n_ctx == 7


def test_float16_weights(tmp_path: Path) -> None:
    doc = _train(tmp_path / "h", "--dtype", "float16", *SMALL)
    assert doc["dtype"] == "float16" and open_checkpoint(tmp_path / "h").dtype == "float16"
    assert doc["size_bytes"] == 2 * doc["n_params"]


def test_existing_output_is_not_replaced_without_force(tmp_path: Path) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = runner.invoke(app, ["train", "modadd", "--out", str(out), "--steps", "1"])
    assert result.exit_code == 2
    assert "not empty" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (out / "keep.txt").exists()
    doc = _train(out, "--force", *SMALL)
    assert "keep.txt" not in doc["files"] and not (out / "keep.txt").exists()


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path) -> None:
    cases = [
        ["train", "modadd", "--out", str(tmp_path / "a"), "--lr", "-1"],
        ["train", "modadd", "--out", str(tmp_path / "b"), "--train-frac", "1.5"],
        ["train", "modadd", "--out", str(tmp_path / "c"), "--task-option", "novalue"],
        ["train", "modadd", "--out", str(tmp_path / "d"), "--no-early-stop", "--stop-at-test-acc", "0.9"],
        ["train", "parity", "--out", str(tmp_path / "e"), "--task-option", "n_bits=40"],
        ["train", "modadd", "--out", str(tmp_path / "f"), "--threads", "0"],
        ["train", "sorting", "--out", str(tmp_path / "g"), "--task-option", "n_train=0"],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / args[3][-1]).exists()
    result = runner.invoke(app, ["train", "brackets", "--out", str(tmp_path / "h")])
    assert result.exit_code == 2
