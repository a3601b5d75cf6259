"""Head scores and the labels made from them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from tui_interp.engine.suggest import HeadScores, head_scores, probe_for, repeated_tokens, standard_head_scores
from tui_interp.labels import LabelFile, ModelRef, dump_label_file
from tui_interp.model import load_model
from tui_interp.model.export import save_checkpoint
from tui_interp.tasks import Induction, TrainConfig
from tui_interp.tasks.sample import head_labels
from tui_interp.tasks.trainer import new_model


def _exact_pattern(kind: str, half: int):  # noqa: ANN202 -- a hook function
    """A hook that replaces head 0's pattern with exact previous-token or induction attention."""

    def hook(pattern: torch.Tensor, *, hook: object) -> torch.Tensor:
        out = pattern.clone()  # [batch, head, query, key]
        pos = pattern.shape[-1]
        forced = torch.zeros(pos, pos)
        for q in range(pos):
            if kind == "prev":
                k = max(q - 1, 0)
            else:  # induction: second copy looks at the token after the earlier occurrence
                k = q - half + 1 if q >= 1 + half else q
            forced[q, k] = 1.0
        out[:, 0] = forced
        return out

    return hook


def test_scores_of_exact_heads_are_one() -> None:
    task = Induction()
    model = new_model(task, TrainConfig(init_std=0.2)).eval()
    tokens, half, _ = probe_for(model, bos=task.bos_id, candidates=torch.arange(52), n=4)
    assert tokens.shape == (4, 49) and half == 24
    with model.hooks([("blocks.0.attn.hook_pattern", _exact_pattern("prev", half)),
                      ("blocks.1.attn.hook_pattern", _exact_pattern("induction", half))]):
        scores = head_scores(model, tokens, half)
    assert float(scores.prev_token[0, 0]) == pytest.approx(1.0)
    assert float(scores.induction[1, 0]) == pytest.approx(1.0)
    assert float(scores.induction[0, 0]) == pytest.approx(0.0)  # a previous-token head is no induction head
    assert scores.prev_token.shape == (2, 4)
    # an untrained head spreads its attention: far below either threshold
    assert float(scores.prev_token[0, 1:].max()) < 0.3 and float(scores.induction[1, 1:].max()) < 0.3


def test_repeated_tokens_probe() -> None:
    tokens = repeated_tokens(torch.arange(10, 20), 5, 3, bos=0)
    assert tokens.shape == (3, 11) and torch.all(tokens[:, 0] == 0)
    assert torch.equal(tokens[:, 1:6], tokens[:, 6:])
    assert all(len(set(row[1:6])) == 5 and set(row[1:6]) <= set(range(10, 20)) for row in tokens.tolist())


def test_labels_name_only_clear_heads_in_forward_order() -> None:
    scores = HeadScores(
        prev_token=torch.tensor([[0.9, 0.2], [0.1, 0.3]]),
        induction=torch.tensor([[0.0, 0.1], [0.85, 0.39]]),
        probe="test probe",
    )
    labels = head_labels(scores, command="cmd")
    assert [(str(lab.component), lab.name) for lab in labels] == [("L0.H0", "previous-token head"), ("L1.H0", "induction head")]
    first = labels[0]
    assert first.created == first.updated and first.created.tzinfo is not None
    assert first.evidence == ({"kind": "attention", "metric": "mean attention to the previous token",
                               "value": 0.9, "probe": "test probe", "command": "cmd"},)
    doc = json.loads(dump_label_file(LabelFile(model=ModelRef("m", "abc"), labels=labels)))
    assert doc["format"] == "tui-interp.labels/1" and doc["model"] == {"name": "m", "fingerprint": "abc"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["labels"][0]["created"])


def test_standard_scores_as_json(tmp_path: Path) -> None:
    task = Induction()
    model = new_model(task, TrainConfig())
    out = save_checkpoint(model, tmp_path / "m", tokenizer_json=task.tokenizer_json())
    doc = standard_head_scores(load_model(out, device="cpu")).to_json()
    assert [h["component"] for h in doc["heads"]] == [f"L{l}.H{h}" for l in range(2) for h in range(4)]
    assert "[BOS] r r" in doc["probe"]
    assert all(0.0 <= h["prev_token"] <= 1.0 and 0.0 <= h["induction"] <= 1.0 for h in doc["heads"])
