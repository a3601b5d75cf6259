"""Induction: a random sequence of tokens, then the same sequence again.

Each example is `[BOS] r1 ... rN r1 ... rN` with r a random run of N distinct tokens. The
first half cannot be predicted; in the second half every next token can, by finding where the
current token appeared before and copying the token that followed it. A two-layer
attention-only transformer learns this with two heads working together: a previous-token head
in layer 0 that writes "the token before me was x" into each position, and an induction head
in layer 1 whose query (the current token) matches that key and copies the following token
(Olsson et al., 2022, "In-context learning and induction heads").

The model is saved as GPT-2 so that HuggingFace loads it too; GPT-2 has an MLP in every
block, so the MLPs are one neuron wide with weights and biases exactly zero and never trained.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from tui_interp.errors import InputError
from tui_interp.model.config import ModelConfig
from tui_interp.tasks.base import IGNORE, Split, Task, TaskData, TrainDefaults
from tui_interp.tasks.vocab import BOS, word_level_tokenizer

SYMBOLS = tuple(string.ascii_lowercase + string.ascii_uppercase)  # 52 one-letter tokens
DEFAULT_LENGTH = 48  # tokens after [BOS]
MIN_RUN = 4
DEFAULT_TRAIN = 40_000
DEFAULT_TEST = 2_000
TRAIN_EVAL = 2_000  # train accuracy is measured on the first this many train sequences
TEST_SEED_OFFSET = 1_000_003  # the test split's generator is seeded apart from the train split's


@dataclass
class Induction(Task):
    name: ClassVar[str] = "induction"
    summary: ClassVar[str] = "repeated random token sequences: predict the repeat (induction heads)"
    model_type: ClassVar[str] = "gpt2"
    label_heads: ClassVar[bool] = True
    defaults: ClassVar[TrainDefaults] = TrainDefaults(
        steps=3000,
        lr=2e-3,
        weight_decay=0.1,
        batch_size=64,
        betas=(0.9, 0.98),
        warmup_steps=100,
        schedule="cosine",
        eval_every=250,
        grad_clip=1.0,
    )

    @property
    def length(self) -> int:
        """Tokens after [BOS]; the context is one more."""
        n = int(self.option("length", DEFAULT_LENGTH))
        if not 2 * MIN_RUN <= n <= len(SYMBOLS):
            raise InputError(f"induction sequences must be {2 * MIN_RUN}..{len(SYMBOLS)} tokens long, got {n}")
        return n

    @property
    def max_run(self) -> int:
        return self.length // 2

    def words(self) -> list[str]:
        """Vocabulary: the 52 letters (ids 0..51), then [BOS] (52), then [UNK] (53)."""
        return [*SYMBOLS, BOS]

    @property
    def bos_id(self) -> int:
        return len(SYMBOLS)

    def tokenizer_json(self) -> str:
        return word_level_tokenizer(self.words(), bos=BOS)

    def model_config(self) -> ModelConfig:
        d_model, n_heads = 64, 4
        return ModelConfig(
            architecture="gpt2",
            n_layers=2,
            d_model=d_model,
            n_heads=n_heads,
            n_kv_heads=n_heads,
            d_head=d_model // n_heads,
            d_mlp=1,  # zero and frozen: attention-only in effect
            vocab_size=len(SYMBOLS) + 2,
            n_ctx=self.length + 1,
            act_fn="gelu_new",
            qkv_bias=True,
            attn_out_bias=True,
            mlp_bias=True,
            tie_word_embeddings=False,
            bos_token_id=self.bos_id,
        )

    def frozen_zero(self) -> Callable[[str], bool]:
        def zero(name: str) -> bool:
            return ".mlp." in name

        return zero

    def sequences(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n examples: ([n, length + 1] tokens, run starts [n], run lengths [n]).

        Each is [BOS] u1..up r1..rk r1..rk v1..vq: a run r of k letters (k uniform in
        MIN_RUN..length/2) repeated at once, at a random offset p, amid filler. Every letter
        is distinct except for the repeat, so each next token of the second copy is determined
        by where the current token occurred before, and by nothing else: the offset varies, so
        no fixed-distance (positional) head can stand in for an induction head.
        """
        L = self.length
        letters = torch.rand(n, len(SYMBOLS), generator=gen).argsort(dim=1)  # [n, 52] distinct per row
        k = torch.randint(MIN_RUN, self.max_run + 1, (n,), generator=gen)  # run lengths [n]
        p = (torch.rand(n, generator=gen) * (L - 2 * k + 1)).floor().long()  # run starts [n]
        j = torch.arange(L)[None, :]  # [1, L]
        source = torch.where(j < (p + k)[:, None], j, j - k[:, None])  # [n, L]: second copy reads back k
        body = letters.gather(1, source)  # [n, L]
        bos = torch.full((n, 1), self.bos_id, dtype=torch.long)
        return torch.cat([bos, body], dim=1), p, k

    def examples(self, seqs: torch.Tensor, starts: torch.Tensor, runs: torch.Tensor) -> Split:
        """Targets at the positions of the second copy whose next token is also in it.

        With [BOS] at 0, the first copy spans 1+p .. p+k and the second 1+p+k .. p+2k; its
        positions 1+p+k .. p+2k-1 predict the next token of the copy (k - 1 targets).
        """
        pos = torch.arange(seqs.shape[1])[None, :]  # [1, L + 1]
        lo = (1 + starts + runs)[:, None]
        hi = (starts + 2 * runs)[:, None]  # exclusive
        mask = (pos >= lo) & (pos < hi)  # [n, L + 1]
        nxt = torch.cat([seqs[:, 1:], torch.full_like(seqs[:, :1], IGNORE)], dim=1)
        targets = torch.where(mask, nxt, torch.full_like(seqs, IGNORE))
        return Split(seqs, targets)

    def data(self, seed: int) -> TaskData:
        n_train = int(self.option("n_train", DEFAULT_TRAIN))
        n_test = int(self.option("n_test", DEFAULT_TEST))
        train = self.sequences(n_train, torch.Generator().manual_seed(seed))
        test = self.sequences(n_test, torch.Generator().manual_seed(seed + TEST_SEED_OFFSET))
        train_split = self.examples(*train)
        return TaskData(
            train=train_split,
            test=self.examples(*test),
            train_eval=train_split.take(slice(0, TRAIN_EVAL)),
            seed=seed,
            description=(
                f"{n_train:,} train and {n_test:,} test sequences of {self.length + 1} tokens "
                f"([BOS], then distinct letters with one run of {MIN_RUN}..{self.max_run} repeated at a "
                "random offset), drawn from two generators seeded from the seed"
            ),
        )

    def accuracy_note(self) -> str:
        return (
            "next tokens of the repeated run predicted correctly (k - 1 per sequence, k the run length); "
            f"train accuracy on the first {TRAIN_EVAL:,} train sequences"
        )

    def describe(self) -> str:
        return (
            f"Induction. Each example is `[BOS]` and {self.length} letters (a-z, A-Z) that are all "
            f"distinct except for one run of {MIN_RUN}..{self.max_run} letters repeated at once, at a "
            "random offset. The loss is taken where the next token is predictable by copying: the "
            "positions of the second copy after its first token. The offset varies, so the model "
            "must find the earlier occurrence of the current token (an induction head) rather than "
            "look a fixed distance back."
        )

    def probe(self, n: int = 64, seed: int = 0) -> torch.Tensor:
        """Clean probe sequences for measuring heads: [BOS] r r with r a run of length/2
        distinct letters: [n, length + 1]. The induction offset is length/2 - 1 back."""
        gen = torch.Generator().manual_seed(seed)
        half = self.max_run
        runs = torch.rand(n, len(SYMBOLS), generator=gen).argsort(dim=1)[:, :half]
        bos = torch.full((n, 1), self.bos_id, dtype=torch.long)
        return torch.cat([bos, runs, runs], dim=1)
