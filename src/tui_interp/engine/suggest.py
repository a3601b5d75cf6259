"""Suggested labels for attention heads: each head's pattern matched against known patterns.

Patterns (score = mean attention mass on the pattern's positions):
  previous-token head   from each position to the one before it   (repeated-random-token probe)
  induction head        from a repeated token to the token after its earlier occurrence (probe)
  first-token head      from each position to position 0 (an attention sink)
  self-attention head   from each position to itself
  attends to <input>    from the last position to the tokens of one theory input
The first two are measured on the standard probe (`probe_for`: `[BOS] r r`, r a run of
distinct random tokens); the others on the theory's prompts when a theory is given, else on
the probe. `head_scores` gives the first two for every head; `suggest_head_labels` all of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tui_interp.components import parse_component
from tui_interp.errors import InputError
from tui_interp.model.loader import LoadedModel
from tui_interp.model.transformer import Transformer
from tui_interp.theory import Theory

MIN_SCORE = 0.5  # a pattern's score a head needs to be suggested (the previous-token head too)
INDUCTION_MIN_SCORE = 0.4  # induction attention is spread over more keys: a lower bar
THEORY_PROMPTS = 256
PROBE_SEQUENCES = 64
PROBE_SEED = 0
SPECIAL_TOKENS = ("[UNK]", "[BOS]", "[PAD]", "<unk>", "<s>", "</s>", "<pad>")


@dataclass(frozen=True)
class HeadScores:
    """Per-head scores [n_layers, n_heads] on the standard probe, and the probe in words."""

    prev_token: torch.Tensor
    induction: torch.Tensor
    probe: str

    def to_json(self) -> dict[str, Any]:
        """{"probe", "heads": [{"component", "prev_token", "induction"}]}, heads in forward order."""
        n_layers, n_heads = self.prev_token.shape
        heads = [
            {"component": f"L{l}.H{h}", "prev_token": round(float(self.prev_token[l, h]), 4), "induction": round(float(self.induction[l, h]), 4)}
            for l in range(n_layers)
            for h in range(n_heads)
        ]
        return {"probe": self.probe, "heads": heads}


def repeated_tokens(candidates: torch.Tensor, half: int, n: int, *, seed: int = PROBE_SEED, bos: int | None = None) -> torch.Tensor:
    """n probe sequences [BOS] r r: r is `half` distinct ids drawn from `candidates`.

    Returns [n, 2 * half (+ 1 with bos)] int64.
    """
    if half > len(candidates):
        raise InputError(f"a run of {half} distinct tokens needs at least {half} candidates, got {len(candidates)}")
    gen = torch.Generator().manual_seed(seed)
    picks = torch.rand(n, len(candidates), generator=gen).argsort(dim=1)[:, :half]  # [n, half]
    runs = candidates[picks]
    parts = [runs, runs]
    if bos is not None:
        parts.insert(0, torch.full((n, 1), bos, dtype=torch.long))
    return torch.cat(parts, dim=1)


def probe_for(model: Transformer, *, bos: int | None, candidates: torch.Tensor | None = None, n: int = PROBE_SEQUENCES) -> tuple[torch.Tensor, int, str]:
    """The standard probe for a model: runs as long as fits the context (at most 48 tokens), of
    distinct tokens drawn from `candidates` (default: every id except the BOS one)."""
    cfg = model.cfg
    if candidates is None:
        ids = torch.arange(cfg.vocab_size)
        candidates = ids[ids != bos] if bos is not None else ids
    half = min(48, (cfg.n_ctx - (1 if bos is not None else 0)) // 2, len(candidates))
    tokens = repeated_tokens(candidates, half, n, bos=bos)
    words = f"{n} sequences {'[BOS] ' if bos is not None else ''}r r, r a run of {half} distinct random tokens (seed {PROBE_SEED})"
    return tokens, half, words


@torch.inference_mode()
def head_scores(model: Transformer, tokens: torch.Tensor, half: int, *, probe: str = "") -> HeadScores:
    """Scores of every head on probe `tokens` [n, pos] made of a run of `half` tokens and its
    repeat, the run starting at position pos - 2 * half (1 with a BOS token, else 0).

    previous-token score: mean attention from each position to the one just before it;
    induction score: mean attention, from each position of the second copy, to the position
    just after the same token's occurrence in the first copy."""
    n, pos = tokens.shape
    start = pos - 2 * half  # first position of the first copy
    if start < 0 or half < 2:
        raise InputError(f"probe of {pos} tokens cannot hold a run of {half} twice")
    _, cache = model.run_with_cache(tokens, "blocks.*.attn.hook_pattern")
    prev, ind = [], []
    q_prev = torch.arange(max(1, start + 1), pos)  # positions with a real previous token
    q_ind = torch.arange(start + half, pos)  # the second copy
    # the earlier occurrence of the token at q is q - half; the induction target is one after it
    k_ind = q_ind - half + 1
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"].float()  # [batch, head, query, key]
        prev.append(pattern[:, :, q_prev, q_prev - 1].mean(dim=(0, 2)))  # [head]
        ind.append(pattern[:, :, q_ind, k_ind].mean(dim=(0, 2)))  # [head]
    return HeadScores(torch.stack(prev), torch.stack(ind), probe)


