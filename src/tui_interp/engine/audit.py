"""The generalisation audit: from the weights and the train split alone, say which model generalises.

The seed's headline question: two networks get 100% on their train set; which one generalises
to inputs it never saw? The audit may run each model on any input of the domain (only the
labels outside train are unknown) but never reads an answer outside the train file. Signals,
each reported with its value and what it means:

  rule         the simplest rule of the theory language that fits the train answers
               (engine/recover.py) and how often the model agrees with it outside train:
               a model that computes the train set's simplest rule has generalised
  symmetry     invariances the train answers show (swapping two inputs of the same type
               leaves the answer unchanged wherever both orders are in train) and how
               consistently the model keeps them outside train
  ablation     agreement with the train answers when each head and each MLP is
               mean-ablated alone (over the train inputs): a memorised lookup table breaks
               when any part of it goes; an algorithm spread over components degrades less
  noise        agreement with the train answers under small Gaussian weight noise (a flat
               minimum vs a sharp one)
  fourier      concentration of the input-token embeddings (and of the answer tokens'
               unembeddings) in few Fourier frequencies over the input values (and, for a
               prime modulus, in the discrete-log basis, for multiplicative structure)
  rank         effective rank of those embeddings, as a share of the tokens
  weight norm  RMS of the weights (weight decay keeps generalising solutions small)
  margin       mean logit margin of the train answers
  fit          log(margin) - log(weight RMS), relative to the other models audited: a large
               margin from small weights (a simple, confident solution) vs a lookup table
               that needs large weights for a small margin

Each signal that has an absolute reading (rule, symmetry, noise, ablation, fourier) gives a
number in [0, 1], higher meaning "looks like it generalises"; "fit" gives 0..1 across the
models audited together (absent for a single model). The score is their weighted mean
(WEIGHTS) and ranks the models. The verdict `generalises` rests on the strongest basis the
train split offers: the rule (agreement outside train at least RULE_VERDICT), else the
symmetries (consistency at least SYMMETRY_VERDICT), else the score (at least SCORE_VERDICT,
a weak basis, said so). The weights and thresholds were chosen on the validation pairs of
benchmarks/bench_audit.py marked as tuning pairs; the held-out pairs there measure them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tui_interp.components import Component
from tui_interp.engine.answers import Cancelled, score
from tui_interp.engine.claims import ablation_hooks, site_means
from tui_interp.engine.compare import Progress
from tui_interp.engine.table import TableRow, answer_table, continuation_lengths
from tui_interp.errors import InputError
from tui_interp.model.loader import LoadedModel
from tui_interp.theory import Assignment, IntRange, ListSpec, Theory, parse_theory, render_value

# weights of the signals in the score ("fit" is relative: it needs two models or more)
WEIGHTS = {"rule": 4.0, "symmetry": 2.0, "fit": 2.0, "noise": 1.0, "ablation": 0.5, "fourier": 0.5}
RULE_VERDICT = 0.9  # agreement with the train set's rule outside train that counts as generalising
SYMMETRY_VERDICT = 0.99  # without a rule: consistency under the train set's symmetries that does
SCORE_VERDICT = 0.75  # with neither: the score that does (a weak basis, and said so)
RULE_MIN_TRAIN = 0.99  # a rule must fit at least this share of the train answers
NOISE_SCALE = 0.3  # weight noise: this times each weight tensor's RMS (chosen on the tuning pairs)
NOISE_SEEDS = 3
SYMMETRY_MIN_PAIRS = 10  # train pairs (x, swapped x) needed to call a swap a symmetry
TOP_FREQUENCIES = 4  # Fourier concentration: the energy share of the strongest few frequencies
DEFAULT_LIMIT = 20_000  # domains up to this size are answered whole
SAMPLE = 4096  # larger domains: a seeded sample of this many inputs (and their swapped partners)


@dataclass(frozen=True)
class Evidence:
    signal: str
    value: float | None  # the measurement (None: the signal does not apply)
    note: str  # what it means, in words
    score: float | None = None  # its contribution in [0, 1] (higher: generalises), None when not absolute

    def to_json(self) -> dict[str, Any]:
        return {"signal": self.signal, "value": self.value, "note": self.note, "score": self.score}


@dataclass
class ModelAudit:
    model: str  # the path as given
    generalises: bool
    score: float
    evidence: list[Evidence]
    train_agreement: float
    basis: str = "score"  # what the verdict rests on: "rule", "symmetry" or "score"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "generalises": self.generalises,
            "score": self.score,
            "basis": self.basis,
            "train_agreement": self.train_agreement,
            "evidence": [e.to_json() for e in self.evidence],
        }

    def value(self, signal: str) -> float | None:
        return next((e.value for e in self.evidence if e.signal == signal), None)


@dataclass
class AuditResult:
    models: list[ModelAudit]
    ranking: list[str]
    train: str  # the train split, in words
    inputs: str  # what the models answered
    rule: str | None = None  # the train set's simplest rule (an expression), if found
    rule_size: int | None = None
    symmetries: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [m.to_json() for m in self.models],
            "ranking": self.ranking,
            "train": self.train,
            "inputs": self.inputs,
            "rule": {"expect": self.rule, "size": self.rule_size} if self.rule is not None else None,
            "symmetries": self.symmetries,
            "seconds": self.seconds,
        }


# ---------------------------------------------------------------------------------------------
# what the train split shows (no model involved)


@dataclass(frozen=True)
class TrainSet:
    inputs: list[Assignment]
    answers: list[str]
    description: str

    def key(self, x: Assignment) -> tuple[Any, ...]:
        return tuple(x.values())


def train_set(theory: Theory) -> TrainSet:
    """The split named `train` and its answers; InputError when the theory has none."""
    split = next((s for s in theory.splits if s.name == "train"), None)
    if split is None:
        raise InputError(f"theory {theory.name!r}: the audit needs `split train from \"FILE\"`, whose rows carry the train answers")
    if not split.has_answers:
        raise InputError(f"{split.path}: every row of the train split needs an `answer` (the label the model was trained on)")
    inputs = split.inputs()
    answers = [split.answer(x) or "" for x in inputs]
    return TrainSet(inputs, answers, f"{len(inputs):,} train inputs with answers from {split.path.name}")


def swap_symmetries(theory: Theory, train: TrainSet) -> list[tuple[str, str]]:
    """Pairs of same-typed inputs whose swap leaves every train answer unchanged, wherever
    both orders are in train (at least SYMMETRY_MIN_PAIRS such pairs, not all x == y)."""
    answers = {train.key(x): a for x, a in zip(train.inputs, train.answers, strict=True)}
    decls = theory.inputs
    found = []
    for i in range(len(decls)):
        for j in range(i + 1, len(decls)):
            if decls[i].spec != decls[j].spec:
                continue
            n = agree = 0
            for x, a in zip(train.inputs, train.answers, strict=True):
                y = dict(x)
                y[decls[i].name], y[decls[j].name] = x[decls[j].name], x[decls[i].name]
                other = answers.get(tuple(y.values()))
                if other is None or y == x:
                    continue
                n += 1
                agree += other == a
            if n >= SYMMETRY_MIN_PAIRS and agree == n:
                found.append((decls[i].name, decls[j].name))
    return found


# ---------------------------------------------------------------------------------------------
# model signals


def _table_by_key(rows: Sequence[TableRow]) -> dict[tuple[Any, ...], TableRow]:
    return {tuple(r.input.values()): r for r in rows}


def rule_agreement(theory: Theory, rule: str, rows: Sequence[TableRow], train: TrainSet) -> tuple[float, int]:
    """How often the model's answers outside train equal the rule's, and over how many inputs."""
    keys = {train.key(x) for x in train.inputs}
    ruled = _with_expect(theory, rule)
    outside = [r for r in rows if tuple(r.input.values()) not in keys]
    if not outside:
        return 1.0, 0
    agree = sum(render_value(ruled.expected(r.input)) == r.got for r in outside)
    return agree / len(outside), len(outside)


def _with_expect(theory: Theory, rule: str) -> Theory:
    """The question with `expect RULE` (its splits resolved against the same file)."""
    from tui_interp.engine.recover import with_expect

    return parse_theory(with_expect(theory.source, rule), theory.path)


def as_question(theory: Theory) -> Theory:
    """The theory without its `expect` (answer lengths then come from the train answers)."""
    return theory if theory.is_question else _with_expect(theory, "?")


def symmetry_consistency(theory: Theory, pairs: Sequence[tuple[str, str]], rows: Sequence[TableRow], train: TrainSet) -> tuple[float, int]:
    """Share of inputs outside train whose answer equals the answer to the swapped input (for
    each discovered symmetry), over the inputs whose swap the model also answered."""
    by_key = _table_by_key(rows)
    keys = {train.key(x) for x in train.inputs}
    n = agree = 0
    for a, b in pairs:
        for r in rows:
            k = tuple(r.input.values())
            if k in keys:
                continue
            y = dict(r.input)
            y[a], y[b] = r.input[b], r.input[a]
            other = by_key.get(tuple(y.values()))
            if other is None or y == r.input:
                continue
            n += 1
            agree += other.got == r.got
    return (agree / n if n else 1.0), n


@torch.inference_mode()
def _train_tokens(lm: LoadedModel, theory: Theory, train: TrainSet) -> tuple[list[list[int]], list[list[int]]]:
    tok = lm.need_tokenizer()
    prompts = [theory.render_prompt(x) for x in train.inputs]
    ids = tok.encode_batch(prompts)
    lengths = continuation_lengths(tok, prompts, ids, train.answers, 1)
    fulls = tok.encode_batch([p + a for p, a in zip(prompts, train.answers, strict=True)])
    expected = []
    for p, f, n, a in zip(ids, fulls, lengths, train.answers, strict=True):
        cont = f[len(p) :] if len(f) > len(p) and f[: len(p)] == p else tok.encode(a, bos=False)
        expected.append(cont[:n] if cont else [0])
    return ids, expected


def _agreement(lm: LoadedModel, prompts: list[list[int]], expected: list[list[int]], hooks: Any = None,
               cancel: Callable[[], bool] = lambda: False) -> tuple[float, float]:
    """(agreement, mean first-token margin) of the train answers, optionally under hooks."""
    agree = total = 0
    margin = 0.0
    for batch in score(lm, prompts, expected, hooks=hooks, cancel=cancel):
        for _, s in batch:
            agree += s.agree
            margin += s.margin
            total += 1
    return agree / total, margin / total


def ablation_robustness(lm: LoadedModel, prompts: list[list[int]], expected: list[list[int]], cancel: Callable[[], bool]) -> tuple[float, float, str]:
    """Mean and minimum train agreement with each head and each MLP mean-ablated alone (means
    over the train inputs), and the component whose loss hurts most."""
    cfg = lm.config
    components = [Component("head", l, h) for l in range(cfg.n_layers) for h in range(cfg.n_heads)]
    components += [Component("mlp", l) for l in range(cfg.n_layers)] if cfg.d_mlp else []
    batches = _batches(lm, prompts, expected)
    results = []
    for c in components:
        sites = c.sites(cfg)
        means = site_means(lm, batches, sites)
        agreement, _ = _agreement(lm, prompts, expected, ablation_hooks(sites, "mean", means, 0), cancel)
        results.append((agreement, str(c)))
    worst = min(results)
    return sum(a for a, _ in results) / len(results), worst[0], worst[1]


def _batches(lm: LoadedModel, prompts: list[list[int]], expected: list[list[int]]) -> list[torch.Tensor]:
    groups: dict[int, list[list[int]]] = {}
    for p, e in zip(prompts, expected, strict=True):
        row = p + e[:-1]
        groups.setdefault(len(row), []).append(row)
    return [torch.tensor(rows, device=lm.device) for rows in groups.values()]


@torch.inference_mode()
def noise_robustness(lm: LoadedModel, prompts: list[list[int]], expected: list[list[int]], cancel: Callable[[], bool]) -> float:
    """Mean train agreement with Gaussian noise of NOISE_SCALE x RMS added to every weight
    matrix (seeded, NOISE_SEEDS draws); the weights are restored afterwards."""
    params = [(name, p) for name, p in lm.model.named_parameters() if p.dim() >= 2 and not p.is_meta]
    originals = {name: p.data for name, p in params}
    out = []
    try:
        for seed in range(NOISE_SEEDS):
            gen = torch.Generator().manual_seed(seed)
            for name, p in params:
                w = originals[name]
                rms = float(w.float().pow(2).mean().sqrt())
                noise = torch.randn(w.shape, generator=gen).to(w.device, w.dtype) * (NOISE_SCALE * rms)
                p.data = w + noise  # a new tensor: the original (perhaps memory-mapped) one is untouched
            out.append(_agreement(lm, prompts, expected, cancel=cancel)[0])
    finally:
        for name, p in params:
            p.data = originals[name]
    return sum(out) / len(out)


def value_tokens(lm: LoadedModel, theory: Theory) -> list[int] | None:
    """Token ids of the values 0..n-1 of the theory's int inputs (ints, or list elements), when
    every value is one token and all inputs share the range; None otherwise."""
    ranges = set()
    for d in theory.inputs:
        spec = d.spec.elem if isinstance(d.spec, ListSpec) else d.spec
        if not isinstance(spec, IntRange):
            return None
        ranges.add((spec.lo, spec.hi))
    if len(ranges) != 1:
        return None
    lo, hi = ranges.pop()
    if hi - lo < 4 or hi - lo > 4096:
        return None
    tok = lm.need_tokenizer()
    ids = tok.encode_batch([str(v) for v in range(lo, hi + 1)], bos=False)
    if any(len(i) != 1 for i in ids) or len({i[0] for i in ids}) != len(ids):
        return None
    return [i[0] for i in ids]


def fourier_concentration(matrix: torch.Tensor, k: int = TOP_FREQUENCIES) -> float:
    """Share of the (centred) energy of rows ordered by value in the `k` strongest non-constant
    Fourier frequencies: [n, d] -> [0, 1]."""
    x = matrix.float() - matrix.float().mean(0, keepdim=True)
    spectrum = torch.fft.rfft(x, dim=0).abs().pow(2).sum(-1)[1:]  # [n // 2] energy per frequency
    total = float(spectrum.sum())
    if total <= 0:
        return 0.0
    return float(spectrum.topk(min(k, spectrum.numel())).values.sum()) / total


def discrete_log_order(n: int) -> list[int] | None:
    """For a prime n: the values 1..n-1 in the order g^0, g^1, ... of a primitive root g."""
    if n < 5 or any(n % q == 0 for q in range(2, int(math.isqrt(n)) + 1)):
        return None
    factors = {q for q in range(2, n) if (n - 1) % q == 0 and all(q % r for r in range(2, int(math.isqrt(q)) + 1))}
    for g in range(2, n):
        if all(pow(g, (n - 1) // q, n) != 1 for q in factors):
            return [pow(g, i, n) for i in range(n - 1)]
    return None


def structure(lm: LoadedModel, tokens: list[int]) -> tuple[float, float, str]:
    """(Fourier concentration, effective rank share, basis) of the value tokens' embeddings and
    unembeddings: the better of the standard and the discrete-log basis; rank of the embeddings."""
    emb = lm.model.W_E.detach()[tokens].float()  # [n, d_model]
    unemb = lm.model.unembed_weight.detach()[tokens].float()
    standard = (fourier_concentration(emb) + fourier_concentration(unemb)) / 2
    best, basis = standard, "standard"
    order = discrete_log_order(len(tokens))
    if order is not None:
        dlog = (fourier_concentration(emb[order]) + fourier_concentration(unemb[order])) / 2
        if dlog > best:
            best, basis = dlog, "discrete-log"
    s = torch.linalg.svdvals(emb - emb.mean(0, keepdim=True))
    p = s / s.sum()
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
    return best, math.exp(entropy) / len(tokens), basis


def weight_rms(lm: LoadedModel) -> float:
    total, count = 0.0, 0
    for p in lm.model.parameters():
        if p.dim() >= 2 and not p.is_meta:
            total += float(p.detach().float().pow(2).sum())
            count += p.numel()
    return math.sqrt(total / count) if count else 0.0


# ---------------------------------------------------------------------------------------------


RuleSearch = Callable[[Theory, TrainSet, Callable[[], bool]], tuple[str, int, float] | None]
RULE_SECONDS = 20.0  # time budget of the rule search on the train answers


def train_rule(theory: Theory, train: TrainSet, cancel: Callable[[], bool]) -> tuple[str, int, float] | None:
    """The simplest rule fitting the train answers (expression, size, train agreement), or None.
    The search sees the train split's answers only (engine/recover.py, no model involved)."""
    from tui_interp.engine.recover import AnswerTable, Grammar, SearchBudget, search_rules

    table = AnswerTable.from_split(theory, "train")
    result = search_rules(table, Grammar.for_theory(theory, table), SearchBudget(seconds=RULE_SECONDS), top=1,
                          min_agreement=RULE_MIN_TRAIN, cancel=cancel)
    best = result.best
    return None if best is None else (best.expect, best.size, best.agreement)


