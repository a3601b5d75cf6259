"""Find previous-token and induction heads by measuring attention patterns.

Both scores are averages of one attention weight over a probe batch of repeated random tokens
(`[BOS] r r`, r a run of distinct random tokens):

- previous-token score of a head: mean attention from each position to the one just before it;
- induction score: mean attention, from each position of the second copy, to the position just
  after the same token's occurrence in the first copy (where an induction head looks to copy
  the next token from).

`head_labels` turns clear cases into a label file (DESIGN.md "Label files") with the scores
as evidence. `python -m tui_interp.tasks.heads MODEL_DIR` prints the scores as JSON; it is the
command the evidence cites.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import torch

from tui_interp.errors import InputError, TuiInterpError
from tui_interp.model.transformer import Transformer

LABEL_FORMAT = "tui-interp.labels/1"
PREV_TOKEN_THRESHOLD = 0.5
INDUCTION_THRESHOLD = 0.4
PROBE_SEQUENCES = 64
PROBE_SEED = 0


@dataclass(frozen=True)
class HeadScores:
    """Per-head scores [n_layers, n_heads] and the probe they were measured on."""

    prev_token: torch.Tensor
    induction: torch.Tensor
    probe: str  # what the probe was, in words


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


@torch.inference_mode()
def head_scores(model: Transformer, tokens: torch.Tensor, half: int, *, probe: str = "") -> HeadScores:
    """Scores of every head on probe `tokens` [n, pos] made of a run of `half` tokens and its
    repeat, the run starting at position pos - 2 * half (1 with a BOS token, else 0)."""
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


def head_labels(
    scores: HeadScores,
    *,
    model_name: str,
    fingerprint: str,
    command: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A label file document naming every head whose score passes the threshold."""
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    when = stamp.isoformat().replace("+00:00", "Z")
    labels = []
    n_layers, n_heads = scores.prev_token.shape
    for layer in range(n_layers):
        for head in range(n_heads):
            component = f"L{layer}.H{head}"
            p = round(float(scores.prev_token[layer, head]), 4)
            i = round(float(scores.induction[layer, head]), 4)
            if p >= PREV_TOKEN_THRESHOLD and p >= i:
                name, tags = "previous-token head", ["previous-token", "attention"]
                note = (
                    f"Attends from each position to the one just before it ({p:.0%} of its attention on "
                    "average), writing the previous token into the residual stream, where a later "
                    "induction head's keys can read it."
                )
                metric, value = "mean attention to the previous token", p
            elif i >= INDUCTION_THRESHOLD:
                name, tags = "induction head", ["induction", "attention"]
                note = (
                    "In a repeated sequence, attends from each token to the token that followed its "
                    f"earlier occurrence ({i:.0%} of its attention on average) and copies it: "
                    "[A][B] ... [A] -> [B]."
                )
                metric, value = "mean attention to the token after the earlier occurrence of the current token", i
            else:
                continue
            labels.append(
                {
                    "component": component,
                    "name": name,
                    "note": note,
                    "tags": tags,
                    "evidence": [
                        {
                            "kind": "attention",
                            "metric": metric,
                            "value": value,
                            "probe": scores.probe,
                            "command": command,
                        }
                    ],
                    "created": when,
                    "updated": when,
                }
            )
    return {"format": LABEL_FORMAT, "model": {"name": model_name, "fingerprint": fingerprint}, "labels": labels}


def scores_document(scores: HeadScores) -> dict[str, Any]:
    """Scores as JSON: {"probe", "heads": [{"component", "prev_token", "induction"}]}."""
    heads = []
    n_layers, n_heads = scores.prev_token.shape
    for layer in range(n_layers):
        for head in range(n_heads):
            heads.append(
                {
                    "component": f"L{layer}.H{head}",
                    "prev_token": round(float(scores.prev_token[layer, head]), 4),
                    "induction": round(float(scores.induction[layer, head]), 4),
                }
            )
    return {"probe": scores.probe, "heads": heads}


def measure(model_dir: str) -> HeadScores:
    """Load a model directory (float32, CPU) and score its heads on the standard probe."""
    from tui_interp.model.loader import load_model

    loaded = load_model(model_dir, device="cpu", dtype="float32")
    model = loaded.model
    bos = loaded.config.bos_token_id
    candidates = None
    if loaded.tokenizer is not None:
        # only real tokens: no [UNK], no [BOS]
        specials = {loaded.tokenizer.token_to_id(t) for t in ("[UNK]", "[BOS]", "[PAD]")}
        ids = [i for i in range(model.cfg.vocab_size) if i not in specials and i != bos]
        candidates = torch.tensor(ids)
    tokens, half, words = probe_for(model, bos=bos, candidates=candidates)
    return head_scores(model, tokens, half, probe=words)


def main(argv: list[str] | None = None) -> int:
    """`python -m tui_interp.tasks.heads MODEL_DIR`: the head scores as one JSON document."""
    parser = argparse.ArgumentParser(prog="python -m tui_interp.tasks.heads", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model directory")
    args = parser.parse_args(argv)
    try:
        scores = measure(args.model)
    except TuiInterpError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    sys.stdout.write(json.dumps(scores_document(scores), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
