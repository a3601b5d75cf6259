"""Parity: from a bit string "0110...1 =" predict whether it holds an odd number of ones.

All 2^n strings of n bits are enumerated and split by seed. A transformer could solve parity
with structure (one head attends evenly to every bit, so the residual stream holds the count
of ones, and the MLP reads that count's parity), but gradient descent is slow to find it: in
our short CPU runs (up to 2,000 steps) a one-layer model (12 bits, 30% or 50% of the strings,
weight decay 1) memorised the training strings and scored below chance on the held-out ones,
as parity's reputation for transformers predicts. It is kept as a task for studying that failure; the shipped
generalise-or-memorise pair besides modular addition is sorting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from tui_interp.errors import InputError
from tui_interp.model.config import ModelConfig
from tui_interp.tasks.base import IGNORE, Split, Task, TaskData, TrainDefaults, split_indices
from tui_interp.tasks.vocab import word_level_tokenizer

DEFAULT_BITS = 12
DEFAULT_TRAIN_FRAC = 0.3
MAX_BITS = 20


@dataclass
class Parity(Task):
    name: ClassVar[str] = "parity"
    summary: ClassVar[str] = "parity (count of ones mod 2) of a bit string, from the prompt \"0110...1 =\""
    model_type: ClassVar[str] = "gpt2"
    defaults: ClassVar[TrainDefaults] = TrainDefaults(
        steps=5000,
        lr=1e-3,
        weight_decay=1.0,
        batch_size=None,
        betas=(0.9, 0.98),
        warmup_steps=10,
        eval_every=50,
        stop_at_test_acc=0.995,
    )

    @property
    def n_bits(self) -> int:
        n = int(self.option("n_bits", DEFAULT_BITS))
        if not 2 <= n <= MAX_BITS:
            raise InputError(f"parity needs 2..{MAX_BITS} bits, got {n}")
        return n

    @property
    def train_frac(self) -> float:
        return float(self.option("train_frac", DEFAULT_TRAIN_FRAC))

    def tokenizer_json(self) -> str:
        # token ids: "0" -> 0, "1" -> 1, "=" -> 2, [UNK] -> 3; every digit is its own token
        return word_level_tokenizer(["0", "1", "="], split_digits=True)

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
            vocab_size=4,
            n_ctx=self.n_bits + 1,
            act_fn="relu",
            qkv_bias=True,
            attn_out_bias=True,
            mlp_bias=True,
            tie_word_embeddings=False,
        )

    def all_strings(self) -> torch.Tensor:
        """Every bit string, as [2^n, n] int64 in numeric order (most significant bit first)."""
        n = self.n_bits
        codes = torch.arange(2**n)
        shifts = torch.arange(n - 1, -1, -1)
        return (codes[:, None] >> shifts[None, :]) & 1

    def examples(self, bits: torch.Tensor) -> Split:
        """Prompts "b1 ... bn =" as ids [m, n + 1]; the parity (0 or 1) as target at "="."""
        eq = torch.full((bits.shape[0], 1), 2, dtype=torch.long)
        tokens = torch.cat([bits, eq], dim=1)  # [m, n + 1]
        targets = torch.full_like(tokens, IGNORE)
        targets[:, -1] = bits.sum(dim=1) % 2
        return Split(tokens, targets)

    def data(self, seed: int) -> TaskData:
        bits = self.all_strings()
        train_idx, test_idx = split_indices(len(bits), self.train_frac, seed)
        return TaskData(
            train=self.examples(bits[train_idx]),
            test=self.examples(bits[test_idx]),
            seed=seed,
            description=(
                f"all {len(bits):,} strings of {self.n_bits} bits, shuffled with the seed; "
                f"{len(train_idx):,} ({self.train_frac:.0%}) train, {len(test_idx):,} held out"
            ),
        )

    def train_rows(self, data: TaskData) -> list[dict[str, Any]]:
        bits = data.train.tokens[:, : self.n_bits]  # [n, n_bits]
        return [{"s": "".join(map(str, row)), "answer": str(sum(row) % 2)} for row in bits.tolist()]

    def theory(self) -> tuple[str, str]:
        n = self.n_bits
        text = (
            f"# Parity: after {n} bits and \"=\", the model should say 1 when the count of ones is odd.\n"
            'theory "parity"\n'
            f'input s: str of "01" len {n}\n'
            'prompt "{s} ="\n'
            'expect count(s, "1") % 2\n'
            f'slice count(s, "1") > {n // 2}    # more ones than zeros\n'
        )
        return "parity.theory", text

    def describe(self) -> str:
        return (
            f"Parity of {self.n_bits}-bit strings. The prompt is the bits, one token each, then "
            "`=`; the answer is the next token, `1` when the string has an odd number of ones and "
            "`0` otherwise. The loss is taken at the `=` position only."
        )
