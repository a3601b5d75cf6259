"""The shipped sample models: they load, their cards tell the truth, HF agrees with us.

Accuracies are re-measured by running each model on its task's data (rebuilt from the task,
seed and options in the card), never read from the card alone.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

from tui_interp.model import load_model, open_checkpoint
from tui_interp.model.loader import LoadedModel
from tui_interp.tasks import TaskData, evaluate, get_task
from tui_interp.tasks.card import parse_front_matter

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "sample_models"
SAMPLES = ["modadd-grokked", "modadd-memorized", "sorting-generalising", "sorting-memorised", "induction-2l", "charlm-4l"]
THEORIES = {"modadd-grokked": "modadd.theory", "modadd-memorized": "modadd.theory",
            "sorting-generalising": "sorting.theory", "sorting-memorised": "sorting.theory"}
MAX_SAMPLE_BYTES = 5 * 1024 * 1024
MAX_FOLDER_BYTES = 25 * 1024 * 1024
ACC_TOL = 2e-3  # an argmax may flip between batchings in float32; anything more is a wrong card


def card(name: str) -> dict[str, Any]:
    return parse_front_matter((SAMPLES_DIR / name / "README.md").read_text(encoding="utf-8"))


@cache
def loaded(name: str) -> LoadedModel:
    return load_model(SAMPLES_DIR / name, device="cpu", dtype="float32")


@cache
def task_data(name: str) -> TaskData:
    fields = card(name)
    return get_task(fields["task"], **fields["task_options"]).data(fields["seed"])


def measured(name: str) -> tuple[float, float]:
    """(train accuracy, test accuracy) of the shipped model, measured now."""
    data = task_data(name)
    model = loaded(name).model
    return evaluate(model, data.train_measured)[1], evaluate(model, data.test)[1]


def test_every_sample_is_shipped_and_small() -> None:
    present = sorted(p.name for p in SAMPLES_DIR.iterdir() if p.is_dir())
    assert present == sorted(SAMPLES)
    total = 0
    for name in SAMPLES:
        size = sum(f.stat().st_size for f in (SAMPLES_DIR / name).iterdir())
        assert size < MAX_SAMPLE_BYTES, f"{name}: {size} bytes"
        total += size
    assert total < MAX_FOLDER_BYTES


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_loads_and_its_card_is_complete(name: str) -> None:
    lm = loaded(name)
    fields = card(name)
    text = (SAMPLES_DIR / name / "README.md").read_text(encoding="utf-8")
    for key in ("task", "seed", "steps", "train_accuracy", "test_accuracy", "n_params", "size_bytes", "model_type"):
        assert key in fields, f"{name}: card has no {key}"
    assert lm.config.architecture == fields["model_type"]
    assert open_checkpoint(SAMPLES_DIR / name).size_bytes == fields["size_bytes"]
    assert sum(p.numel() for p in lm.model.parameters()) == fields["n_params"]
    # the card names the command that made it, with this task and seed
    commands = re.findall(r"^tui-interp train .*$", text, flags=re.M)
    assert len(commands) == 1, name
    argv = shlex.split(commands[0])
    assert argv[2] == fields["task"] and argv[argv.index("--seed") + 1] == str(fields["seed"])
    assert argv[argv.index("--out") + 1].rstrip("/") == f"sample_models/{name}"
    assert lm.tokenizer is not None


@pytest.mark.parametrize("name", SAMPLES)
def test_card_accuracies_are_re_measured(name: str) -> None:
    fields = card(name)
    if fields["task"] == "charlm":
        from tui_interp.tasks.charlm import CharLM

        if CharLM().corpus_digest() != fields["corpus_digest"]:
            pytest.skip(f"this Python's standard library differs from the one {name} was trained on")
    train_acc, test_acc = measured(name)
    assert train_acc == pytest.approx(fields["train_accuracy"], abs=ACC_TOL)
    assert test_acc == pytest.approx(fields["test_accuracy"], abs=ACC_TOL)


def test_grokked_and_memorized_modadd_differ_only_on_held_out_pairs() -> None:
    # same task, same split, same seed: only the weight decay (and so the training time) differs
    assert card("modadd-grokked")["task_options"] == card("modadd-memorized")["task_options"]
    assert card("modadd-grokked")["seed"] == card("modadd-memorized")["seed"]
    g_train, g_test = measured("modadd-grokked")
    m_train, m_test = measured("modadd-memorized")
    assert g_train == 1.0 and m_train == 1.0  # both fit every training pair
    assert g_test >= 0.99
    assert m_test <= 0.5


def test_sorting_pair_differs_on_new_lists() -> None:
    general, memorised = task_data("sorting-generalising"), task_data("sorting-memorised")
    assert torch.equal(general.test.tokens, memorised.test.tokens)  # one test set for both
    assert len(memorised.train) < 1000 < len(general.train)
    g_train, g_test = measured("sorting-generalising")
    m_train, m_test = measured("sorting-memorised")
    assert g_train >= 0.99 and m_train == 1.0
    assert g_test >= 0.99
    assert g_test - m_test >= 0.3


def test_modadd_models_answer_through_the_tokenizer() -> None:
    for name in ("modadd-grokked", "modadd-memorized"):
        lm = loaded(name)
        tok = lm.need_tokenizer()
        data = task_data(name)
        a, b = (int(x) for x in data.train.tokens[0, :2])
        ids = tok.encode(f"{a} {b} =")
        with torch.no_grad():
            answer = int(lm.model(torch.tensor([ids]))[0, -1].argmax())
        assert tok.token_text(answer) == str((a + b) % 113)


@pytest.mark.parametrize("name", SAMPLES)
def test_transformers_reproduces_the_logits(name: str) -> None:
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    hf = transformers.AutoModelForCausalLM.from_pretrained(SAMPLES_DIR / name, dtype=torch.float32, attn_implementation="eager").eval()
    tokens = task_data(name).test.tokens[:16]
    with torch.no_grad():
        want = loaded(name).model(tokens)
        got = hf(tokens).logits
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", sorted(THEORIES))
def test_theory_files_ship_beside_their_models(name: str) -> None:
    path = SAMPLES_DIR / name / THEORIES[name]
    text = path.read_text(encoding="utf-8")
    task = get_task(card(name)["task"], **card(name)["task_options"])
    theory = task.theory()
    # the task's theory, possibly followed by claims about this model's mechanism
    assert theory is not None and path.name == theory[0] and text.startswith(theory[1])


def test_default_model_has_its_theory() -> None:
    text = (SAMPLES_DIR / "modadd-grokked" / "modadd.theory").read_text(encoding="utf-8")
    assert 'theory "modular addition"' in text
    assert "input a: int in 0..112" in text and "input b: int in 0..112" in text
    assert 'prompt "{a} {b} ="' in text and "expect (a + b) % 113" in text and "slice a + b >= 113" in text


# ---- labels of the models with named heads


def _labels(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES_DIR / name / "labels.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["induction-2l", "charlm-4l"])
def test_labels_are_bound_to_the_weights_and_well_formed(name: str) -> None:
    doc = _labels(name)
    assert doc["format"] == "tui-interp.labels/1"
    assert doc["model"] == {"name": name, "fingerprint": open_checkpoint(SAMPLES_DIR / name).fingerprint}
    comps = [lab["component"] for lab in doc["labels"]]
    order = [tuple(int(x) for x in re.fullmatch(r"L(\d+)\.H(\d+)", c).groups()) for c in comps]  # type: ignore[union-attr]
    assert order == sorted(order), "labels are sorted in forward-pass order"
    for lab in doc["labels"]:
        assert set(lab) == {"component", "name", "note", "tags", "evidence", "created", "updated"}
        assert lab["name"] in ("previous-token head", "induction head") and lab["note"] and lab["tags"]
        for ts in (lab["created"], lab["updated"]):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ts)
        (ev,) = lab["evidence"]
        assert ev["kind"] == "attention" and ev["command"] == f"tui-interp suggest sample_models/{name} --json"


@pytest.mark.parametrize("name", ["induction-2l", "charlm-4l"])
def test_labelled_heads_are_re_measured(name: str) -> None:
    from tui_interp.engine.suggest import standard_head_scores

    scores = standard_head_scores(loaded(name))
    for lab in _labels(name)["labels"]:
        layer, head = (int(x) for x in re.fullmatch(r"L(\d+)\.H(\d+)", lab["component"]).groups())  # type: ignore[union-attr]
        value = lab["evidence"][0]["value"]
        table = scores.prev_token if lab["name"] == "previous-token head" else scores.induction
        assert float(table[layer, head]) == pytest.approx(value, abs=1e-3)


def test_induction_model_has_a_previous_token_head_feeding_an_induction_head() -> None:
    names = {lab["component"]: lab["name"] for lab in _labels("induction-2l")["labels"]}
    assert any(c.startswith("L0.") and n == "previous-token head" for c, n in names.items())
    assert any(c.startswith("L1.") and n == "induction head" for c, n in names.items())
    # attention-only in effect: every MLP weight is exactly zero
    model = loaded("induction-2l").model
    for block in model.blocks:
        assert block.mlp is not None
        assert all(torch.all(p == 0) for p in block.mlp.parameters())


@pytest.mark.parametrize("name", ["induction-2l", "charlm-4l"])
def test_labels_read_back_through_the_label_store_format(name: str) -> None:
    from tui_interp.labels import dump_label_file, parse_label_file

    text = (SAMPLES_DIR / name / "labels.json").read_text(encoding="utf-8")
    parsed = parse_label_file(text, name)
    assert len(parsed.labels) == len(_labels(name)["labels"])
    assert dump_label_file(parsed) == text  # already in the store's canonical form: no rewrite churn
