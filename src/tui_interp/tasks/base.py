"""What every task shares: datasets of token sequences with per-position targets, and the
interface a task implements so the trainer, the CLI and the model card can treat all alike.

A task is data, not a model: it says what the inputs are (token ids, and the tokenizer that
turns them into text), what the model should predict and where (targets, with IGNORE at
positions that carry no loss), which model shape suits it, and how the split into train and
test examples follows from a seed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from tui_interp.errors import InputError
from tui_interp.model.config import ModelConfig, RopeConfig

IGNORE = -100  # target at positions that carry no loss (torch cross_entropy's ignore_index)


@dataclass(frozen=True)
class Split:
    """A set of examples: inputs and, per position, the token the model should predict next.

    tokens [n, pos] int64; targets [n, pos] int64, IGNORE where there is nothing to predict.
    For an algorithmic task only the answer position(s) have a target; for a language model
    every position does.
    """

    tokens: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if self.tokens.shape != self.targets.shape or self.tokens.dim() != 2:
            raise InputError(f"split tokens {tuple(self.tokens.shape)} and targets {tuple(self.targets.shape)} must both be [n, pos]")

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def n_answers(self) -> int:
        """Number of positions that carry a target (what an accuracy is a fraction of)."""
        return int((self.targets != IGNORE).sum())

    def answer_columns(self) -> torch.Tensor:
        """Positions that carry a target in at least one example: [n_cols] int64."""
        return torch.nonzero((self.targets != IGNORE).any(dim=0)).flatten()

    def take(self, index: torch.Tensor | slice) -> Split:
        return Split(self.tokens[index], self.targets[index])


@dataclass(frozen=True)
class TaskData:
    """A task's train and test splits, fixed by the seed they were made with."""

    train: Split
    test: Split
    seed: int
    description: str  # one line for the model card, e.g. "30% of all 12,769 pairs (3,830) train; the rest test"
    train_eval: Split | None = None  # where train accuracy is measured when not on all of `train`

    @property
    def train_measured(self) -> Split:
        """The examples the reported train accuracy is measured on."""
        return self.train if self.train_eval is None else self.train_eval


@dataclass(frozen=True)
class TrainDefaults:
    """A task's suggested training hyperparameters (the CLI's defaults for that task)."""

    steps: int
    lr: float
    weight_decay: float
    batch_size: int | None  # None: full batch
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 10
    schedule: str = "constant"  # constant | cosine
    grad_clip: float | None = None
    eval_every: int = 100
    eval_limit: int | None = None  # examples per split measured at evaluations during training
    stop_at_test_acc: float | None = None
    stop_at_train_acc: float | None = None


@dataclass
class Task(ABC):
    """One algorithmic task or text corpus. Subclasses set the class variables and implement
    the abstract methods; `options` carries task options such as the train fraction."""

    name: ClassVar[str]
    summary: ClassVar[str]
    model_type: ClassVar[str]  # HuggingFace model_type the checkpoint is saved as
    defaults: ClassVar[TrainDefaults]
    label_heads: ClassVar[bool] = False  # measure attention heads after training and label clear ones
    options: dict[str, Any] = field(default_factory=dict)

    @abstractmethod
    def tokenizer_json(self) -> str:
        """The tokenizer as a tokenizer.json document (built with `tokenizers`)."""

    @abstractmethod
    def model_config(self) -> ModelConfig:
        """The shape of the model this task trains."""

    @abstractmethod
    def data(self, seed: int) -> TaskData:
        """Train and test splits. The same seed gives the same split, example for example."""

    def theory(self) -> tuple[str, str] | None:
        """(file name, text) of the task's theory file, or None when it has none."""
        return None

    def train_rows(self, data: TaskData) -> list[dict[str, Any]] | None:
        """The train split as rows of the theory's inputs with their `answer` (the text the model
        was trained to output), for a split file (`split train from "train.jsonl"`); None when
        the task has no theory."""
        return None

    def frozen_zero(self) -> Callable[[str], bool] | None:
        """Parameters (by name) that are set to zero and never trained, or None."""
        return None

    def accuracy_note(self) -> str:
        """What the reported accuracy is a fraction of (for the model card)."""
        return "answer positions predicted correctly (argmax of the logits)"

    def describe(self) -> str:
        """A paragraph for the model card: the task, the input format and the answer."""
        return self.summary

    def card_fields(self) -> dict[str, Any]:
        """Extra front-matter fields for the model card (e.g. what the corpus was)."""
        return {}

    @property
    def arch(self) -> str:
        """The architecture family the model is built and saved as: the task's own, or the
        `arch` option (gpt2 or llama), so one task can train both families."""
        arch = str(self.option("arch", self.model_type))
        if arch not in ("gpt2", "llama"):
            raise InputError(f"task option arch={arch!r}: choose gpt2 or llama")
        return arch

    def config(self) -> ModelConfig:
        """The model config to train: `model_config()` in the `arch` family (a Llama variant of
        a GPT-2 config keeps the sizes and uses RMSNorm, rotary positions and a gated SiLU MLP)."""
        cfg = self.model_config()
        if self.arch == cfg.architecture:
            return cfg
        if self.arch == "llama":
            return cfg.replace(architecture="llama", norm="rmsnorm", norm_bias=False, positional="rotary",
                               rope=RopeConfig(theta=10000.0, rotary_dim=cfg.d_head), act_fn="silu", gated_mlp=True,
                               qkv_bias=False, attn_out_bias=False, mlp_bias=False)
        raise InputError(f"task {self.name} cannot be trained as {self.arch}")

    def option(self, key: str, default: Any) -> Any:
        value = self.options.get(key)
        return default if value is None else value


def split_indices(n: int, train_frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random permutation of range(n) cut into (train, test) index tensors, fixed by `seed`.

    The permutation comes from a private torch.Generator, so it depends on the seed only and
    not on any global random state.
    """
    if not 0.0 < train_frac < 1.0:
        raise InputError(f"train fraction must be between 0 and 1 (exclusive), got {train_frac}")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    cut = int(round(train_frac * n))
    if cut == 0 or cut == n:
        raise InputError(f"a train fraction of {train_frac} of {n} examples leaves one side empty")
    return perm[:cut].sort().values, perm[cut:].sort().values