def iter_audit(
    models: Sequence[tuple[str, LoadedModel]],
    theory: Theory,
    *,
    limit: int = DEFAULT_LIMIT,
    seed: int = 0,
    cancel: Callable[[], bool] = lambda: False,
    rule_search: RuleSearch = train_rule,
) -> Iterator[Progress | AuditResult]:
    """Yield progress, then the AuditResult. Uses no answer outside the theory's train split."""
    t0 = time.perf_counter()
    if not models:
        raise InputError("give at least one model to audit")
    theory = as_question(theory)  # an `expect` would be a label outside train: it is never read
    train = train_set(theory)
    yield Progress("rule", 0, 1, seconds=time.perf_counter() - t0)
    rule = rule_search(theory, train, cancel)
    if rule is not None and rule[2] < RULE_MIN_TRAIN:
        rule = None
    symmetries = swap_symmetries(theory, train)
    audits = []
    inputs_words = ""
    for i, (name, lm) in enumerate(models):
        if cancel():
            raise Cancelled("audit cancelled")
        yield Progress("answers", i, len(models), seconds=time.perf_counter() - t0)
        chosen = _inputs(theory, limit, seed, symmetries)
        info, rows = answer_table(lm, theory, limit=limit, seed=seed, cancel=cancel, inputs=chosen)
        inputs_words = info.selection if chosen is None else (
            f"a uniform random sample of {SAMPLE:,} inputs (seed {seed})" + (" and their swapped partners" if symmetries else ""))
        yield Progress("signals", i, len(models), seconds=time.perf_counter() - t0)
        audits.append(_audit_model(name, lm, theory, train, rows, rule, symmetries, cancel))
    _judge(audits)
    ranking = [a.model for a in sorted(audits, key=lambda a: (-a.score, _tiebreak(a)))]
    result = AuditResult(
        models=audits,
        ranking=ranking,
        train=train.description,
        inputs=inputs_words,
        rule=rule[0] if rule else None,
        rule_size=rule[1] if rule else None,
        symmetries=[f"swap({a}, {b})" for a, b in symmetries],
        seconds=time.perf_counter() - t0,
    )
    yield Progress("done", len(models), len(models), seconds=result.seconds)
    yield result