def probe_candidates(lm: LoadedModel, theory: Theory | None = None, *, seed: int = 0) -> tuple[torch.Tensor | None, str]:
    """Token ids the probe draws from, and what they are in words: the tokens of the theory's
    prompts when a theory is given (and they are at least 4), else the tokenizer's ordinary
    vocabulary: tokens that decode to printable text on their own (no special tokens, no BOS,
    no byte fragments, no control characters). None (every id) without a tokenizer."""
    tok = lm.tokenizer
    if tok is None:
        return None, "every token id"
    bos = lm.config.bos_token_id
    specials = {tok.token_to_id(t) for t in SPECIAL_TOKENS} | {bos}
    if theory is not None:
        prompts = [theory.render_prompt(x) for x in theory.domain.sample(THEORY_PROMPTS, seed=seed)]
        seen = sorted({i for ids in tok.encode_batch(prompts, bos=False) for i in ids} - specials)
        if len(seen) >= 4:
            return torch.tensor(seen), f"the {len(seen)} tokens of the theory's prompts"
    vocab = min(lm.config.vocab_size, tok.vocab_size)
    ordinary = [i for i in range(vocab) if i not in specials and _ordinary(tok.decode([i]))]
    if len(ordinary) < 4:
        return None, "every token id"
    return torch.tensor(ordinary), f"the {len(ordinary)} ordinary tokens of the vocabulary"


def _ordinary(text: str) -> bool:
    return bool(text.strip()) and text.isprintable() and "\ufffd" not in text


def probe_bos(lm: LoadedModel) -> int | None:
    bos = lm.config.bos_token_id
    return bos if bos is not None and bos < lm.config.vocab_size else None


def standard_probe(lm: LoadedModel, theory: Theory | None = None) -> tuple[torch.Tensor, int, str]:
    """The repeated-token probe for this model ([n, pos] on its device), the run length, in words."""
    candidates, source = probe_candidates(lm, theory)
    probe, half, words = probe_for(lm.model, bos=probe_bos(lm), candidates=candidates)
    return probe.to(lm.device), half, f"{words}, drawn from {source}"


def standard_head_scores(lm: LoadedModel, theory: Theory | None = None) -> HeadScores:
    """Previous-token and induction scores of every head on the standard probe (drawn from the
    theory's prompt tokens when a theory is given)."""
    probe, half, words = standard_probe(lm, theory)
    return head_scores(lm.model, probe, half, probe=words)


PATTERN_THRESHOLDS = {"induction head": INDUCTION_MIN_SCORE}  # every other pattern: MIN_SCORE


@dataclass(frozen=True)
class Suggestion:
    component: str
    name: str
    score: float
    metric: str
    inputs: str  # what the score was measured on

    def evidence(self, command: str) -> dict[str, Any]:
        return {"kind": "attention", "metric": self.metric, "value": round(self.score, 4), "probe": self.inputs, "command": command}

    def to_json(self) -> dict[str, Any]:
        return {"component": self.component, "name": self.name, "score": self.score, "metric": self.metric, "inputs": self.inputs}


