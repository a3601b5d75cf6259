"""The model's answers on many inputs, batched: teacher-forced scoring and greedy generation.

What compare, table, recover, audit and diff share. Inputs are bucketed by token length and
run in batches of at most MAX_BATCH_TOKENS tokens on the model's device; `cancel()` is checked
between batches. Both functions are pure in (model, token lists, hooks), so batches could be
mapped over several processes later.

    score(lm, items)        one forward per batch: does the greedy continuation equal the
                            expected tokens (every expected token is the argmax after its
                            prefix), p(expected), and the smallest logit margin
    generate(lm, prompts)   the greedy continuation of each prompt, n tokens, and its probability
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from tui_interp.errors import InputError, TuiInterpError
from tui_interp.model.loader import LoadedModel
from tui_interp.model.transformer import HookFn

MAX_BATCH_TOKENS = 65_536  # tokens per forward
HookFactory = Callable[[int], list[tuple[str, HookFn]]]  # batch size -> hooks for that batch


class Cancelled(TuiInterpError):
    """The run was cancelled."""


@dataclass(frozen=True)
class Scored:
    agree: bool  # the greedy continuation is exactly the expected tokens
    p_expected: float  # probability of the whole expected continuation (teacher forced)
    margin: float  # min over expected tokens of logit(expected) - best other logit (< 0: disagree)
    first_agree: bool  # the first expected token is the argmax


def _batches(lengths: Sequence[int], keys: Sequence[tuple[int, ...]]) -> Iterator[tuple[tuple[int, ...], list[int]]]:
    """Indices grouped by key, in chunks of at most MAX_BATCH_TOKENS tokens (length per row)."""
    buckets: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        buckets[key].append(i)
    for key, idxs in buckets.items():
        per_batch = max(1, MAX_BATCH_TOKENS // max(1, lengths[idxs[0]]))
        for start in range(0, len(idxs), per_batch):
            yield key, idxs[start : start + per_batch]


@torch.inference_mode()
def score(
    lm: LoadedModel,
    prompts: Sequence[list[int]],
    expected: Sequence[list[int]],
    *,
    cancel: Callable[[], bool] = lambda: False,
    hooks: HookFactory | None = None,
) -> Iterator[list[tuple[int, Scored]]]:
    """Teacher-forced scoring of `expected[i]` after `prompts[i]`; yields each batch as (index, Scored).
    `hooks(batch_size)` gives interventions to run the batch under (claims use it)."""
    model = lm.model
    n_ctx = model.cfg.n_ctx
    lengths = [len(p) + len(e) - 1 for p, e in zip(prompts, expected, strict=True)]
    for i, total in enumerate(lengths):
        if total > n_ctx:
            raise InputError(f"prompt and answer of input {i + 1} are {total} tokens, longer than the model's context ({n_ctx})")
    keys = [(len(p), len(e)) for p, e in zip(prompts, expected, strict=True)]
    for (plen, _), chunk in _batches(lengths, keys):
        if cancel():
            raise Cancelled("cancelled")
        rows = [prompts[i] + expected[i][:-1] for i in chunk]  # the last expected token is never an input
        tokens = torch.tensor(rows, device=lm.device)  # [batch, pos]
        targets = torch.tensor([expected[i] for i in chunk], device=lm.device)  # [batch, answer]
        with model.hooks(hooks(len(chunk)) if hooks is not None else []):
            resid = model(tokens, stop_at_layer=model.cfg.n_layers)
            logits = model.unembed(resid[:, plen - 1 :]).float()  # [batch, answer, vocab]: predictions of the answer
        logp = torch.log_softmax(logits, dim=-1)
        lp_expected = logp.gather(-1, targets[..., None])[..., 0]  # [batch, answer]
        expected_logit = logits.gather(-1, targets[..., None])[..., 0]
        others = logits.scatter(-1, targets[..., None], float("-inf")).amax(-1)
        margins = expected_logit - others  # [batch, answer]
        margin = margins.amin(-1)
        p_expected = lp_expected.sum(-1).exp()
        yield [
            (i, Scored(m > 0, p, m, f > 0))
            for i, p, m, f in zip(chunk, p_expected.tolist(), margin.tolist(), margins[:, 0].tolist(), strict=True)
        ]


@torch.inference_mode()
def generate(
    lm: LoadedModel,
    prompts: Sequence[list[int]],
    n_tokens: Sequence[int],
    *,
    cancel: Callable[[], bool] = lambda: False,
    hooks: HookFactory | None = None,
) -> list[tuple[list[int], float]]:
    """The greedy continuation of each prompt (`n_tokens[i]` tokens, fewer where the context
    ends) and its probability under the model, in input order."""
    model = lm.model
    out: list[tuple[list[int], float]] = [([], 1.0)] * len(prompts)
    lengths = [len(p) + n for p, n in zip(prompts, n_tokens, strict=True)]
    keys = [(len(p), n) for p, n in zip(prompts, n_tokens, strict=True)]
    for (plen, n), chunk in _batches(lengths, keys):
        if cancel():
            raise Cancelled("cancelled")
        tokens = torch.tensor([prompts[i] for i in chunk], device=lm.device)  # [batch, pos]
        logp_total = torch.zeros(len(chunk), device=lm.device)
        for _ in range(n):
            if tokens.shape[1] > model.cfg.n_ctx:
                break  # the model cannot read this many tokens
            with model.hooks(hooks(len(chunk)) if hooks is not None else []):
                resid = model(tokens, stop_at_layer=model.cfg.n_layers)
                logits = model.unembed(resid[:, -1:])[:, 0].float()  # [batch, vocab]
            nxt = logits.argmax(-1)  # [batch]
            logp_total += torch.log_softmax(logits, -1).gather(-1, nxt[:, None])[:, 0]
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        for row, i in enumerate(chunk):
            out[i] = (tokens[row, plen:].tolist(), float(logp_total[row].exp()))
    return out