def _inputs(theory: Theory, limit: int, seed: int, symmetries: Sequence[tuple[str, str]]) -> list[Assignment] | None:
    """None (the whole domain) when it has at most `limit` inputs; else a seeded sample of
    SAMPLE inputs with, for each symmetry, the swapped partner of each."""
    if theory.domain.raw_size <= limit:
        return None
    xs = theory.domain.sample(SAMPLE, seed=seed)
    partners = []
    for a, b in symmetries:
        for x in xs:
            y = dict(x)
            y[a], y[b] = x[b], x[a]
            if theory.domain.contains(y):
                partners.append(y)
    seen, out = set(), []
    for x in [*xs, *partners]:
        key = tuple(x.values())
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out


def _tiebreak(a: ModelAudit) -> tuple[float, float]:
    return (a.value("weight norm") or 0.0, -(a.value("margin") or 0.0))


def _judge(audits: list[ModelAudit]) -> None:
    """Add the relative "fit" signal (two models or more), then each model's score and verdict."""
    fits = [math.log(max(a.value("margin") or 0.0, 1e-6)) - math.log(max(a.value("weight norm") or 0.0, 1e-12)) for a in audits]
    lo, hi = min(fits), max(fits)
    for a, fit in zip(audits, fits, strict=True):
        if len(audits) > 1:
            share = (fit - lo) / (hi - lo) if hi > lo else 0.5
            a.evidence.append(Evidence("fit", fit, f"log(margin) - log(weight RMS) = {fit:.2f}: {share:.0%} of the way from the "
                                       "least to the most efficient of the models audited", share))
        weighted = [(WEIGHTS[e.signal], e.score) for e in a.evidence if e.score is not None and e.signal in WEIGHTS]
        a.score = sum(w * s for w, s in weighted) / sum(w for w, _ in weighted)
        rule, symmetry = a.value("rule"), a.value("symmetry")
        if rule is not None:
            a.generalises, a.basis = rule >= RULE_VERDICT, "rule"
        elif symmetry is not None:
            a.generalises, a.basis = symmetry >= SYMMETRY_VERDICT, "symmetry"
        else:
            a.generalises, a.basis = a.score >= SCORE_VERDICT, "score"


