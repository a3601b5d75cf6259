"""The trainer: exact answer-position forward, determinism, stopping rules, frozen weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tui_interp.errors import InputError
from tui_interp.tasks import IGNORE, Induction, ModularAddition, Parity, Split, TrainConfig, evaluate, train
from tui_interp.tasks.trainer import answer_logits, init_weights, new_model, with_defaults

SMALL_MODADD = {"p": 11}


def _cfg(**kw: object) -> TrainConfig:
    base = TrainConfig(seed=0, steps=30, lr=3e-3, weight_decay=0.1, eval_every=10)
    return dataclasses.replace(base, **kw)


def test_answer_logits_equal_the_full_forward_at_those_positions() -> None:
    for task in (ModularAddition(), Induction(options={"n_train": 8, "n_test": 8})):
        model = new_model(task, TrainConfig(init_std=0.2)).eval()
        split = task.data(0).test.take(slice(0, 8))
        cols = split.answer_columns()
        with torch.no_grad():
            full = model(split.tokens)[:, cols]
            torch.testing.assert_close(answer_logits(model, split.tokens, cols), full, atol=1e-5, rtol=0)


def test_init_weights() -> None:
    model = new_model(ModularAddition(), TrainConfig(seed=3, init_std=0.05))
    assert torch.all(model.blocks[0].ln1.w == 1) and torch.all(model.blocks[0].ln1.b == 0)
    assert torch.all(model.blocks[0].attn.b_qkv == 0)
    assert abs(float(model.W_E.detach().std()) - 0.05) < 0.005
    again = new_model(ModularAddition(), TrainConfig(seed=3, init_std=0.05))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True))
    meta = torch.nn.Linear(2, 2, device="meta")
    with pytest.raises(InputError, match="meta"):
        init_weights(meta, std=0.1, seed=0)  # type: ignore[arg-type]


def test_training_is_deterministic_by_seed() -> None:
    task = ModularAddition(options=SMALL_MODADD)
    a = train(task, _cfg(batch_size=16))
    b = train(task, _cfg(batch_size=16))
    c = train(task, _cfg(batch_size=16, seed=1))
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert not torch.equal(a.model.W_E, c.model.W_E)
    assert [e.test_acc for e in a.history] == [e.test_acc for e in b.history]


def test_result_accuracies_are_measured_on_the_full_splits() -> None:
    task = ModularAddition(options=SMALL_MODADD)
    result = train(task, _cfg(steps=20))
    loss, acc = evaluate(result.model, result.data.test)
    assert acc == result.test_acc and loss == pytest.approx(result.test_loss)
    # by hand: argmax at "=" against (a + b) % p
    with torch.no_grad():
        logits = result.model(result.data.train.tokens)[:, 2]
    a, b = result.data.train.tokens[:, 0], result.data.train.tokens[:, 1]
    assert result.train_acc == pytest.approx(float((logits.argmax(-1) == (a + b) % 11).float().mean()))
    assert len(result.history) == 2 and result.steps == 20 and result.stopped == "steps"


def test_loss_is_taken_only_at_answer_positions() -> None:
    task = Induction(options={"n_train": 16, "n_test": 8})
    data = task.data(0)
    model = new_model(task, TrainConfig(init_std=0.2))
    split = data.train
    cols = split.answer_columns()
    logits = model(split.tokens)
    want = F.cross_entropy(logits.flatten(0, 1), split.targets.flatten(), ignore_index=IGNORE)
    from tui_interp.tasks.trainer import _loss_and_hits

    loss_sum, _, n = _loss_and_hits(model, split, cols)
    torch.testing.assert_close(loss_sum / n, want, atol=1e-5, rtol=0)
    assert n == split.n_answers == int((split.targets != IGNORE).sum())


def test_stop_at_train_accuracy() -> None:
    task = ModularAddition(options=SMALL_MODADD)
    result = train(task, _cfg(steps=2000, lr=1e-2, weight_decay=0.0, stop_at_train_acc=1.0, eval_every=5))
    assert result.stopped == "train accuracy reached" and result.train_acc == 1.0
    assert result.steps < 2000 and result.steps % 5 == 0


def test_progress_reports_every_step_and_accuracies_at_evaluations() -> None:
    seen = []
    train(ModularAddition(options=SMALL_MODADD), _cfg(steps=12, eval_every=5), progress=seen.append)
    assert [p.step for p in seen] == list(range(1, 13))
    assert [p.step for p in seen if p.test_acc is not None] == [5, 10, 12]
    assert all(p.total == 12 and p.loss > 0 for p in seen)


def test_frozen_parameters_stay_zero_through_training() -> None:
    task = Induction(options={"n_train": 64, "n_test": 16})
    result = train(task, _cfg(steps=5, batch_size=8, weight_decay=1.0))
    mlp = [p for n, p in result.model.named_parameters() if ".mlp." in n]
    assert mlp and all(torch.all(p == 0) for p in mlp)


def test_minibatches_cover_the_split_each_epoch() -> None:
    # 24 examples, batch 8: three steps are one epoch, so each example is used once
    task = Parity(options={"n_bits": 5, "train_frac": 0.75})
    data = task.data(0)
    data = dataclasses.replace(data, train=data.train.take(slice(0, 24)))
    used: list[torch.Tensor] = []
    # record the batches the model embeds while in training mode
    from tui_interp.model import transformer as tr

    embed = tr.Transformer.embed

    def spy_embed(self: tr.Transformer, tokens: torch.Tensor, ctx: object) -> torch.Tensor:
        if self.training:
            used.append(tokens.clone())
        return embed(self, tokens, ctx)  # type: ignore[arg-type]

    tr.Transformer.embed = spy_embed  # type: ignore[method-assign]
    try:
        train(task, _cfg(steps=3, batch_size=8, eval_every=100), data=data)
    finally:
        tr.Transformer.embed = embed  # type: ignore[method-assign]
    batches = [t for t in used if t.shape[0] == 8]
    assert len(batches) == 3
    rows = sorted(tuple(r) for b in batches for r in b.tolist())
    assert rows == sorted(tuple(r) for r in data.train.tokens.tolist())


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("steps", -1, "steps"), ("lr", 0.0, "learning rate"), ("weight_decay", -1.0, "weight decay"),
     ("batch_size", 0, "batch size"), ("eval_every", 0, "eval"), ("schedule", "linear", "schedule"),
     ("stop_at_test_acc", 1.5, "stop-at-test-acc")],
)
def test_bad_configs_are_refused(field: str, value: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        train(ModularAddition(options=SMALL_MODADD), dataclasses.replace(TrainConfig(), **{field: value}))


def test_with_defaults_keeps_the_task_defaults_for_missing_values() -> None:
    cfg = with_defaults(ModularAddition(), lr=None, seed=4)
    assert cfg.lr == 1e-3 and cfg.weight_decay == 1.0 and cfg.batch_size is None and cfg.seed == 4
    assert cfg.betas == (0.9, 0.98)


def test_split_rejects_mismatched_shapes() -> None:
    with pytest.raises(InputError):
        Split(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
