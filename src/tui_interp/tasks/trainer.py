"""Train a Transformer on a task: AdamW, full batch or minibatches, deterministic by seed.

The loss is cross-entropy on the positions that carry a target (the answer positions of an
algorithmic task, every position of a language model). In the last block only those
positions go through the MLP and the unembedding: the loss and its gradients are exactly the
same as a full forward pass, for a third of the work on "a b =" prompts.

Progress goes to a callback; rendering it (a rich progress bar in the CLI) is the caller's job.
Runs are reproducible for a seed on one machine with one thread count: the initial weights
come from `torch.manual_seed(seed)`, the minibatch order from a private generator.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from tui_interp.errors import InputError
from tui_interp.model.transformer import Transformer
from tui_interp.tasks.base import IGNORE, Split, Task, TaskData

log = logging.getLogger(__name__)

EVAL_BATCH = 2048  # examples per forward pass when measuring accuracy


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run besides the task."""

    seed: int = 0
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    batch_size: int | None = None  # None: the whole train split every step
    warmup_steps: int = 10
    schedule: str = "constant"  # constant | cosine (decays to 10% of lr at the last step)
    grad_clip: float | None = None
    init_std: float = 0.02
    eval_every: int = 100
    eval_limit: int | None = None  # measure accuracy on at most this many examples during training
    stop_at_test_acc: float | None = None  # stop at the first evaluation that reaches it
    stop_at_train_acc: float | None = None

    def check(self) -> None:
        """Raise InputError for settings that cannot train."""
        if self.steps < 0:
            raise InputError(f"steps must be >= 0, got {self.steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"learning rate must be positive, got {self.lr}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise InputError(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {self.batch_size}")
        if self.eval_every < 1:
            raise InputError(f"eval interval must be >= 1, got {self.eval_every}")
        if self.schedule not in ("constant", "cosine"):
            raise InputError(f"schedule must be constant or cosine, got {self.schedule!r}")
        for name in ("stop_at_test_acc", "stop_at_train_acc"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise InputError(f"{name.replace('_', '-')} must be in (0, 1], got {value}")


@dataclass(frozen=True)
class Progress:
    """One report to the progress callback: every step; accuracies only at evaluations."""

    step: int  # steps done so far
    total: int
    loss: float  # training loss of the last step
    train_acc: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None


@dataclass(frozen=True)
class Evaluation:
    step: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float


@dataclass
class TrainResult:
    """The trained model and how it got there. Accuracies are on the full splits."""

    model: Transformer
    task: Task
    data: TaskData
    config: TrainConfig
    steps: int  # steps actually run
    stopped: str  # "steps" | "test accuracy reached" | "train accuracy reached"
    train_acc: float
    test_acc: float
    train_loss: float
    test_loss: float
    seconds: float
    history: list[Evaluation] = field(default_factory=list)


ProgressFn = Callable[[Progress], None]


def init_weights(model: Transformer, *, std: float, seed: int, zero: Callable[[str], bool] | None = None) -> None:
    """Fresh weights: matrices and embeddings N(0, std²), biases 0, norm weights 1.

    Parameters whose name satisfies `zero` are set to exactly zero and frozen (requires_grad
    False), e.g. the MLPs of an attention-only model saved in a format that has MLPs.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.is_meta:
                raise InputError(f"cannot initialise {name}: it is a meta tensor")
            if zero is not None and zero(name):
                p.zero_()
                p.requires_grad_(False)
                continue
            leaf = name.rsplit(".", 1)[-1]
            if ".ln" in f".{name}" and leaf == "w":
                p.fill_(1.0)
            elif p.dim() == 1:
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
            p.requires_grad_(True)


def new_model(task: Task, config: TrainConfig) -> Transformer:
    """The task's model with freshly initialised weights (seeded by config.seed)."""
    model = Transformer(task.config())
    init_weights(model, std=config.init_std, seed=config.seed, zero=task.frozen_zero())
    return model


def answer_logits(model: Transformer, tokens: torch.Tensor, cols: torch.Tensor | None) -> torch.Tensor:
    """Logits at the positions `cols` only: [batch, len(cols), vocab] (all positions when None).

    Every block runs on all positions (keys and values need them) except that the last
    block's MLP and the unembedding see only `cols`; the result equals model(tokens)[:, cols].
    """
    pos = tokens.shape[1]
    if cols is None or len(cols) == pos:
        return model(tokens)
    model.check_tokens(tokens)
    ctx = model.context(pos, tokens.device)
    resid = model.embed(tokens, ctx)  # [batch, pos, d_model]
    for block in model.blocks[:-1]:
        resid = block(resid, ctx)
    last = model.blocks[-1]
    mid = last.attn_half(resid, ctx)  # [batch, pos, d_model]
    post = last.mlp_half(mid[:, cols], resid[:, cols])  # [batch, n_cols, d_model]
    return model.unembed(post)  # [batch, n_cols, vocab]


def _columns(split: Split) -> torch.Tensor | None:
    cols = split.answer_columns()
    return None if len(cols) == split.tokens.shape[1] else cols


def _loss_and_hits(model: Transformer, split: Split, cols: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(summed loss, number correct, number of answers) for one batch."""
    logits = answer_logits(model, split.tokens, cols)  # [batch, n_cols, vocab]
    targets = split.targets if cols is None else split.targets[:, cols]  # [batch, n_cols]
    mask = targets != IGNORE
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum")
    hits = ((logits.argmax(-1) == targets) & mask).sum()
    return loss, hits, int(mask.sum())


@torch.inference_mode()
def evaluate(model: Transformer, split: Split, *, batch: int = EVAL_BATCH, limit: int | None = None) -> tuple[float, float]:
    """(mean loss, accuracy) over the answer positions of `split` (its first `limit` examples)."""
    if limit is not None:
        split = split.take(slice(0, limit))
    if len(split) == 0 or split.n_answers == 0:
        raise InputError("cannot evaluate on a split without answers")
    cols = _columns(split)
    was_training = model.training
    model.eval()
    total_loss, total_hits, total_n = 0.0, 0, 0
    try:
        for start in range(0, len(split), batch):
            loss, hits, n = _loss_and_hits(model, split.take(slice(start, start + batch)), cols)
            total_loss += float(loss)
            total_hits += int(hits)
            total_n += n
    finally:
        model.train(was_training)
    return total_loss / total_n, total_hits / total_n


def _lr_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "cosine" and config.steps > config.warmup_steps:
        t = (step - config.warmup_steps) / (config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return 1.0


def _param_groups(model: Transformer, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and embeddings only; not on biases and norm weights."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(
    task: Task,
    config: TrainConfig,
    *,
    progress: ProgressFn | None = None,
    data: TaskData | None = None,
) -> TrainResult:
    """Train the task's model from scratch and measure it on the full train and test splits."""
    config.check()
    started = time.perf_counter()
    data = data if data is not None else task.data(config.seed)
    torch.manual_seed(config.seed)
    model = new_model(task, config)
    model.train()
    opt = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, config))
    train_split = data.train
    cols = _columns(train_split)
    batch_gen = torch.Generator().manual_seed(config.seed + 1)
    full_batch = config.batch_size is None or config.batch_size >= len(train_split)
    history: list[Evaluation] = []
    stopped = "steps"
    step = 0
    order = torch.empty(0, dtype=torch.long)
    cursor = 0
    for step in range(1, config.steps + 1):
        if full_batch:
            batch = train_split
        else:
            assert config.batch_size is not None  # full_batch covers None
            if cursor + config.batch_size > len(order):
                order = torch.randperm(len(train_split), generator=batch_gen)  # a new epoch
                cursor = 0
            batch = train_split.take(order[cursor : cursor + config.batch_size])
            cursor += config.batch_size
        loss_sum, _, n = _loss_and_hits(model, batch, cols)
        loss = loss_sum / n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        sched.step()
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise InputError(f"training diverged at step {step} (loss {loss_value}); try a lower learning rate")
        if step % config.eval_every == 0 or step == config.steps:
            train_loss, train_acc = evaluate(model, data.train_measured, limit=config.eval_limit)
            test_loss, test_acc = evaluate(model, data.test, limit=config.eval_limit)
            history.append(Evaluation(step, train_loss, train_acc, test_loss, test_acc))
            log.debug("step %d: train %.4f / %.4f, test %.4f / %.4f", step, train_loss, train_acc, test_loss, test_acc)
            if progress is not None:
                progress(Progress(step, config.steps, loss_value, train_acc, test_acc, test_loss))
            if config.stop_at_test_acc is not None and test_acc >= config.stop_at_test_acc:
                stopped = "test accuracy reached"
                break
            if config.stop_at_train_acc is not None and train_acc >= config.stop_at_train_acc:
                stopped = "train accuracy reached"
                break
        elif progress is not None:
            progress(Progress(step, config.steps, loss_value))
    model.eval()
    model.requires_grad_(False)
    train_loss, train_acc = evaluate(model, data.train_measured)
    test_loss, test_acc = evaluate(model, data.test)
    return TrainResult(
        model=model,
        task=task,
        data=data,
        config=config,
        steps=step,
        stopped=stopped,
        train_acc=train_acc,
        test_acc=test_acc,
        train_loss=train_loss,
        test_loss=test_loss,
        seconds=time.perf_counter() - started,
        history=history,
    )


def round_weights(result: TrainResult, dtype: torch.dtype) -> TrainResult:
    """Round the trained weights through `dtype` (the dtype they will be saved in) and
    re-measure, so the reported accuracies are those of the weights that ship."""
    with torch.no_grad():
        for p in result.model.parameters():
            p.copy_(p.to(dtype).float())
    train_loss, train_acc = evaluate(result.model, result.data.train_measured)
    test_loss, test_acc = evaluate(result.model, result.data.test)
    return replace(result, train_acc=train_acc, test_acc=test_acc, train_loss=train_loss, test_loss=test_loss)


def with_defaults(task: Task, **overrides: object) -> TrainConfig:
    """The task's default TrainConfig with the given (non-None) fields replaced."""
    d = task.defaults
    base = TrainConfig(
        steps=d.steps,
        lr=d.lr,
        weight_decay=d.weight_decay,
        betas=d.betas,
        batch_size=d.batch_size,
        warmup_steps=d.warmup_steps,
        schedule=d.schedule,
        grad_clip=d.grad_clip,
        eval_every=d.eval_every,
        eval_limit=d.eval_limit,
        stop_at_test_acc=d.stop_at_test_acc,
        stop_at_train_acc=d.stop_at_train_acc,
    )
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