def _audit_model(
    name: str,
    lm: LoadedModel,
    theory: Theory,
    train: TrainSet,
    rows: Sequence[TableRow],
    rule: tuple[str, int, float] | None,
    symmetries: Sequence[tuple[str, str]],
    cancel: Callable[[], bool],
) -> ModelAudit:
    evidence: list[Evidence] = []
    prompts, expected = _train_tokens(lm, theory, train)
    fit, margin = _agreement(lm, prompts, expected, cancel=cancel)
    rule_value = None
    if rule is not None:
        rule_value, n = rule_agreement(theory, rule[0], rows, train)
        evidence.append(Evidence("rule", rule_value, f"agrees with the train set's simplest rule `{rule[0]}` (size {rule[1]}) "
                                 f"on {rule_value:.1%} of {n:,} inputs outside train", rule_value))
    else:
        evidence.append(Evidence("rule", None, "no rule of the theory language fits the train answers within the search budget"))
    if symmetries:
        value, n = symmetry_consistency(theory, symmetries, rows, train)
        names = ", ".join(f"swap({a}, {b})" for a, b in symmetries)
        evidence.append(Evidence("symmetry", value, f"keeps {names} (seen in the train answers) on {value:.1%} of {n:,} inputs outside train", value))
    else:
        evidence.append(Evidence("symmetry", None, "the train answers show no swap symmetry between inputs"))
    mean_ablation, worst, worst_component = ablation_robustness(lm, prompts, expected, cancel)
    evidence.append(Evidence("ablation", mean_ablation, f"mean train agreement with one head or MLP mean-ablated: {mean_ablation:.1%} "
                             f"(worst {worst:.1%}, {worst_component})", mean_ablation))
    noise = noise_robustness(lm, prompts, expected, cancel)
    evidence.append(Evidence("noise", noise, f"train agreement under weight noise of {NOISE_SCALE:g} x RMS: {noise:.1%}", noise))
    tokens = value_tokens(lm, theory)
    if tokens is not None:
        concentration, rank, basis = structure(lm, tokens)
        evidence.append(Evidence("fourier", concentration, f"{concentration:.1%} of the value tokens' (un)embedding energy in the "
                                 f"{TOP_FREQUENCIES} strongest frequencies ({basis} basis)", min(1.0, 2 * concentration)))
        evidence.append(Evidence("rank", rank, f"effective rank of the value embeddings: {rank:.1%} of the {len(tokens)} tokens"))
    else:
        evidence.append(Evidence("fourier", None, "inputs are not one-token integers over one range: no Fourier structure measured"))
    evidence.append(Evidence("weight norm", weight_rms(lm), "RMS of the weight matrices (smaller: more regularised)"))
    evidence.append(Evidence("margin", margin, "mean logit margin of the train answers' tokens"))
    return ModelAudit(name, False, 0.0, evidence, fit)  # scored and judged with the others (_judge)
