"""A character-level language model of Python source: the standard library's own modules.

The corpus is every top-level module of the running Python's standard library that is plain
ASCII without tabs (so one token per character, over 95 printable characters and newline).
Whole files go to train or test, chosen by the seed; each file becomes windows of n_ctx + 1
characters (64 by default). Half of the train windows also carry a random string twice (see
`CharLM.with_repeats`), so that in-context copying, and with it induction heads, is learnt
within a few minutes of CPU; the test windows are plain source.

The corpus depends on the Python version; `corpus_digest` identifies it, and the model card
records both, so a re-measurement can tell whether it sees the same text.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import torch

from tui_interp.errors import InputError
from tui_interp.model.config import ModelConfig, RopeConfig
from tui_interp.tasks.base import Split, Task, TaskData, TrainDefaults
from tui_interp.tasks.vocab import char_level_tokenizer

ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))  # newline + printable ASCII: ids 0..95, [UNK] 96
DEFAULT_CTX = 64  # short: induction heads form within minutes at 64 characters, not at 256
DEFAULT_TEST_FRAC = 0.1
DEFAULT_REPEAT_FRAC = 0.5  # share of train windows given a repeated random span (see `with_repeats`)
REPEAT_SPAN = (16, 64)  # inclusive range of repeated span lengths, in characters
EVAL_CHARS = 32_768  # accuracies are measured on this many characters of windows of each split, drawn by the seed


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def corpus_files(root: Path | None = None) -> list[Path]:
    """Top-level stdlib modules that are ASCII without tabs or carriage returns, by name."""
    root = root or stdlib_dir()
    out = []
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if text.isascii() and "\t" not in text and "\r" not in text and text.strip():
            out.append(path)
    if not out:
        raise InputError(f"no usable Python sources found in {root}")
    return out


@dataclass
class CharLM(Task):
    name: ClassVar[str] = "charlm"
    summary: ClassVar[str] = "character-level language model of the Python standard library's source"
    model_type: ClassVar[str] = "llama"
    label_heads: ClassVar[bool] = True
    defaults: ClassVar[TrainDefaults] = TrainDefaults(
        steps=3000,
        lr=3e-3,
        weight_decay=0.1,
        batch_size=64,
        betas=(0.9, 0.95),
        warmup_steps=100,
        schedule="cosine",
        grad_clip=1.0,
        eval_every=250,
        eval_limit=None,
    )

    @property
    def n_ctx(self) -> int:
        n = int(self.option("n_ctx", DEFAULT_CTX))
        if not 8 <= n <= 4096:
            raise InputError(f"context must be 8..4096 characters, got {n}")
        return n

    @property
    def eval_windows(self) -> int:
        """Windows per split that accuracies are measured on (EVAL_CHARS characters' worth)."""
        return max(1, EVAL_CHARS // self.n_ctx)

    def tokenizer_json(self) -> str:
        return char_level_tokenizer(ALPHABET)

    def model_config(self) -> ModelConfig:
        d_model, n_heads = 128, 4
        d_head = d_model // n_heads
        return ModelConfig(
            architecture="llama",
            n_layers=4,
            d_model=d_model,
            n_heads=n_heads,
            n_kv_heads=n_heads,
            d_head=d_head,
            d_mlp=384,
            vocab_size=len(ALPHABET) + 1,
            n_ctx=self.n_ctx,
            norm="rmsnorm",
            norm_eps=1e-5,
            norm_bias=False,
            positional="rotary",
            rope=RopeConfig(theta=10000.0, rotary_dim=d_head),
            act_fn="silu",
            gated_mlp=True,
            tie_word_embeddings=False,
        )

    @cached_property
    def files(self) -> list[Path]:
        return corpus_files()

    def corpus_digest(self) -> str:
        """sha256 (16 hex digits) over the corpus file names and contents."""
        h = hashlib.sha256()
        for path in self.files:
            h.update(path.name.encode())
            h.update(b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
        return h.hexdigest()[:16]

    def windows(self, paths: list[Path]) -> Split:
        """Non-overlapping windows of n_ctx + 1 characters of each file, as (inputs, next chars)."""
        n = self.n_ctx
        lookup = torch.full((128,), len(ALPHABET), dtype=torch.long)
        lookup[torch.tensor([ord(c) for c in ALPHABET])] = torch.arange(len(ALPHABET))
        rows = []
        for path in paths:
            raw = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8).long()
            ids = lookup[raw]  # [chars]
            usable = (len(ids) - 1) // n * n
            if usable <= 0:
                continue
            inputs = ids[:usable].view(-1, n)
            targets = ids[1 : usable + 1].view(-1, n)
            rows.append((inputs, targets))
        if not rows:
            raise InputError("the corpus has no file long enough for one window")
        return Split(torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows]))

    def with_repeats(self, split: Split, frac: float, seed: int) -> Split:
        """A copy of `split` in which a fraction `frac` of the windows (drawn by the seed) carry
        one string of 16..64 random printable characters twice: written at one place and again
        at a later one, over the text that was there.

        Source code repeats itself, but a few minutes of CPU training are too little for a
        small model to learn in-context copying from that alone. Random characters can only be
        predicted by copying them from their first occurrence, as in the induction task, so
        copying pays off early. In our runs the context length mattered as much: at 256
        characters no induction head formed in 3,000 steps (with plain text, with repeated
        spans of the text itself, or with these strings); at 64 characters, with these strings,
        they formed within a few hundred steps. Test windows are left untouched.
        """
        if not 0.0 <= frac <= 1.0:
            raise InputError(f"repeat fraction must be in 0..1, got {frac}")
        if frac == 0.0:
            return split
        gen = torch.Generator().manual_seed(seed + 7919)
        n = len(split)
        chosen = torch.nonzero(torch.rand(n, generator=gen) < frac).flatten()
        text = torch.cat([split.tokens, split.targets[:, -1:]], dim=1).clone()  # [n, n_ctx + 1]
        width = text.shape[1]
        lo, hi = REPEAT_SPAN
        hi = min(hi, width // 2)
        m = len(chosen)
        length = lo + (torch.rand(m, generator=gen) * (hi - lo + 1)).long()  # [m]
        src = (torch.rand(m, generator=gen) * (width - 2 * length + 1)).long()  # [m]
        room = width - length + 1 - (src + length)  # choices for the copy's start, after the source
        dst = src + length + (torch.rand(m, generator=gen) * room).long()  # [m]
        printable = torch.arange(1, len(ALPHABET))  # ids of the printable characters (not newline)
        for i, n_chars, a, b in zip(chosen.tolist(), length.tolist(), src.tolist(), dst.tolist(), strict=True):
            span = printable[torch.randint(0, len(printable), (n_chars,), generator=gen)]
            text[i, a : a + n_chars] = span
            text[i, b : b + n_chars] = span
        return Split(text[:, :-1].contiguous(), text[:, 1:].contiguous())

    def split_files(self, seed: int) -> tuple[list[Path], list[Path]]:
        files = self.files
        frac = float(self.option("test_frac", DEFAULT_TEST_FRAC))
        if not 0.0 < frac < 1.0 or len(files) < 2:
            raise InputError(f"test fraction must be in (0, 1) with at least two files, got {frac}")
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(files), generator=gen).tolist()
        n_test = max(1, round(frac * len(files)))
        test = sorted(files[i] for i in perm[:n_test])
        train = sorted(files[i] for i in perm[n_test:])
        return train, test

    def data(self, seed: int) -> TaskData:
        """Train: every window of the train files. Test: EVAL_CHARS characters' worth of windows
        of the held-out files, drawn by the seed; the train accuracy is measured on as many
        train windows."""
        train_files, test_files = self.split_files(seed)
        train, held_out = self.windows(train_files), self.windows(test_files)
        repeat_frac = float(self.option("repeat_frac", DEFAULT_REPEAT_FRAC))
        train = self.with_repeats(train, repeat_frac, seed)
        gen = torch.Generator().manual_seed(seed)
        n_eval = self.eval_windows
        test = held_out.take(torch.randperm(len(held_out), generator=gen)[:n_eval].sort().values)
        train_eval = train.take(torch.randperm(len(train), generator=gen)[:n_eval].sort().values)
        chars = sum(len(p.read_bytes()) for p in self.files)
        return TaskData(
            train=train,
            test=test,
            seed=seed,
            description=(
                f"{len(self.files)} ASCII modules of the Python {sys.version_info.major}.{sys.version_info.minor} "
                f"standard library ({chars:,} characters; corpus digest {self.corpus_digest()}); "
                f"{len(test_files)} whole files held out by the seed ({', '.join(p.name for p in test_files[:6])}"
                f"{', ...' if len(test_files) > 6 else ''}); windows of {self.n_ctx + 1} characters: "
                f"{len(train):,} train, {len(held_out):,} held out, of which {len(test)} (drawn by the seed) "
                f"are the test set. {repeat_frac:.0%} of the train windows (drawn by the seed) carry a string "
                f"of {REPEAT_SPAN[0]}..{REPEAT_SPAN[1]} random printable characters twice, at a random place "
                "and again later, so that in-context copying pays off within a short CPU run; the test "
                "windows are plain source"
            ),
            train_eval=train_eval,
        )

    def card_fields(self) -> dict[str, Any]:
        return {
            "python": f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}",
            "corpus_digest": self.corpus_digest(),
        }

    def accuracy_note(self) -> str:
        return (
            f"next characters predicted correctly (argmax), at every position of {self.eval_windows} test "
            f"windows and of {self.eval_windows} train windows, both drawn by the seed; train accuracy is "
            "lower than test because half the train windows hold random strings, which no model can "
            "predict at their first occurrence"
        )

    def describe(self) -> str:
        return (
            "A character-level language model of Python source code: the top-level modules of the "
            "standard library that are plain ASCII. One token per character (newline and the 95 "
            f"printable ASCII characters), context {self.n_ctx}. Train and test are disjoint sets of "
            "whole files."
        )