@torch.inference_mode()
def head_pattern_scores(lm: LoadedModel, theory: Theory | None = None, *, seed: int = 0) -> list[Suggestion]:
    """Every head's score for every pattern, in forward order (unfiltered)."""
    model, cfg = lm.model, lm.config
    out: list[Suggestion] = []
    probe: torch.Tensor | None = None
    probe_words = ""
    if (cfg.n_ctx - (1 if probe_bos(lm) is not None else 0)) // 2 >= 2:  # room for a run of 2 tokens, twice
        probe, half, probe_words = standard_probe(lm, theory)
        scores = head_scores(model, probe, half, probe=probe_words)
        for l in range(cfg.n_layers):
            for h in range(cfg.n_heads):
                c = f"L{l}.H{h}"
                out.append(Suggestion(c, "previous-token head", float(scores.prev_token[l, h]), "mean attention to the previous token", probe_words))
                out.append(Suggestion(c, "induction head", float(scores.induction[l, h]),
                                      "mean attention to the token after the earlier occurrence of the current token", probe_words))
    if theory is None and probe is None:
        raise InputError(f"the model's context ({cfg.n_ctx} tokens) is too short for the repeated-token probe: give a --theory to measure on")
    patterns, words, variables = _patterns_on(lm, theory, probe, probe_words, seed)
    for l in range(cfg.n_layers):
        p = patterns[l]  # [batch, head, query, key]
        q = torch.arange(1, p.shape[-1], device=p.device)
        first = p[:, :, 1:, 0].mean(dim=(0, 2))  # [head]
        self_ = p[:, :, q, q].mean(dim=(0, 2))
        for h in range(cfg.n_heads):
            c = f"L{l}.H{h}"
            out.append(Suggestion(c, "first-token head", float(first[h]), "mean attention to position 0", words))
            out.append(Suggestion(c, "self-attention head", float(self_[h]), "mean attention to the same position", words))
            for name, mask in variables.items():
                mass = float((p[:, h, -1] * mask).sum(-1).mean())
                out.append(Suggestion(c, f"attends to {name}", mass, f"mean attention from the last position to input {name}", words))
    return sorted(out, key=lambda s: (parse_component(s.component), s.name))


def suggest_head_labels(
    lm: LoadedModel, theory: Theory | None = None, *, seed: int = 0, min_score: float | None = None, scores: list[Suggestion] | None = None
) -> list[Suggestion]:
    """Every (head, pattern) whose score passes its threshold, best first. `min_score` replaces
    every pattern's default threshold (MIN_SCORE; INDUCTION_MIN_SCORE for induction heads)."""
    found = scores if scores is not None else head_pattern_scores(lm, theory, seed=seed)
    kept = [s for s in found if s.score >= (min_score if min_score is not None else PATTERN_THRESHOLDS.get(s.name, MIN_SCORE))]
    return sorted(kept, key=lambda s: (-s.score, s.component))


def _patterns_on(lm: LoadedModel, theory: Theory | None, probe: torch.Tensor | None, probe_words: str, seed: int):
    """Attention patterns [batch, head, q, k] per layer on the theory's prompts (one length), or the probe;
    plus, per theory input, a [batch, key] mask of the positions its placeholder rendered to."""
    model = lm.model
    variables: dict[str, torch.Tensor] = {}
    tokens, words = probe, probe_words
    if theory is not None and lm.tokenizer is not None:
        inputs = theory.domain.sample(THEORY_PROMPTS, seed=seed)
        rows: dict[int, list[tuple[list[int], list[tuple[int, int]], Any]]] = defaultdict(list)
        for x in inputs:
            ids, offsets = lm.tokenizer.encode_with_offsets(theory.render_prompt(x))
            rows[len(ids)].append((ids, offsets, x))
        length, group = max(rows.items(), key=lambda kv: len(kv[1]))
        tokens = torch.tensor([r[0] for r in group], device=lm.device)
        words = f"{len(group)} prompts of theory {theory.name!r} ({length} tokens each, seed {seed})"
        for name in theory.input_names:
            mask = torch.zeros(len(group), length, device=lm.device)
            for i, (_, offsets, x) in enumerate(group):
                spans = [(pc.start, pc.end) for pc in theory.prompt_pieces(x) if name in pc.inputs]
                for k, (s, e) in enumerate(offsets):
                    if e > s and any(s < pe and ps < e for ps, pe in spans):
                        mask[i, k] = 1
            if mask.any():
                variables[name] = mask
    if tokens is None:
        raise InputError("nothing to measure attention on")
    _, cache = model.run_with_cache(tokens, "blocks.*.attn.hook_pattern")
    patterns = [cache[f"blocks.{l}.attn.hook_pattern"].float() for l in range(model.cfg.n_layers)]
    return patterns, words, variables


def accept_suggestions(found: Sequence[Suggestion], store: Any, *, command: str) -> list[str]:
    """Label each head that has no label with its best suggestion (tagged `suggested`, the score
    as evidence). `found` is best first. Returns the heads labelled."""
    snapshot = store.read()
    written: list[str] = []
    for s in found:
        if s.component in written or snapshot.get(s.component) is not None:
            continue
        store.add(s.component, s.name, tags=["suggested"], evidence=[s.evidence(command)])
        written.append(s.component)
    return written
