"""Sorting: from "x1 ... xn >" produce the same numbers in ascending order, one per step.

Lists of n numbers in 0..V-1 (repeats allowed) are drawn at random; the model sees the list,
a ">" and the sorted list so far, and predicts the next sorted number. Trained on many lists
it learns an algorithm (attend to the smallest number not yet written); trained on a few
hundred lists without weight decay it memorises them and fails on new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from tui_interp.errors import InputError
from tui_interp.model.config import ModelConfig
from tui_interp.tasks.base import IGNORE, Split, Task, TaskData, TrainDefaults
from tui_interp.tasks.vocab import word_level_tokenizer

DEFAULT_LENGTH = 8
DEFAULT_VALUES = 64
DEFAULT_TRAIN = 50_000
DEFAULT_TEST = 2_000
TRAIN_EVAL = 2_000  # train accuracy is measured on at most this many train lists
TEST_SEED_OFFSET = 1_000_003


@dataclass
class Sorting(Task):
    name: ClassVar[str] = "sorting"
    summary: ClassVar[str] = "sort a list of numbers: \"x1 ... xn >\" then the sorted list, one number at a time"
    model_type: ClassVar[str] = "gpt2"
    defaults: ClassVar[TrainDefaults] = TrainDefaults(
        steps=3000,
        lr=1e-3,
        weight_decay=0.1,
        batch_size=128,
        betas=(0.9, 0.98),
        warmup_steps=100,
        schedule="cosine",
        grad_clip=1.0,
        eval_every=250,
    )

    @property
    def length(self) -> int:
        n = int(self.option("length", DEFAULT_LENGTH))
        if not 2 <= n <= 32:
            raise InputError(f"sorting lists must have 2..32 numbers, got {n}")
        return n

    @property
    def values(self) -> int:
        v = int(self.option("values", DEFAULT_VALUES))
        if not 2 <= v <= 1000:
            raise InputError(f"sorting needs 2..1000 distinct values, got {v}")
        return v

    def words(self) -> list[str]:
        """Vocabulary: the numbers 0..V-1 (token id = the number), then ">" (id V)."""
        return [str(i) for i in range(self.values)] + [">"]

    def tokenizer_json(self) -> str:
        return word_level_tokenizer(self.words())

    def model_config(self) -> ModelConfig:
        d_model, n_heads = 128, 4
        return ModelConfig(
            architecture="gpt2",
            n_layers=2,
            d_model=d_model,
            n_heads=n_heads,
            n_kv_heads=n_heads,
            d_head=d_model // n_heads,
            d_mlp=512,
            vocab_size=self.values + 2,  # numbers, ">", [UNK]
            n_ctx=2 * self.length,
            act_fn="gelu_new",
            qkv_bias=True,
            attn_out_bias=True,
            mlp_bias=True,
            tie_word_embeddings=False,
        )

    def lists(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """n random lists [n, length], values uniform in 0..V-1 (repeats allowed)."""
        return torch.randint(0, self.values, (n, self.length), generator=gen)

    def examples(self, xs: torch.Tensor) -> Split:
        """Tokens [x1..xn, >, y1..y(n-1)] ([m, 2n]); at ">" and each y the target is the next y."""
        n = self.length
        ys = xs.sort(dim=1).values
        sep = torch.full((xs.shape[0], 1), self.values, dtype=torch.long)
        tokens = torch.cat([xs, sep, ys[:, :-1]], dim=1)  # [m, 2n]
        targets = torch.full_like(tokens, IGNORE)
        targets[:, n:] = ys
        return Split(tokens, targets)

    def data(self, seed: int) -> TaskData:
        n_train = int(self.option("n_train", DEFAULT_TRAIN))
        n_test = int(self.option("n_test", DEFAULT_TEST))
        if n_train < 1 or n_test < 1:
            raise InputError(f"sorting needs at least one train and one test list, got {n_train} and {n_test}")
        train = self.examples(self.lists(n_train, torch.Generator().manual_seed(seed)))
        test = self.examples(self.lists(n_test, torch.Generator().manual_seed(seed + TEST_SEED_OFFSET)))
        return TaskData(
            train=train,
            test=test,
            seed=seed,
            description=(
                f"{n_train:,} train and {n_test:,} test lists of {self.length} numbers in 0..{self.values - 1} "
                f"(repeats allowed), drawn from two generators seeded from the seed; with "
                f"{self.values}^{self.length} possible lists, train and test are disjoint in practice"
            ),
            train_eval=train.take(slice(0, TRAIN_EVAL)) if n_train > TRAIN_EVAL else None,
        )

    def train_rows(self, data: TaskData) -> list[dict[str, Any]]:
        xs = data.train.tokens[:, : self.length]  # [n, length]: the lists
        return [{"xs": row, "answer": " ".join(map(str, sorted(row)))} for row in xs.tolist()]

    def theory(self) -> tuple[str, str]:
        text = (
            "# Sorting: after the list and \">\", the first number the model writes is the smallest.\n"
            'theory "sorting: the smallest comes first"\n'
            f"input xs: list[int in 0..{self.values - 1}] len {self.length}\n"
            'prompt "{xs} >"\n'
            "expect min(xs)\n"
            "slice count(xs, min(xs)) > 1    # the smallest number is repeated\n"
        )
        return "sorting.theory", text

    def accuracy_note(self) -> str:
        return (
            f"sorted numbers predicted correctly ({self.length} per list, each given the correct ones "
            f"before it); train accuracy on at most the first {TRAIN_EVAL:,} train lists"
        )

    def describe(self) -> str:
        n = self.length
        return (
            f"Sorting lists of {n} numbers in 0..{self.values - 1} (repeats allowed). The input is the "
            f"list, `>`, then the sorted list so far (`x1 ... x{n} > y1 ... yk`); the answer is the next "
            f"sorted number. The loss is taken at `>` and at each sorted number ({n} answers per list). "
            "The theory file covers the first answer: the smallest number."
        )
