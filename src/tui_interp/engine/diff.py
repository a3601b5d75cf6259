"""Model diff: which components behave differently between two checkpoints of one architecture.

The auditing question: a model's behaviour was altered (a fine-tune, an edit, a different
training run); which components changed, and where does the behaviour differ?

For every component (embed, pos_embed when learned, each head, each MLP, unembed; every MLP
neuron when asked) the diff measures:

    weight_change      ||W_B - W_A|| / ||W_A|| over the component's parameters (Frobenius; see
                       `parameter_shares` for what belongs to whom), streamed tensor by tensor
                       from the two checkpoints (never both models' weights at once)
    activation_change  the component's own change of function: B's component run on A's
                       residual stream (the very input A's component read) against A's output,
                       sqrt(sum ||out_B - out_A||^2) / sqrt(sum ||out_A||^2) over inputs and
                       positions. A component whose parameters are identical in A and B has 0
                       here by definition, even when upstream changes reach it.
    output_change      the same distance in context: B's output in B's own run against A's in
                       A's (inherits every upstream change; not part of the score)
    effect_a, effect_b direct logit attribution to the answer token (mean over inputs and answer
                       positions; the final norm's scale frozen at each model's own run, as in
                       engine/lens.py), in A and in B
    ablation_a, _b     what mean-ablating the component costs, in A and in B: the drop in
                       agreement with the theory, or the rise in next-token loss (nats) when
                       there is no `expect`; measured on the components that changed most

Outputs are what each component adds to the residual stream: hook_embed, hook_pos_embed, a
head's z·W_O (its slice of the output matrix, read through the checkpoint), hook_mlp_out, a
neuron's post-activation times its column of W_out, and for unembed the logits read from A's
final residual stream. (Families with a norm after attention, Gemma 2/3 and OLMo 2, normalise
the sum of the heads' writes: there z·W_O is the head's write before that norm.) Parameters a
layer's heads share (ln1, q/k norms, the output bias) count for every head of the layer; the
MLP's norms and output bias count for the MLP, not its neurons; ln_final counts for unembed.

Score (highest first; ties in forward order):

    own    = (weight_change + activation_change) / 2
    effect = mean of the available terms
             |effect_b - effect_a| / D   D: the mean over answer positions of sum_c |effect_A,c|
                                         (A's total direct attribution, heads + MLPs + embeddings)
             |ablation_b - ablation_a| / M   M: 1 for agreement, ln(vocab_size) for loss
    score  = own * (1 + effect)

A component scores 0 exactly when its parameters are identical in A and B (own = 0), so a model
diffed with itself is all zeros, and a component downstream of an edit is not blamed for what
it received (its output_change shows that). Among changed components, those whose contribution
to the behaviour changed most rank higher.

Inputs: a theory's domain (enumerated, or a seeded sample of `limit`), a list of prompts (the
next-token loss over each prompt is the behaviour metric), or seeded random token sequences
(the metric is the loss of A's answer after each). Disagreements are the inputs whose greedy
answers differ (as many tokens as the expected answer; else `answer_tokens`, 1 by default).

Memory: weights are compared in chunks of CHUNK_ELEMENTS from the memory-mapped checkpoints;
the behaviour passes need both models loaded (on the CPU in the checkpoint's dtype that is the
mapped files themselves; `--stream` keeps one block of each resident) plus one batch of
activations, sized to BATCH_BYTES.

`iter_diff` yields DiffProgress events and finally the DiffResult, checking `cancel()` between
tensors and batches; it is a pure function of (A, B, inputs, options).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tui_interp.components import Component
from tui_interp.engine.answers import Cancelled, generate
from tui_interp.engine.compare import MAX_WORK, PREPARE_CHUNK, check_work, tokenize_items
from tui_interp.engine.interventions import Intervention, random_reference
from tui_interp.errors import ConfigError, InputError, TokenizerError, TuiInterpError
from tui_interp.model.checkpoint import Checkpoint
from tui_interp.model.config import ModelConfig
from tui_interp.model.loader import LoadedModel, load_model
from tui_interp.theory import Theory, format_input, to_json
from tui_interp.theory.limits import DEFAULT_ENUMERATION_LIMIT

__all__ = [
    "Cancelled",
    "ComponentDiff",
    "DiffProgress",
    "DiffResult",
    "Disagreement",
    "ParamShare",
    "check_compatible",
    "diff",
    "iter_diff",
    "parameter_shares",
    "weight_changes",
]

CHUNK_ELEMENTS = 1 << 22  # elements of one checkpoint tensor compared at a time (16 MiB in float32)
BATCH_BYTES = 1 << 29  # activations of one batch of the behaviour passes (both models; estimated from the shapes)
WEIGHT_CACHE_BYTES = 256 << 20  # W_O / W_out slices kept on the device between batches
RANDOM_INPUTS = 256  # seeded random token sequences when neither a theory nor prompts are given
RANDOM_LENGTH = 16  # their length (at most the context less one)
ABLATION_INPUTS = 512  # inputs the ablation effects are measured on (a seeded sample beyond)
ABLATE_TOP = 64  # components ablated: those that changed most (own change > 0)

SCORE_FORMULA = (
    "score = (weight_change + activation_change) / 2 * (1 + effect), effect = mean of |effect_b - effect_a| / D "
    "(D = A's total absolute direct attribution per answer position) and |ablation_b - ablation_a| / M "
    "(M = 1 for agreement, ln(vocab) for loss) where measured; 0 when the component's parameters are identical"
)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class DiffProgress:
    phase: str  # "weights", "inputs", "answers", "activations", "ablations", "done"
    done: int
    total: int
    seconds: float = 0.0

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class ComponentDiff:
    """How one component differs between A and B (see the module docstring for each measure)."""

    component: Component
    score: float
    weight_change: float
    activation_change: float
    output_change: float
    effect_a: float | None  # mean direct logit attribution to the answer in A (None: unembed)
    effect_b: float | None
    ablation_a: float | None  # metric cost of mean-ablating it in A (None: not measured)
    ablation_b: float | None
    identical: bool  # its parameters are bit-identical in A and B

    @property
    def changed(self) -> bool:
        return not self.identical

    def to_json(self) -> dict[str, Any]:
        return {
            "component": str(self.component),
            "score": self.score,
            "weight_change": self.weight_change,
            "activation_change": self.activation_change,
            "output_change": self.output_change,
            "effect_a": self.effect_a,
            "effect_b": self.effect_b,
            "ablation_a": self.ablation_a,
            "ablation_b": self.ablation_b,
            "identical": self.identical,
        }


@dataclass(frozen=True)
class Disagreement:
    """One input on which A and B answer differently."""

    input: Any  # the theory's assignment, the prompt text, or the token ids
    prompt: str
    answer_a: str
    p_a: float  # A's probability of its own (greedy) answer
    answer_b: str
    p_b: float
    expected: str | None = None  # the theory's answer, when it has one
    a_agrees: bool | None = None  # A's answer is the expected one
    b_agrees: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "input": to_json(self.input) if isinstance(self.input, dict) else self.input,
            "prompt": self.prompt,
            "a": {"answer": self.answer_a, "p": self.p_a, "agrees": self.a_agrees},
            "b": {"answer": self.answer_b, "p": self.p_b, "agrees": self.b_agrees},
            "expected": self.expected,
        }


@dataclass(frozen=True)
class DiffResult:
    model_a: dict[str, str]  # {"name", "fingerprint"}
    model_b: dict[str, str]
    kind: str  # "theory", "question", "prompts" or "random"
    n_inputs: int
    inputs: str  # what the inputs are, in words
    metric: str  # "agreement" (theory with expect) or "loss" (next-token loss, nats)
    components: tuple[ComponentDiff, ...]  # highest score first
    disagreements: tuple[Disagreement, ...]  # both models most confident first
    agreement_a: float | None  # agreement with the theory's expect (None without one)
    agreement_b: float | None
    loss_a: float  # mean loss of the answer tokens (expected, A's answer, or the prompt's next tokens)
    loss_b: float
    ablation_inputs: str  # what the ablation effects were measured on, in words
    unmapped: tuple[str, ...] = ()  # changed parameters no component owns (none for known families)
    seconds: float = 0.0

    @property
    def n_disagreements(self) -> int:
        return len(self.disagreements)

    @property
    def changed(self) -> list[ComponentDiff]:
        return [c for c in self.components if c.changed]

    def component(self, cid: str | Component) -> ComponentDiff:
        key = str(cid)
        for c in self.components:
            if str(c.component) == key:
                return c
        raise InputError(f"{key}: not in this diff")

    def to_json(self, show: int | None = None) -> dict[str, Any]:
        shown = self.disagreements if show is None else self.disagreements[:show]
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "inputs": self.n_inputs,
            "input_kind": self.kind,
            "selection": self.inputs,
            "metric": self.metric,
            "agreement": None if self.agreement_a is None else {"a": self.agreement_a, "b": self.agreement_b},
            "loss": {"a": self.loss_a, "b": self.loss_b},
            "score": SCORE_FORMULA,
            "effect": "mean direct logit attribution to the answer token (logits, final norm's scale frozen), in A and in B",
            "ablation": "cost of mean-ablating the component: drop in agreement, or rise in loss (nats per answer token)",
            "ablation_inputs": self.ablation_inputs,
            "components": [c.to_json() for c in self.components],
            "n_changed": len(self.changed),
            "n_disagreements": self.n_disagreements,
            "disagreements": [d.to_json() for d in shown],
            "disagreement_order": "min(p_a, p_b) descending (both models confident first)",
            "unmapped_parameters": list(self.unmapped),
            "seconds": self.seconds,
        }


# ---------------------------------------------------------------------------------------------
# Same architecture, same shapes, same tokens

_NOT_ARCHITECTURE = ("dtype", "extra", "bos_token_id", "eos_token_id")  # config fields two comparable models may differ in


def check_compatible(a: Checkpoint, b: Checkpoint) -> None:
    """Raise ConfigError naming what differs when A and B are not the same architecture with the
    same shapes (`d_mlp 512 in A, 256 in B`), TokenizerError when their tokenizers differ. Reads
    headers and tokenizer files only."""
    diffs = []
    for f in dataclasses.fields(a.config):
        if f.name in _NOT_ARCHITECTURE:
            continue
        va, vb = getattr(a.config, f.name), getattr(b.config, f.name)
        if va != vb:
            diffs.append(f"{f.name} {_show(va)} in A, {_show(vb)} in B")
    if not diffs:
        for name in sorted(set(a.plan) | set(b.plan)):
            sa, sb = a.plan.get(name), b.plan.get(name)
            if sa is None or sb is None:
                diffs.append(f"parameter {name} only in {'A' if sb is None else 'B'}")
            elif (sa.shapes, sa.transform, sa.rows) != (sb.shapes, sb.transform, sb.rows):
                diffs.append(f"parameter {name} stored as {_stored(sa)} in A, {_stored(sb)} in B")
    if diffs:
        more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
        raise ConfigError(f"{a.name} (A) and {b.name} (B) are not the same architecture: {'; '.join(diffs[:3])}{more}")
    _check_tokenizers(a, b)


def _show(v: Any) -> str:
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _stored(src: Any) -> str:
    shapes = " + ".join("x".join(map(str, s)) for s in src.shapes)
    return shapes + (f" ({src.transform})" if src.transform else "")


_TOKENIZER_PARTS = ("normalizer", "pre_tokenizer", "model", "post_processor", "decoder", "added_tokens")


def _check_tokenizers(a: Checkpoint, b: Checkpoint) -> None:
    pa, pb = a.tokenizer_path, b.tokenizer_path
    if pa is None and pb is None:
        return
    if pa is None or pb is None:
        has, lacks = ("A", "B") if pb is None else ("B", "A")
        raise TokenizerError(f"the tokenizers differ: {has} has a tokenizer.json, {lacks} has none (both must read the same tokens)")
    ta, tb = _read_bytes(pa), _read_bytes(pb)
    if ta == tb:
        return
    va, vb = _vocabulary(pa), _vocabulary(pb)
    if va != vb:
        raise TokenizerError(f"the tokenizers differ: {_vocab_difference(va, vb)} ({pa} vs {pb})")
    da, db = json.loads(ta), json.loads(tb)
    for part in _TOKENIZER_PARTS:
        if da.get(part) != db.get(part):
            raise TokenizerError(f"the tokenizers differ: same vocabulary, different {part} (prompts would be read differently; {pa} vs {pb})")


def _read_bytes(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as e:
        raise TokenizerError(f"{p}: cannot read: {e.strerror or e}") from e


def _vocabulary(p: Path) -> dict[str, int]:
    """The token -> id map of a tokenizer.json, added tokens included (validated by our loader first)."""
    from tokenizers import Tokenizer as HFTokenizer

    from tui_interp.model.tokenizer import Tokenizer

    Tokenizer.from_file(p)  # one-line TokenizerError on anything that is not a tokenizer
    return HFTokenizer.from_file(str(p)).get_vocab(with_added_tokens=True)


def _vocab_difference(va: dict[str, int], vb: dict[str, int]) -> str:
    if len(va) != len(vb):
        return f"a vocabulary of {len(va):,} tokens in A, {len(vb):,} in B"
    for token in sorted(va, key=va.__getitem__):
        if token not in vb:
            return f"token {_show(token)} (id {va[token]} in A) is not in B's vocabulary"
        if va[token] != vb[token]:
            return f"token {_show(token)} is id {va[token]} in A, {vb[token]} in B"
    return "the vocabularies differ"


# ---------------------------------------------------------------------------------------------
# Parameters -> components: the one place that knows what belongs to whom


@dataclass(frozen=True)
class ParamShare:
    """A part of one canonical parameter that belongs to a component.

    axis None: the whole tensor; else the index range [start, stop) along `axis` (0: rows,
    1: columns). neuron_layer: every index along `axis` is one MLP neuron of that layer
    (component is then None)."""

    component: Component | None
    axis: int | None = None
    start: int = 0
    stop: int = 0
    neuron_layer: int | None = None


def parameter_shares(canonical: str, cfg: ModelConfig, attention_layout: str) -> list[ParamShare] | None:
    """What of canonical parameter `canonical` (architectures.weight_plan's names, nn.Linear
    layout [out, in]) belongs to which component; None for a parameter no component owns.

        embed.W_E                         embed (and unembed too when the embeddings are tied)
        pos_embed.W_pos                   pos_embed
        blocks.l.attn.W_q / b_q           head i: rows i*d_head ..
        blocks.l.attn.W_k, W_v / b_k, b_v head i: the rows of its key/value head (shared in GQA)
        blocks.l.attn.W_qkv / b_qkv       head i: its q, k and v rows (fused: q | k | v blocks;
                                          neox: [head, q|k|v, d_head] interleaved)
        blocks.l.attn.W_O                 head i: columns i*d_head ..
        blocks.l.ln1.*, ln1_post.*, attn.q_norm.w, attn.k_norm.w, attn.b_O
                                          every head of layer l (each computes through them)
        blocks.l.mlp.*, ln2.*, ln2_post.* the MLP; with neurons, neuron n also owns row n of
                                          W_in / W_gate, entry n of b_in / b_gate, column n of W_out
        ln_final.*, unembed.W_U           unembed
    """
    h, kv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    if canonical == "embed.W_E":
        return [ParamShare(Component("embed"))] + ([ParamShare(Component("unembed"))] if cfg.tie_word_embeddings else [])
    if canonical == "pos_embed.W_pos":
        return [ParamShare(Component("pos_embed"))]
    if canonical.startswith("ln_final.") or canonical == "unembed.W_U":
        return [ParamShare(Component("unembed"))]
    if not canonical.startswith("blocks."):
        return None
    _, layer_text, rest = canonical.split(".", 2)
    l = int(layer_text)
    heads = [Component("head", l, i) for i in range(h)]
    group = h // kv

    def rows(offset: int, per_head: Callable[[int], int]) -> list[ParamShare]:
        return [ParamShare(c, 0, offset + per_head(i) * dh, offset + (per_head(i) + 1) * dh) for i, c in enumerate(heads)]

    if rest.startswith(("ln1.", "ln1_post.")) or rest in ("attn.q_norm.w", "attn.k_norm.w", "attn.b_O"):
        return [ParamShare(c) for c in heads]
    if rest in ("attn.W_q", "attn.b_q"):
        return rows(0, lambda i: i)
    if rest in ("attn.W_k", "attn.b_k", "attn.W_v", "attn.b_v"):
        return rows(0, lambda i: i // group)
    if rest in ("attn.W_qkv", "attn.b_qkv"):
        if attention_layout == "neox":  # [head, (q|k|v), d_head]
            return [ParamShare(c, 0, i * 3 * dh, (i + 1) * 3 * dh) for i, c in enumerate(heads)]
        return rows(0, lambda i: i) + rows(h * dh, lambda i: i // group) + rows((h + kv) * dh, lambda i: i // group)
    if rest == "attn.W_O":
        return [ParamShare(c, 1, i * dh, (i + 1) * dh) for i, c in enumerate(heads)]
    mlp = ParamShare(Component("mlp", l))
    if rest in ("mlp.W_in", "mlp.W_gate", "mlp.b_in", "mlp.b_gate"):
        return [mlp, ParamShare(None, 0, neuron_layer=l)]
    if rest == "mlp.W_out":
        return [mlp, ParamShare(None, 1, neuron_layer=l)]
    if rest.startswith(("mlp.", "ln2.", "ln2_post.")):
        return [mlp]
    return None


@dataclass
class WeightChanges:
    """Sums of squares per component: [||W_B - W_A||^2, ||W_A||^2, ||W_B||^2] (float64), and per neuron."""

    sums: dict[Component, torch.Tensor]
    neurons: torch.Tensor | None  # [n_layers, d_mlp, 3]
    w_out: torch.Tensor | None  # [n_layers, d_mlp, 3]: the same sums over each neuron's column of W_out
    mlp_input_identical: list[bool]  # per layer: the norm the MLP reads through (ln2) is identical
    unmapped: list[str]  # changed parameters no component owns

    def relative(self, c: Component) -> float:
        return _relative(self.sums[c])

    def identical(self, c: Component) -> bool:
        return float(self.sums[c][0]) == 0.0

    def neuron_relative(self) -> torch.Tensor:
        """[n_layers, d_mlp] relative change of each neuron's parameters (empty without neurons)."""
        return _relative_t(self.neurons) if self.neurons is not None else torch.zeros(0, 0, dtype=torch.float64)

    def w_out_products(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """||W_out_A[:, n]||^2, ||W_out_B[:, n]||^2 and their dot product, per neuron: [n_layers, d_mlp] each."""
        if self.w_out is None:
            raise TuiInterpError("internal: W_out columns were not compared (neurons off)")
        diff, na, nb = self.w_out.unbind(-1)
        return na, nb, (na + nb - diff) / 2


def _relative(s: torch.Tensor) -> float:
    """sqrt(diff) / sqrt(A), or / sqrt(B) where A is all zeros, or 0 where both are."""
    diff, base, other = (float(x) for x in s)
    if diff == 0.0:
        return 0.0
    denom = base if base > 0 else other
    return math.sqrt(diff / denom) if denom > 0 else 0.0


def _relative_t(s: torch.Tensor) -> torch.Tensor:
    diff, base, other = s.unbind(-1)
    denom = torch.where(base > 0, base, other)
    out = torch.where(denom > 0, diff / denom.clamp_min(1e-300), torch.zeros_like(diff)).sqrt()
    return torch.where(diff == 0, torch.zeros_like(out), out)


def _components(cfg: ModelConfig) -> list[Component]:
    """The components a diff reports (neurons aside), in forward order."""
    out = [Component("embed")]
    if cfg.positional == "learned":
        out.append(Component("pos_embed"))
    for l in range(cfg.n_layers):
        out += [Component("head", l, i) for i in range(cfg.n_heads)]
        if cfg.d_mlp > 0:
            out.append(Component("mlp", l))
    out.append(Component("unembed"))
    return out


def weight_changes(
    a: Checkpoint, b: Checkpoint, *, neurons: bool = False, cancel: Callable[[], bool] = lambda: False
) -> Iterator[DiffProgress | WeightChanges]:
    """Compare the two checkpoints tensor by tensor (CHUNK_ELEMENTS at a time, from the mapped
    files): progress per tensor, then the WeightChanges."""
    t0 = time.perf_counter()
    cfg = a.config
    layout = a.arch.attention_layout
    sums = {c: torch.zeros(3, dtype=torch.float64) for c in _components(cfg)}
    per_neuron = torch.zeros(cfg.n_layers, cfg.d_mlp, 3, dtype=torch.float64) if neurons and cfg.d_mlp else None
    w_out = torch.zeros(cfg.n_layers, cfg.d_mlp, 3, dtype=torch.float64) if per_neuron is not None else None
    mlp_input_identical = [True] * cfg.n_layers
    unmapped = []
    names = list(a.plan)
    for k, name in enumerate(names):
        if cancel():
            raise Cancelled("diff cancelled")
        shares = parameter_shares(name, cfg, layout)
        whole, rows, cols = _square_sums(a.load_param(name), b.load_param(name))
        if shares is None:
            if float(whole[0]) != 0.0:
                unmapped.append(name)
        else:
            for s in shares:
                if s.neuron_layer is not None:
                    if per_neuron is not None:
                        per_neuron[s.neuron_layer] += rows if s.axis == 0 else cols
                elif s.axis is None:
                    sums[s.component] += whole  # type: ignore[index]
                else:
                    part = rows if s.axis == 0 else cols
                    sums[s.component] += part[s.start : s.stop].sum(0)  # type: ignore[index]
        parts = name.split(".")
        if w_out is not None and parts[2:] == ["mlp", "W_out"]:
            w_out[int(parts[1])] = cols
        if parts[2:3] == ["ln2"] and float(whole[0]) != 0.0:
            mlp_input_identical[int(parts[1])] = False
        yield DiffProgress("weights", k + 1, len(names), time.perf_counter() - t0)
    yield WeightChanges(sums, per_neuron, w_out, mlp_input_identical, unmapped)


def _square_sums(ta: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[diff^2, A^2, B^2] summed over the whole tensor, per row [rows, 3] and per column [cols, 3]
    (float64), reading `CHUNK_ELEMENTS` at a time."""
    if ta.dim() == 1:
        ta, tb = ta[:, None], tb[:, None]
    elif ta.dim() != 2:
        ta, tb = ta.reshape(ta.shape[0], -1), tb.reshape(tb.shape[0], -1)
    n_rows, n_cols = ta.shape
    rows = torch.zeros(n_rows, 3, dtype=torch.float64)
    cols = torch.zeros(n_cols, 3, dtype=torch.float64)
    step = max(1, CHUNK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        xa = ta[start : start + step].float()
        xb = tb[start : start + step].float()
        for i, sq in enumerate(((xb - xa).square(), xa.square(), xb.square())):
            rows[start : start + step, i] = sq.sum(1, dtype=torch.float64)
            cols[:, i] += sq.sum(0, dtype=torch.float64)
    return rows.sum(0), rows, cols


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass
class _Inputs:
    kind: str
    prompts: list[list[int]]  # what each answer follows
    shown: list[Any]  # what to show as the input
    texts: list[str]  # the prompt text
    expected: list[list[int]] | None  # the theory's answer tokens
    expected_text: list[str | None]
    description: str
    answer_tokens: list[int]  # how many tokens each answer has


def _theory_inputs(lm: LoadedModel, theory: Theory, limit: int, seed: int, max_work: int, answer_tokens: int,
                   cancel: Callable[[], bool], t0: float) -> Iterator[DiffProgress | _Inputs]:
    selection = theory.domain.select(limit=limit, seed=seed)
    chosen = list(selection.inputs)
    if not chosen:
        raise InputError(f"theory {theory.name!r}: the domain is empty (check the `where` filter)")
    check_work(theory, len(chosen), max_work)
    tok = lm.need_tokenizer()
    prompts: list[list[int]] = []
    expected: list[list[int]] = []
    texts: list[str] = []
    expected_text: list[str | None] = []
    for start in range(0, len(chosen), PREPARE_CHUNK):
        if cancel():
            raise Cancelled("diff cancelled")
        evs = [theory.evaluate(x) for x in chosen[start : start + PREPARE_CHUNK]]
        if theory.is_question:
            ids = tok.encode_batch([e.prompt for e in evs])
            if any(not p for p in ids):
                raise InputError("a prompt encodes to no tokens")
            prompts += ids
        else:
            for item in tokenize_items(lm, evs, None):
                prompts.append(item.prompt_ids)
                expected.append(item.cont_ids)
        texts += [e.prompt for e in evs]
        expected_text += [e.expected_text for e in evs]
        yield DiffProgress("inputs", len(prompts), len(chosen), time.perf_counter() - t0)
    kind = "question" if theory.is_question else "theory"
    counts = [answer_tokens] * len(prompts) if theory.is_question else [len(e) for e in expected]
    yield _Inputs(kind, prompts, [dict(x) for x in chosen], texts, None if theory.is_question else expected, expected_text,
                  f"{selection.describe()} of theory {theory.name!r}", counts)


def _prompt_inputs(lm: LoadedModel, prompts: Sequence[str]) -> _Inputs:
    tok = lm.need_tokenizer()
    ids = tok.encode_batch(list(prompts))
    for i, row in enumerate(ids):
        if not row:
            raise InputError(f"prompt {i + 1} encodes to no tokens")
    return _Inputs("prompts", ids, list(prompts), list(prompts), None, [None] * len(ids), f"{len(ids):,} prompts", [1] * len(ids))


def _random_inputs(lm: LoadedModel, n: int, length: int | None, seed: int) -> _Inputs:
    cfg = lm.config
    length = min(RANDOM_LENGTH, cfg.n_ctx - 1) if length is None else length
    if not 1 <= length <= cfg.n_ctx - 1:
        raise InputError(f"random inputs need a length of 1..{cfg.n_ctx - 1} tokens (the context less one), got {length}")
    rows = random_reference(cfg, length, n=n, seed=seed).tolist()
    texts = [_decode(lm, r) for r in rows]
    return _Inputs("random", rows, [list(r) for r in rows], texts, None, [None] * n,
                   f"{n:,} random token sequences of {length} tokens (seed {seed})", [1] * n)


def _decode(lm: LoadedModel, ids: Sequence[int]) -> str:
    if lm.tokenizer is None:
        return ",".join(map(str, ids))
    return lm.tokenizer.decode(list(ids))


# ---------------------------------------------------------------------------------------------
# Behaviour passes


@dataclass(frozen=True)
class _Item:
    """What one input runs: tokens `run`; positions first .. first + len(targets) - 1 predict `targets`."""

    run: tuple[int, ...]
    first: int
    targets: tuple[int, ...]


def _items(inp: _Inputs, answers_a: Sequence[list[int]]) -> list[_Item]:
    out = []
    for i, prompt in enumerate(inp.prompts):
        if inp.kind == "prompts":
            out.append(_Item(tuple(prompt), 0, tuple(prompt[1:])))
            continue
        answer = inp.expected[i] if inp.expected is not None else answers_a[i]
        if not answer:  # the prompt fills the context: nothing to score after it
            out.append(_Item(tuple(prompt), len(prompt) - 1, ()))
            continue
        out.append(_Item(tuple(prompt) + tuple(answer[:-1]), len(prompt) - 1, tuple(answer)))
    return out


def _batches(items: Sequence[_Item], indices: Sequence[int], tokens_per_batch: int) -> Iterator[list[int]]:
    """Indices grouped by (length, first, number of targets), in chunks of at most tokens_per_batch tokens."""
    buckets: dict[tuple[int, int, int], list[int]] = {}
    for i in indices:
        it = items[i]
        buckets.setdefault((len(it.run), it.first, len(it.targets)), []).append(i)
    for (length, _, _), idxs in buckets.items():
        per = max(1, tokens_per_batch // max(1, length))
        for start in range(0, len(idxs), per):
            yield idxs[start : start + per]


class _Weights:
    """W_O and W_out of a checkpoint on a device in float32, read through the checkpoint (so a
    streamed model's blocks need not be resident), kept while they fit WEIGHT_CACHE_BYTES."""

    def __init__(self, ckpt: Checkpoint, device: torch.device) -> None:
        self.ckpt, self.device = ckpt, device
        self.kept: dict[str, torch.Tensor] = {}
        self.bytes = 0

    def get(self, name: str) -> torch.Tensor:
        if name in self.kept:
            return self.kept[name]
        value = self.ckpt.load_param(name).to(self.device).float()
        size = value.numel() * 4
        if self.bytes + size <= WEIGHT_CACHE_BYTES:
            self.kept[name] = value
            self.bytes += size
        return value


def _hooks_to_cache(cfg: ModelConfig, *, residuals: bool, neurons: bool) -> list[str]:
    names = ["hook_embed"] + (["hook_pos_embed"] if cfg.positional == "learned" else [])
    for l in range(cfg.n_layers):
        if residuals:
            names += [f"blocks.{l}.hook_resid_pre", f"blocks.{l}.hook_resid_mid"]
        names.append(f"blocks.{l}.attn.hook_z")
        if cfg.d_mlp:
            names.append(f"blocks.{l}.hook_mlp_out")
            if neurons:
                names.append(f"blocks.{l}.mlp.hook_post")
    return names


@torch.inference_mode()
def _forward(lm: LoadedModel, tokens: torch.Tensor, names: Sequence[str], first: int, k: int,
             hooks: Sequence[tuple[str, Any]] = ()) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Run to the final residual stream keeping `names`; returns the cache, the final residual at
    the k scored positions [b, k, d] and their logits [b, k, vocab] (float32)."""
    model = lm.model
    cache: dict[str, torch.Tensor] = {}

    def save(x: torch.Tensor, *, hook: Any) -> None:
        cache[hook.name] = x.detach()

    with model.hooks(list(hooks)), model.hooks([(n, save) for n in names]):
        resid = model(tokens, stop_at_layer=model.cfg.n_layers)
    final = resid[:, first : first + k]
    logits = model.unembed(final).float() if k else final.new_zeros(final.shape[0], 0, model.cfg.vocab_size).float()
    return cache, final, logits


def _metrics(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per input: agrees (every target is the argmax) [b] and summed loss of the targets [b]."""
    if logits.shape[1] == 0:
        return torch.zeros(logits.shape[0], dtype=torch.bool), torch.zeros(logits.shape[0], dtype=torch.float64)
    logp = torch.log_softmax(logits, dim=-1)
    loss = -logp.gather(-1, targets[..., None])[..., 0]  # [b, k]
    agree = (logits.argmax(-1) == targets).all(-1)
    return agree.cpu(), loss.sum(-1).double().cpu()


class _Accumulator:
    """Running sums of the behaviour pass (float64 on the CPU)."""

    def __init__(self, cfg: ModelConfig, neurons: bool) -> None:
        L, h, m = cfg.n_layers, cfg.n_heads, cfg.d_mlp
        z = lambda *s: torch.zeros(*s, dtype=torch.float64)  # noqa: E731
        self.local = {"embed": z(3), "pos_embed": z(3), "head": z(L, h, 3), "mlp": z(L, 3), "unembed": z(3)}
        self.context = {"embed": z(3), "pos_embed": z(3), "head": z(L, h, 3), "mlp": z(L, 3), "unembed": z(3)}
        self.dla = {"embed": z(2), "pos_embed": z(2), "head": z(L, h, 2), "mlp": z(L, 2)}
        self.neurons = neurons and m > 0
        if self.neurons:
            # sums over positions of post_A^2, post_B^2, post_A * post_B (local and in context)
            self.n_local = z(L, m, 3)
            self.n_context = z(L, m, 3)
            self.dla["neuron"] = z(L, m, 2)
        self.dla_abs = 0.0  # sum over scored positions of sum_c |dla_A,c|
        self.positions = 0  # scored positions
        self.mean_sums: list[dict[str, torch.Tensor]] = [{}, {}]  # per model: hook -> summed activation
        self.tokens = 0


def _row(table: dict[str, torch.Tensor], c: Component) -> torch.Tensor | None:
    """A component's entry of one of the accumulator's tables (None where it has none)."""
    if c.kind in ("embed", "pos_embed", "unembed"):
        return table.get(c.kind)
    if c.kind == "mlp":
        return table["mlp"][c.layer]
    return table["head"][c.layer][c.index]


def _sq3(xa: torch.Tensor, xb: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """[sum (xb - xa)^2, sum xa^2, sum xb^2] over `dims` (one batch, summed in float32), stacked last, as float64."""
    xa, xb = xa.float(), xb.float()
    return torch.stack([(xb - xa).square().sum(dims), xa.square().sum(dims), xb.square().sum(dims)], -1).double().cpu()


def _directions(lm: LoadedModel, final: torch.Tensor, targets: torch.Tensor, device: torch.device) -> torch.Tensor:
    """What one unit of each residual-stream direction adds to the target's logit at each scored
    position, through the final norm with its scale frozen at this run: [b, k, d_model] float32."""
    model = lm.model
    ln = model.ln_final
    scale = ln.scale(final.float())  # [b, k, 1]
    u = model.unembed_weight[targets.to(model.unembed_weight.device)].float()  # [b, k, d]
    direction = (u * ln.weight.to(u.device)) / scale.to(u.device)
    if ln.kind == "layernorm":  # (x - mean x) . v == x . (v - mean v)
        direction = direction - direction.mean(-1, keepdim=True)
    return direction.to(device)


class _Pass:
    """One batch of the behaviour pass: A, B in context, and B's components on A's inputs."""

    def __init__(self, a: LoadedModel, b: LoadedModel, wa: _Weights, wb: _Weights, acc: _Accumulator, identical: dict[Component, bool]) -> None:
        self.a, self.b, self.wa, self.wb, self.acc = a, b, wa, wb, acc
        self.cfg = a.config
        self.dev = a.device
        self.identical = identical

    @torch.inference_mode()
    def run(self, items: Sequence[_Item], idxs: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg, acc, dev = self.cfg, self.acc, self.dev
        first, k = items[idxs[0]].first, len(items[idxs[0]].targets)
        tokens = torch.tensor([items[i].run for i in idxs], device=dev)  # [b, pos]
        targets = torch.tensor([items[i].targets for i in idxs], device=dev, dtype=torch.long).view(len(idxs), k)  # [b, k]
        names_a = _hooks_to_cache(cfg, residuals=True, neurons=acc.neurons)
        names_b = _hooks_to_cache(cfg, residuals=False, neurons=acc.neurons)
        cache_a, final_a, logits_a = _forward(self.a, tokens, names_a, first, k)
        cache_b, final_b, logits_b = _forward(self.b, tokens.to(self.b.device), names_b, first, k)
        cache_b = {n: x.to(dev) for n, x in cache_b.items()}
        dir_a = _directions(self.a, final_a, targets, dev) if k else None
        dir_b = _directions(self.b, final_b.to(dev), targets, dev) if k else None
        acc.positions += len(idxs) * k
        acc.tokens += tokens.numel()
        self._means(0, cache_a)
        self._means(1, cache_b)
        abs_total = torch.zeros(len(idxs), k, device=dev)
        sl = slice(first, first + k)

        for kind in ("embed", "pos_embed"):
            hook = f"hook_{kind}"
            if hook not in cache_a:
                continue
            xa, xb = cache_a[hook].to(dev), cache_b[hook]
            acc.context[kind] += _sq3(xa, xb, (0, 1, 2))
            acc.local[kind] += acc.context[kind].new_zeros(3) if self.identical[Component(kind)] else _sq3(xa, xb, (0, 1, 2))
            if k:
                ea, eb = (xa[:, sl].float() * dir_a).sum(-1), (xb[:, sl].float() * dir_b).sum(-1)
                acc.dla[kind] += torch.stack([ea.sum(dtype=torch.float64), eb.sum(dtype=torch.float64)]).cpu()
                abs_total += ea.abs()

        h, dh, d = cfg.n_heads, cfg.d_head, cfg.d_model
        for l in range(cfg.n_layers):
            local = self._local(tokens, cache_a, l)
            W_O_a = self.wa.get(f"blocks.{l}.attn.W_O").view(d, h, dh)
            W_O_b = self.wb.get(f"blocks.{l}.attn.W_O").view(d, h, dh)
            za, zb, zl = (x[f"blocks.{l}.attn.hook_z"].to(dev).float() for x in (cache_a, cache_b, local))
            wa = torch.einsum("bphk,mhk->bphm", za, W_O_a)  # [b, pos, head, d_model]: each head's write
            acc.context["head"][l] += _sq3(wa, torch.einsum("bphk,mhk->bphm", zb, W_O_b), (0, 1, 3))
            same = torch.tensor([self.identical[Component("head", l, i)] for i in range(h)])
            if not bool(same.all()):
                acc.local["head"][l] += _sq3(wa, torch.einsum("bphk,mhk->bphm", zl, W_O_b), (0, 1, 3)) * (~same)[:, None]
            if k:
                ua, ub = torch.einsum("bkm,mhd->bkhd", dir_a, W_O_a), torch.einsum("bkm,mhd->bkhd", dir_b, W_O_b)
                ea, eb = (za[:, sl] * ua).sum(-1), (zb[:, sl] * ub).sum(-1)  # [b, k, head]
                acc.dla["head"][l] += torch.stack([ea.sum((0, 1), dtype=torch.float64), eb.sum((0, 1), dtype=torch.float64)], -1).cpu()
                abs_total += ea.abs().sum(-1)
            if not cfg.d_mlp:
                continue
            hook = f"blocks.{l}.hook_mlp_out"
            xa, xb, xl = cache_a[hook].to(dev), cache_b[hook], local[hook].to(dev)
            acc.context["mlp"][l] += _sq3(xa, xb, (0, 1, 2))
            if not self.identical[Component("mlp", l)]:
                acc.local["mlp"][l] += _sq3(xa, xl, (0, 1, 2))
            if k:
                ea, eb = (xa[:, sl].float() * dir_a).sum(-1), (xb[:, sl].float() * dir_b).sum(-1)
                acc.dla["mlp"][l] += torch.stack([ea.sum(dtype=torch.float64), eb.sum(dtype=torch.float64)]).cpu()
                abs_total += ea.abs()
            if acc.neurons:
                self._neurons(l, cache_a, cache_b, local, dir_a, dir_b, sl, k)

        if k:
            acc.dla_abs += float(abs_total.sum(dtype=torch.float64))
            logits_local = self.b.model.unembed(final_a.to(self.b.device, self.b.dtype)).float().to(dev)
            acc.context["unembed"] += _sq3(logits_a, logits_b.to(dev), (0, 1, 2))
            if not self.identical[Component("unembed")]:
                acc.local["unembed"] += _sq3(logits_a, logits_local, (0, 1, 2))
        agree_a, loss_a = _metrics(logits_a, targets)
        agree_b, loss_b = _metrics(logits_b.to(dev), targets)
        return agree_a, loss_a, agree_b, loss_b

    def _means(self, which: int, cache: dict[str, torch.Tensor]) -> None:
        sums = self.acc.mean_sums[which]
        for name, x in cache.items():
            if name.endswith(("hook_embed", "hook_pos_embed", "attn.hook_z", "hook_mlp_out")):
                s = x.to(self.dev).float().flatten(0, 1).sum(0, dtype=torch.float64)
                sums[name] = sums[name] + s if name in sums else s

    def _local(self, tokens: torch.Tensor, cache_a: dict[str, torch.Tensor], l: int) -> dict[str, torch.Tensor]:
        """B's layer l run on A's residual stream: its attention reads A's resid_pre, its MLP A's resid_mid."""
        model = self.b.model
        out: dict[str, torch.Tensor] = {}
        mid = cache_a[f"blocks.{l}.hook_resid_mid"]

        def save(x: torch.Tensor, *, hook: Any) -> None:
            out[hook.name] = x.detach()

        def a_mid(x: torch.Tensor, *, hook: Any) -> torch.Tensor:
            return mid.to(x.device, x.dtype)

        names = [f"blocks.{l}.attn.hook_z"]
        if self.cfg.d_mlp:
            names.append(f"blocks.{l}.hook_mlp_out")
            if self.acc.neurons:
                names.append(f"blocks.{l}.mlp.hook_post")
        residual = cache_a[f"blocks.{l}.hook_resid_pre"].to(self.b.device, self.b.dtype)
        with model.hooks([(f"blocks.{l}.hook_resid_mid", a_mid)]), model.hooks([(n, save) for n in names]):
            model(tokens.to(self.b.device), start_at_layer=l, stop_at_layer=l + 1, residual=residual)
        return out

    def _neurons(self, l: int, cache_a: dict[str, torch.Tensor], cache_b: dict[str, torch.Tensor], local: dict[str, torch.Tensor],
                 dir_a: torch.Tensor | None, dir_b: torch.Tensor | None, sl: slice, k: int) -> None:
        acc, dev = self.acc, self.dev
        hook = f"blocks.{l}.mlp.hook_post"
        pa, pb, pl = (x[hook].to(dev).float() for x in (cache_a, cache_b, local))  # [b, pos, d_mlp]

        def products(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            dims = (0, 1)
            return torch.stack([x.square().sum(dims, dtype=torch.float64), y.square().sum(dims, dtype=torch.float64),
                                (x * y).sum(dims, dtype=torch.float64)], -1).cpu()

        acc.n_context[l] += products(pa, pb)
        acc.n_local[l] += products(pa, pl)
        if k and dir_a is not None and dir_b is not None:
            va = dir_a @ self.wa.get(f"blocks.{l}.mlp.W_out")  # [b, k, d_mlp]: what one unit of each neuron adds
            vb = dir_b @ self.wb.get(f"blocks.{l}.mlp.W_out")
            acc.dla["neuron"][l] += torch.stack([(pa[:, sl] * va).sum((0, 1), dtype=torch.float64),
                                                 (pb[:, sl] * vb).sum((0, 1), dtype=torch.float64)], -1).cpu()


def _tokens_per_batch(cfg: ModelConfig, neurons: bool) -> int:
    """Tokens per batch so that one batch's activations fit BATCH_BYTES: the caches of both models
    (A's residual streams too), one layer's transients (q, k, v, the MLP's hidden units, the
    heads' writes) and the logits, in float32."""
    d, hd, m, h, L = cfg.d_model, cfg.n_heads * cfg.d_head, cfg.d_mlp, cfg.n_heads, cfg.n_layers
    per_layer = 2 * (hd + d + (m if neurons else 0)) + 2 * d  # z, mlp_out (, post) of A and B; A's resid_pre, resid_mid
    transient = 3 * hd + 2 * m + 3 * h * d + 4 * d
    per_token = 4 * (L * per_layer + transient + 3 * cfg.vocab_size)
    return max(1, BATCH_BYTES // per_token)


# ---------------------------------------------------------------------------------------------
# The diff


def iter_diff(
    a: LoadedModel | Checkpoint,
    b: LoadedModel | Checkpoint,
    *,
    theory: Theory | None = None,
    prompts: Sequence[str] | None = None,
    neurons: bool = False,
    limit: int = DEFAULT_ENUMERATION_LIMIT,
    seed: int = 0,
    n_random: int = RANDOM_INPUTS,
    length: int | None = None,
    answer_tokens: int = 1,
    ablation_inputs: int = ABLATION_INPUTS,
    ablate_top: int = ABLATE_TOP,
    max_work: int = MAX_WORK,
    load: Callable[[Checkpoint], LoadedModel] | None = None,
    cancel: Callable[[], bool] = lambda: False,
) -> Iterator[DiffProgress | DiffResult]:
    """Yield DiffProgress events, then the DiffResult. Raises Cancelled when cancel() turns true.

    a, b: loaded models, or checkpoints opened header-only (loaded with `load`, default
    load_model on --device auto, after the weights were compared). Inputs: the theory's domain
    (all of it up to `limit`, else a seeded sample), else `prompts`, else `n_random` seeded
    random sequences of `length` tokens. `answer_tokens`: answer length for a question's inputs.
    Ablation effects are measured on `ablation_inputs` inputs (a seeded sample beyond) for the
    `ablate_top` components that changed most (0: none)."""
    t0 = time.perf_counter()
    if theory is not None and prompts is not None:
        raise InputError("give a theory or prompts, not both")
    if answer_tokens < 1:
        raise InputError(f"answer tokens must be at least 1, got {answer_tokens}")
    if n_random < 1:
        raise InputError(f"random inputs: at least 1, got {n_random}")
    if prompts is not None and not prompts:
        raise InputError("no prompts given")
    ckpt_a = a.checkpoint if isinstance(a, LoadedModel) else a
    ckpt_b = b.checkpoint if isinstance(b, LoadedModel) else b
    check_compatible(ckpt_a, ckpt_b)
    cfg = ckpt_a.config
    neurons = neurons and cfg.d_mlp > 0

    weights: WeightChanges | None = None
    for event in weight_changes(ckpt_a, ckpt_b, neurons=neurons, cancel=cancel):
        if isinstance(event, WeightChanges):
            weights = event
        else:
            yield event
    if weights is None:
        raise TuiInterpError("internal: the weight comparison ended without a result")

    loader = load or (lambda c: load_model(c))
    lm_a = a if isinstance(a, LoadedModel) else loader(a)
    lm_b = b if isinstance(b, LoadedModel) else loader(b)

    # inputs and both models' answers
    inp: _Inputs | None = None
    if theory is not None:
        for ev in _theory_inputs(lm_a, theory, limit, seed, max_work, answer_tokens, cancel, t0):
            if isinstance(ev, _Inputs):
                inp = ev
            else:
                yield ev
    elif prompts is not None:
        inp = _prompt_inputs(lm_a, prompts)
    else:
        inp = _random_inputs(lm_a, n_random, length, seed)
    if inp is None:
        raise TuiInterpError("internal: no inputs")
    n = len(inp.prompts)
    for i, p in enumerate(inp.prompts):
        if len(p) > cfg.n_ctx:
            raise InputError(f"input {i + 1} is {len(p)} tokens, longer than the model's context ({cfg.n_ctx})")
        if inp.expected is not None and len(p) + len(inp.expected[i]) - 1 > cfg.n_ctx:
            raise InputError(f"prompt and answer of input {i + 1} are {len(p) + len(inp.expected[i]) - 1} tokens, "
                             f"longer than the model's context ({cfg.n_ctx})")
    yield DiffProgress("answers", 0, 2 * n, time.perf_counter() - t0)
    answers_a = generate(lm_a, inp.prompts, inp.answer_tokens, cancel=cancel)
    yield DiffProgress("answers", n, 2 * n, time.perf_counter() - t0)
    answers_b = generate(lm_b, inp.prompts, inp.answer_tokens, cancel=cancel)
    yield DiffProgress("answers", 2 * n, 2 * n, time.perf_counter() - t0)
    disagreements = _disagreements(lm_a, inp, answers_a, answers_b)
    agreement_a = agreement_b = None
    if inp.expected is not None:
        agreement_a = sum(ans == exp for (ans, _), exp in zip(answers_a, inp.expected, strict=True)) / n
        agreement_b = sum(ans == exp for (ans, _), exp in zip(answers_b, inp.expected, strict=True)) / n

    # the behaviour pass over every input
    items = _items(inp, [ids for ids, _ in answers_a])
    if not any(it.targets for it in items):
        raise InputError("no input has a token to predict (prompts need at least two tokens; answers need room in the context)")
    acc = _Accumulator(cfg, neurons)
    identical = {c: weights.identical(c) for c in weights.sums}
    neuron_identical = None
    if neurons and weights.neurons is not None:
        same_input = torch.tensor(weights.mlp_input_identical)[:, None]
        neuron_identical = (weights.neurons[..., 0] == 0) & same_input
    wa, wb = _Weights(ckpt_a, lm_a.device), _Weights(ckpt_b, lm_a.device)
    runner = _Pass(lm_a, lm_b, wa, wb, acc, identical)
    per_batch = _tokens_per_batch(cfg, neurons)
    agree = torch.zeros(2, n, dtype=torch.bool)
    loss = torch.zeros(2, n, dtype=torch.float64)
    done = 0
    for idxs in _batches(items, range(n), per_batch):
        if cancel():
            raise Cancelled("diff cancelled")
        ag_a, lo_a, ag_b, lo_b = runner.run(items, idxs)
        agree[0, idxs], loss[0, idxs], agree[1, idxs], loss[1, idxs] = ag_a, lo_a, ag_b, lo_b
        done += len(idxs)
        yield DiffProgress("activations", done, n, time.perf_counter() - t0)

    # ablation effects of the components that changed most
    own = {c: 0.0 if identical[c] else (weights.relative(c) + _relative(_row(acc.local, c))) / 2 for c in weights.sums}  # type: ignore[arg-type]
    metric = "agreement" if inp.expected is not None else "loss"
    scored = [i for i, it in enumerate(items) if it.targets]
    chosen = scored if len(scored) <= ablation_inputs else sorted(random.Random(seed).sample(scored, ablation_inputs))
    to_ablate = sorted((c for c in own if own[c] > 0 and c.kind != "unembed"), key=lambda c: (-own[c], c.sort_key))[: max(0, ablate_top)]
    ablation: dict[Component, tuple[float, float]] = {}
    ablation_words = "none measured (no component changed)" if not any(own.values()) else "not measured (ablate_top is 0)"
    if to_ablate:
        clean = [_metric_of(agree[w, chosen], loss[w, chosen], items, chosen, metric) for w in (0, 1)]
        for event in _ablations((lm_a, lm_b), items, chosen, to_ablate, [_mean_values(acc, w) for w in (0, 1)], clean, metric,
                                per_batch, cancel, t0):
            if isinstance(event, DiffProgress):
                yield event
            else:
                ablation = event
        sample = f"all {len(chosen):,} scored inputs" if len(chosen) == len(scored) else f"a seeded sample of {len(chosen):,} inputs (seed {seed})"
        what = "the drop in agreement" if metric == "agreement" else "the rise in loss (nats per answer token)"
        which = "the component that changed" if len(to_ablate) == 1 else f"the {len(to_ablate)} components that changed most"
        ablation_words = f"{what} when mean-ablated (means over all inputs, in each model), on {sample}, for {which}"

    components = _assemble(cfg, weights, acc, own, ablation, metric, neurons, neuron_identical)
    n_pos_total = sum(len(it.targets) for it in items)
    result = DiffResult(
        model_a={"name": ckpt_a.name, "fingerprint": ckpt_a.fingerprint},
        model_b={"name": ckpt_b.name, "fingerprint": ckpt_b.fingerprint},
        kind=inp.kind,
        n_inputs=n,
        inputs=inp.description,
        metric=metric,
        components=tuple(components),
        disagreements=tuple(disagreements),
        agreement_a=agreement_a,
        agreement_b=agreement_b,
        loss_a=float(loss[0].sum()) / max(1, n_pos_total),
        loss_b=float(loss[1].sum()) / max(1, n_pos_total),
        ablation_inputs=ablation_words,
        unmapped=tuple(weights.unmapped),
        seconds=time.perf_counter() - t0,
    )
    yield DiffProgress("done", n, n, result.seconds)
    yield result


def _ablations(models: tuple[LoadedModel, LoadedModel], items: Sequence[_Item], chosen: Sequence[int], to_ablate: Sequence[Component],
               means: Sequence[dict[str, torch.Tensor]], clean: Sequence[float], metric: str, per_batch: int, cancel: Callable[[], bool],
               t0: float) -> Iterator[DiffProgress | dict[Component, tuple[float, float]]]:
    """Mean-ablate each component in A and in B on the chosen inputs: progress per batch, then
    {component: (cost in A, cost in B)}, the cost being the drop in agreement or the rise in loss."""
    cfg = models[0].config
    totals = torch.zeros(len(to_ablate), 2, 2, dtype=torch.float64)  # [component, model, (agreeing inputs, loss sum)]
    done = 0
    for idxs in _batches(items, chosen, per_batch):
        for ci, c in enumerate(to_ablate):
            if cancel():
                raise Cancelled("diff cancelled")
            for w, lm in enumerate(models):
                value = {s.hook: means[w][s.hook] if s.index is None else means[w][s.hook][s.index] for s in c.sites(cfg)}
                ag, lo = _ablated(lm, items, idxs, Intervention(c, "mean", None, value))
                totals[ci, w, 0] += float(ag.sum())
                totals[ci, w, 1] += float(lo.sum())
        done += len(idxs)
        yield DiffProgress("ablations", done, len(chosen), time.perf_counter() - t0)
    n_pos = sum(len(items[i].targets) for i in chosen)
    out = {}
    for ci, c in enumerate(to_ablate):
        if metric == "agreement":
            costs = [clean[w] - float(totals[ci, w, 0]) / len(chosen) for w in (0, 1)]
        else:
            costs = [float(totals[ci, w, 1]) / n_pos - clean[w] for w in (0, 1)]
        out[c] = (costs[0], costs[1])
    yield out


def _metric_of(agree: torch.Tensor, loss: torch.Tensor, items: Sequence[_Item], idxs: Sequence[int], metric: str) -> float:
    if metric == "agreement":
        return float(agree.double().mean())
    return float(loss.sum()) / max(1, sum(len(items[i].targets) for i in idxs))


def _mean_values(acc: _Accumulator, which: int) -> dict[str, torch.Tensor]:
    """Mean activation at each component site over every token of every input, in one model."""
    return {name: (s / acc.tokens).float() for name, s in acc.mean_sums[which].items()}


@torch.inference_mode()
def _ablated(lm: LoadedModel, items: Sequence[_Item], idxs: Sequence[int], iv: Intervention) -> tuple[torch.Tensor, torch.Tensor]:
    first, k = items[idxs[0]].first, len(items[idxs[0]].targets)
    tokens = torch.tensor([items[i].run for i in idxs], device=lm.device)
    targets = torch.tensor([items[i].targets for i in idxs], device=lm.device, dtype=torch.long).view(len(idxs), k)
    values = {h: v.to(lm.device) for h, v in iv.value.items()}
    iv = Intervention(iv.component, iv.mode, iv.positions, values)
    _, _, logits = _forward(lm, tokens, (), first, k, hooks=iv.hooks(lm.config))
    return _metrics(logits, targets.to(logits.device))


def _assemble(cfg: ModelConfig, weights: WeightChanges, acc: _Accumulator, own: dict[Component, float],
              ablation: dict[Component, tuple[float, float]], metric: str, neurons: bool,
              neuron_identical: torch.Tensor | None) -> list[ComponentDiff]:
    positions = max(1, acc.positions)
    D = acc.dla_abs / positions
    M = 1.0 if metric == "agreement" else math.log(cfg.vocab_size)

    def effect_change(ea: float | None, eb: float | None, ab: tuple[float, float] | None) -> float:
        terms = []
        if ea is not None and eb is not None and D > 0:
            terms.append(abs(eb - ea) / D)
        if ab is not None:
            terms.append(abs(ab[1] - ab[0]) / M)
        return sum(terms) / len(terms) if terms else 0.0

    out = []
    for c in weights.sums:
        identical = weights.identical(c)
        ac = 0.0 if identical else _relative(_row(acc.local, c))  # type: ignore[arg-type]
        dla = _row(acc.dla, c)
        ea = eb = None
        if dla is not None:
            ea, eb = float(dla[0]) / positions, float(dla[1]) / positions
        ab = ablation.get(c)
        score = own[c] * (1 + effect_change(ea, eb, ab)) if own[c] > 0 else 0.0
        out.append(ComponentDiff(c, score, weights.relative(c), ac, _relative(_row(acc.context, c)), ea, eb,  # type: ignore[arg-type]
                                 ab[0] if ab else None, ab[1] if ab else None, identical))
    if neurons and weights.neurons is not None and acc.neurons and neuron_identical is not None:
        out += _neuron_diffs(cfg, weights, acc, neuron_identical, D, positions)
    out.sort(key=lambda r: (-r.score, r.component.sort_key))
    return out


def _neuron_diffs(cfg: ModelConfig, weights: WeightChanges, acc: _Accumulator, neuron_identical: torch.Tensor, D: float,
                  positions: int) -> list[ComponentDiff]:
    """Each neuron's write is post * W_out[:, n]: its distances follow from the sums of post^2 and
    post_A * post_B and the norms and dot products of the two W_out columns."""
    wcs = weights.neuron_relative()  # [L, m]
    na, nb, ab_dot = weights.w_out_products()

    def distance(s: torch.Tensor) -> torch.Tensor:  # s [L, m, 3]: sum pa^2, sum pb^2, sum pa*pb
        diff = (s[..., 1] * nb - 2 * s[..., 2] * ab_dot + s[..., 0] * na).clamp_min(0)
        return _relative_t(torch.stack([diff, s[..., 0] * na, s[..., 1] * nb], -1))

    local = torch.where(neuron_identical, torch.zeros_like(wcs), distance(acc.n_local))
    context = distance(acc.n_context)
    dla = acc.dla["neuron"] / positions
    out = []
    for l in range(cfg.n_layers):
        for i in range(cfg.d_mlp):
            identical = bool(weights.neurons[l, i, 0] == 0)  # type: ignore[index]
            wc, ac = float(wcs[l, i]), float(local[l, i])
            ea, eb = float(dla[l, i, 0]), float(dla[l, i, 1])
            o = 0.0 if identical else (wc + ac) / 2
            effect = abs(eb - ea) / D if D > 0 else 0.0
            out.append(ComponentDiff(Component("neuron", l, i), o * (1 + effect), wc, ac, float(context[l, i]), ea, eb, None, None, identical))
    return out


def _disagreements(lm: LoadedModel, inp: _Inputs, answers_a: Sequence[tuple[list[int], float]],
                   answers_b: Sequence[tuple[list[int], float]]) -> list[Disagreement]:
    out = []
    for i, ((ia, pa), (ib, pb)) in enumerate(zip(answers_a, answers_b, strict=True)):
        if ia == ib:
            continue
        expected = inp.expected[i] if inp.expected is not None else None
        out.append(Disagreement(
            input=inp.shown[i], prompt=inp.texts[i], answer_a=_decode(lm, ia), p_a=pa, answer_b=_decode(lm, ib), p_b=pb,
            expected=inp.expected_text[i], a_agrees=None if expected is None else ia == expected,
            b_agrees=None if expected is None else ib == expected,
        ))
    out.sort(key=lambda d: -min(d.p_a, d.p_b))
    return out


def diff(a: LoadedModel | Checkpoint, b: LoadedModel | Checkpoint, **options: Any) -> DiffResult:
    """Run iter_diff to the end and return its result."""
    for event in iter_diff(a, b, **options):
        if isinstance(event, DiffResult):
            return event
    raise TuiInterpError("internal: the diff ended without a result")


def describe_input(d: Disagreement) -> str:
    """An input in words: `a=3, b=5` for a theory's, the prompt otherwise."""
    if isinstance(d.input, dict):
        return format_input(d.input)
    return d.prompt
