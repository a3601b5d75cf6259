"""Modular addition: from "a b =" predict (a + b) mod p, for all p² pairs (a, b).

The setting of "Progress measures for grokking via mechanistic interpretability" (Nanda et
al., 2023): p = 113, a random 30% of the pairs for training, the rest held out. With strong
weight decay a one-layer transformer first memorises the training pairs and later generalises
to the held-out ones (grokking); without weight decay it stays a lookup table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from tui_interp.errors import InputError
from tui_interp.model.config import ModelConfig
from tui_interp.tasks.base import IGNORE, Split, Task, TaskData, TrainDefaults, split_indices
from tui_interp.tasks.vocab import word_level_tokenizer

DEFAULT_P = 113
DEFAULT_TRAIN_FRAC = 0.3
OPS = {"add": "+", "sub": "-", "mul": "*"}


@dataclass
class ModularAddition(Task):
    name: ClassVar[str] = "modadd"
    summary: ClassVar[str] = "(a + b) mod 113 from the prompt \"a b =\" (Nanda et al.'s grokking setting)"
    model_type: ClassVar[str] = "gpt2"
    defaults: ClassVar[TrainDefaults] = TrainDefaults(
        steps=10_000,
        lr=1e-3,
        weight_decay=1.0,
        batch_size=None,
        betas=(0.9, 0.98),
        warmup_steps=10,
        eval_every=100,
        stop_at_test_acc=0.999,
    )

    @property
    def p(self) -> int:
        p = int(self.option("p", DEFAULT_P))
        if p < 2:
            raise InputError(f"modulus p must be at least 2, got {p}")
        return p

    @property
    def op(self) -> str:
        """The operation: add (a + b), sub (a - b) or mul (a * b), all mod p."""
        op = str(self.option("op", "add"))
        if op not in OPS:
            raise InputError(f"task option op={op!r}: choose {', '.join(OPS)}")
        return op

    def apply(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(a op b) mod p."""
        return {"add": a + b, "sub": a - b, "mul": a * b}[self.op] % self.p

    @property
    def train_frac(self) -> float:
        return float(self.option("train_frac", DEFAULT_TRAIN_FRAC))

    def words(self) -> list[str]:
        """Vocabulary: the numbers 0..p-1 (token id = the number), then "=" (id p)."""
        return [str(i) for i in range(self.p)] + ["="]

    def tokenizer_json(self) -> str:
        return word_level_tokenizer(self.words())

    def model_config(self) -> ModelConfig:
        d_model, n_heads = 128, 4
        return ModelConfig(
            architecture="gpt2",
            n_layers=1,
            d_model=d_model,
            n_heads=n_heads,
            n_kv_heads=n_heads,
            d_head=d_model // n_heads,
            d_mlp=512,
            vocab_size=self.p + 2,  # numbers, "=", [UNK]
            n_ctx=3,
            act_fn="relu",
            qkv_bias=True,
            attn_out_bias=True,
            mlp_bias=True,
            tie_word_embeddings=False,
        )

    def all_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every (a, b) in row-major order: a [p²], b [p²] int64."""
        p = self.p
        a = torch.arange(p).repeat_interleave(p)
        b = torch.arange(p).repeat(p)
        return a, b

    def examples(self, a: torch.Tensor, b: torch.Tensor) -> Split:
        """Prompts "a b =" as token ids [n, 3]; the target (a + b) % p at the "=" position."""
        eq = torch.full_like(a, self.p)
        tokens = torch.stack([a, b, eq], dim=1)  # [n, 3]
        targets = torch.full_like(tokens, IGNORE)
        targets[:, 2] = self.apply(a, b)
        return Split(tokens, targets)

    def data(self, seed: int) -> TaskData:
        a, b = self.all_pairs()
        train_idx, test_idx = split_indices(len(a), self.train_frac, seed)
        n = len(a)
        return TaskData(
            train=self.examples(a[train_idx], b[train_idx]),
            test=self.examples(a[test_idx], b[test_idx]),
            seed=seed,
            description=(
                f"all {n:,} pairs (a, b) with 0 <= a, b < {self.p}, shuffled with the seed; "
                f"{len(train_idx):,} ({self.train_frac:.0%}) train, {len(test_idx):,} held out"
            ),
        )

    def train_rows(self, data: TaskData) -> list[dict[str, Any]]:
        tokens = data.train.tokens  # [n, 3]: a, b, "="
        answers = self.apply(tokens[:, 0], tokens[:, 1]).tolist()
        return [{"a": a, "b": b, "answer": str(c)} for (a, b), c in zip(tokens[:, :2].tolist(), answers, strict=True)]

    def theory(self) -> tuple[str, str]:
        top, sign = self.p - 1, OPS[self.op]
        name = {"add": "modular addition", "sub": "modular subtraction", "mul": "modular multiplication"}[self.op]
        wraps = {"add": f"a + b >= {self.p}    # the sum wraps around", "sub": "a < b    # the difference wraps around",
                 "mul": f"a * b >= {self.p}    # the product wraps around"}[self.op]
        text = (
            f'# {name[0].upper() + name[1:]}: after "a b =" the model should say (a {sign} b) mod '
            f"{self.p}.\n"
            f'theory "{name}"\n'
            f"input a: int in 0..{top}\n"
            f"input b: int in 0..{top}\n"
            'prompt "{a} {b} ="\n'
            f"expect (a {sign} b) % {self.p}\n"
            f"slice {wraps}\n"
        )
        return "modadd.theory", text

    def describe(self) -> str:
        return (
            f"Modular {dict(add='addition', sub='subtraction', mul='multiplication')[self.op]} mod {self.p}. "
            f"The prompt is three tokens, `a b =`, with a and b "
            f"in 0..{self.p - 1}; the answer is the next token, `(a {OPS[self.op]} b) % {self.p}`. The loss "
            "is taken at the `=` position only."
        )
