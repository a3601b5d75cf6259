"""Check a theory against a model over its whole input domain, and hunt for counterexamples.

For every input the theory renders a prompt and the text the model should output next. An
input agrees when the model's greedy continuation of as many tokens as the expected text has
equals those tokens exactly: one teacher-forced forward per input decides it (every expected
token is the argmax after its prefix). For the disagreeing inputs the model's actual answer,
`got`, is generated greedily (the same number of tokens) with its probability `p_got`;
counterexamples are ordered by it, most confidently wrong first. Inputs run in batches by
length on the model's device (engine/answers.py).

Where the domain is too large to enumerate, agreement is measured on a uniform sample
(stated). Every input of the theory's splits is checked too, so the slices `NAME` / `not NAME`
of a split are exact on the split; inputs added that way are reported in the split's slices
but not in the overall agreement of a sample. A search mutates inputs near failures and near
low-margin agreements to find more counterexamples than the sample alone; it runs within an
evaluation and a time budget (stated), only on sampled domains, and not at all when the
failures found already outnumber what will be shown. Search finds are never counted in
agreement.

Claims are checked on the claim inputs (engine/claims.py): every input of the selection, or a
seeded uniform sample of `claim_limit` of them.

`iter_compare` yields progress events and finally the result, checking a cancel flag between
batches; it is a pure function of (model, theory, options), so batches could be mapped over a
cluster later.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tui_interp.engine.answers import Cancelled, generate, score
from tui_interp.engine.claims import ClaimInputs, ClaimResult, check_claims, validate_claims
from tui_interp.errors import InputError, TuiInterpError
from tui_interp.model.loader import LoadedModel
from tui_interp.theory import Assignment, Evaluation, Theory, format_input, to_json
from tui_interp.theory.limits import DEFAULT_ENUMERATION_LIMIT

SEARCH_SECONDS = 30.0  # default time budget of the counterexample search
MAX_WORK = 500_000_000  # default bound on theory-evaluation steps for one run (about 10 minutes of Python)
PREPARE_CHUNK = 4096  # inputs evaluated and tokenised between two progress events

__all__ = ["Cancelled", "CompareResult", "Outcome", "Progress", "SliceResult", "compare", "iter_compare"]


@dataclass
class Outcome:
    """The model against the theory on one input."""

    input: Assignment
    prompt: str
    expected: str
    got: str | None  # the model's greedy answer (generated for disagreements only; the expected text otherwise)
    agree: bool
    p_expected: float  # probability of the whole expected continuation (teacher forced)
    margin: float  # min over expected tokens of logit(expected) - best other logit (< 0: disagree)
    slices: tuple[bool, ...]
    splits: tuple[bool, ...] = ()
    found_by: str = "sample"  # "sample" (counted in agreement), "split" (a split input outside the sample) or "search"
    p_got: float | None = None  # probability of `got` (greedy); p_expected when they agree
    first_agree: bool = False  # the first expected token is the model's top token


@dataclass
class SliceResult:
    name: str
    n: int
    agreement: float | None


@dataclass
class CompareResult:
    theory: str
    model_name: str
    fingerprint: str
    n_inputs: int  # inputs counted in agreement
    enumerated: bool
    selection: str  # in words: "all 12,769 inputs" or "a uniform random sample of ..."
    agreement: float
    slices: list[SliceResult]
    counterexamples: list[Outcome]  # most confident wrong answer first: sample and split failures, then search finds
    n_failures: int  # in the selection
    searched: int = 0  # extra inputs tried by the search
    found_by_search: int = 0
    search: str = ""  # what the search did, in words (or why it did not run)
    seconds: float = 0.0
    answer_tokens: tuple[int, int] = (1, 1)  # fewest and most tokens an expected answer has
    claims: list[ClaimResult] = field(default_factory=list)
    claim_inputs: str = ""  # what the claims were measured on
    hints: list[str] = field(default_factory=list)
    work: str = ""  # the estimated theory-evaluation work and its limit, in words

    @property
    def failed_claims(self) -> int:
        """Claims that failed or could not be checked (both fail a run)."""
        return sum(c.status != "holds" for c in self.claims)

    def to_json(self, show: int | None = None) -> dict[str, Any]:
        shown = self.counterexamples if show is None else self.counterexamples[:show]
        return {
            "theory": self.theory,
            "model": {"name": self.model_name, "fingerprint": self.fingerprint},
            "n_inputs": self.n_inputs,
            "enumerated": self.enumerated,
            "selection": self.selection,
            "agreement": self.agreement,
            "n_counterexamples": self.n_failures,
            "answer_tokens": {"min": self.answer_tokens[0], "max": self.answer_tokens[1]},
            "slices": [{"name": s.name, "n": s.n, "agreement": s.agreement} for s in self.slices],
            "counterexamples": [
                {
                    "input": to_json(o.input),
                    "prompt": o.prompt,
                    "expected": o.expected,
                    "got": o.got,
                    "p_got": o.p_got,
                    "p_expected": o.p_expected,
                    "found_by": o.found_by,
                }
                for o in shown
            ],
            "counterexample_order": "p_got descending (the model's confidence in its wrong answer)",
            "search": {"tried": self.searched, "found": self.found_by_search, "note": self.search},
            "claims": [c.to_json() for c in self.claims],
            "claim_inputs": self.claim_inputs,
            "hints": self.hints,
            "work": self.work,
            "seconds": self.seconds,
        }


@dataclass
class Progress:
    phase: str  # "prepare", "compare", "answers", "search", "claims", "done"
    done: int
    total: int
    agree: int = 0
    failures: int = 0
    seconds: float = 0.0  # since the comparison started

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def rate(self) -> float:
        """Items of this phase per second so far (0 before any)."""
        return self.done / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Item:
    ev: Evaluation
    prompt_ids: list[int]
    cont_ids: list[int]
    alone: bool = False  # the answer was tokenised on its own (it merges with the prompt's end)


def tokenize_items(lm: LoadedModel, evs: Sequence[Evaluation], bos: bool | None) -> list[Item]:
    """Prompt and continuation tokens. The continuation is what follows the prompt's tokens in
    the tokenisation of prompt + expected text; where the two do not line up (a merge across the
    boundary, or a whitespace-split vocabulary), the expected text is tokenised on its own."""
    tok = lm.need_tokenizer()
    prompts = tok.encode_batch([e.prompt for e in evs], bos=bos)
    fulls = tok.encode_batch([e.prompt + (e.expected_text or "") for e in evs], bos=bos)
    alone = None
    items = []
    for i, (e, p, f) in enumerate(zip(evs, prompts, fulls, strict=True)):
        by_itself = False
        if len(f) > len(p) and f[: len(p)] == p:
            cont = f[len(p) :]
        else:
            if alone is None:
                alone = tok.encode_batch([x.expected_text or "" for x in evs], bos=False)
            cont, by_itself = alone[i], True
        if not p:
            raise InputError(f"the prompt for {format_input(e.input)} encodes to no tokens")
        if not cont:
            raise InputError(f"the expected answer for {format_input(e.input)} ({e.expected_text!r}) encodes to no tokens")
        items.append(Item(e, p, cont, by_itself))
    return items


def _prepare(lm: LoadedModel, theory: Theory, inputs: Sequence[Assignment], bos: bool | None, t0: float) -> Iterator[Progress | list[Item]]:
    """Evaluate the theory and tokenise, in chunks, with progress; finally the items."""
    items: list[Item] = []
    for start in range(0, len(inputs), PREPARE_CHUNK):
        chunk = inputs[start : start + PREPARE_CHUNK]
        items += tokenize_items(lm, [theory.evaluate(x) for x in chunk], bos)
        yield Progress("prepare", len(items), len(inputs), seconds=time.perf_counter() - t0)
    yield items


def _score_all(lm: LoadedModel, items: Sequence[Item], cancel: Callable[[], bool], found_by: Sequence[str], t0: float,
               phase: str = "compare") -> Iterator[Progress | list[Outcome]]:
    """Score every item; yields progress per batch, then the outcomes in item order."""
    slots: list[Outcome | None] = [None] * len(items)
    done = agree = 0
    for batch in score(lm, [it.prompt_ids for it in items], [it.cont_ids for it in items], cancel=cancel):
        for i, s in batch:
            ev = items[i].ev
            expected = ev.expected_text or ""
            slots[i] = Outcome(ev.input, ev.prompt, expected, expected if s.agree else None, s.agree, s.p_expected, s.margin,
                               ev.slices, ev.splits, found_by[i], s.p_expected if s.agree else None, s.first_agree)
        done += len(batch)
        agree += sum(s.agree for _, s in batch)
        yield Progress(phase, done, len(items), agree, done - agree, time.perf_counter() - t0)
    yield [o for o in slots if o is not None]


def _answer(lm: LoadedModel, items: Sequence[Item], outcomes: Sequence[Outcome], cancel: Callable[[], bool]) -> None:
    """Fill in `got` (the greedy continuation, decoded) and `p_got` for disagreeing outcomes."""
    tok = lm.need_tokenizer()
    todo = [i for i, o in enumerate(outcomes) if o.got is None]
    answers = generate(lm, [items[i].prompt_ids for i in todo], [len(items[i].cont_ids) for i in todo], cancel=cancel)
    for i, (ids, p) in zip(todo, answers, strict=True):
        outcomes[i].got = tok.decode(ids)
        outcomes[i].p_got = p


def iter_compare(
    lm: LoadedModel,
    theory: Theory,
    *,
    limit: int = DEFAULT_ENUMERATION_LIMIT,
    seed: int = 0,
    search: bool = True,
    search_budget: int | None = None,
    search_seconds: float = SEARCH_SECONDS,
    show: int | None = None,
    bos: bool | None = None,
    cancel: Callable[[], bool] = lambda: False,
    labels: Any = None,
    claims: bool = True,
    claim_limit: int | None = None,
    max_work: int = MAX_WORK,
) -> Iterator[Progress | CompareResult]:
    """Yield Progress events, then the CompareResult. Raises Cancelled when cancel() turns true.

    show: how many counterexamples will be shown (None: all); the search is skipped when the
    selection's failures already outnumber it. claim_limit: measure claims on a seeded uniform
    sample of this many inputs instead of all of them. max_work: refuse to start when evaluating
    the theory on the inputs (and the search's) would take more steps than this."""
    t0 = time.perf_counter()
    if theory.is_question:
        raise InputError(
            f"theory {theory.name!r} is a question (no `expect`): compare needs an expected answer; "
            "`tui-interp recover` proposes one, `tui-interp table` lists the model's answers"
        )
    if claims:
        validate_claims(theory, lm.config)
    selection = theory.domain.select(limit=limit, seed=seed)
    inputs = list(selection.inputs)
    if not inputs:
        raise InputError(f"theory {theory.name!r}: the domain is empty (check the `where` filter)")
    budget = search_budget if search_budget is not None else max(1000, len(inputs) // 4)
    work = check_work(theory, len(inputs) + (0 if selection.enumerated or not search else budget), max_work)
    found_by = ["sample"] * len(inputs)
    if theory.splits and not selection.enumerated:
        seen = {_key(x) for x in inputs}
        for split in theory.splits:
            for x in split.inputs():
                if _key(x) not in seen:
                    seen.add(_key(x))
                    inputs.append(x)
                    found_by.append("split")
    yield Progress("prepare", 0, len(inputs), seconds=time.perf_counter() - t0)
    items: list[Item] = []
    for event in _prepare(lm, theory, inputs, bos, t0):
        if isinstance(event, Progress):
            if cancel():
                raise Cancelled("comparison cancelled")
            yield event
        else:
            items = event
    outcomes: list[Outcome] = []
    for event in _score_all(lm, items, cancel, found_by, t0):
        if isinstance(event, Progress):
            yield event
        else:
            outcomes = event
    counted = [o for o in outcomes if o.found_by == "sample"]
    n_agree = sum(o.agree for o in counted)
    n_fail = len(counted) - n_agree
    failing = [i for i, o in enumerate(outcomes) if not o.agree]
    yield Progress("answers", 0, len(failing), n_agree, n_fail, time.perf_counter() - t0)
    _answer(lm, [items[i] for i in failing], [outcomes[i] for i in failing], cancel)

    found: list[Outcome] = []
    tried = 0
    note = ""
    if selection.enumerated:
        note = "no search: the whole domain was checked"
    elif not search:
        note = "no search (switched off)"
    elif show is not None and n_fail >= show:
        note = f"no search: the sample already has {n_fail:,} counterexamples, more than the {show} shown"
    else:
        seen = {_key(o.input) for o in outcomes}
        stopped = "its budget"
        for progress, batch_found, batch_tried, why in _search(lm, theory, outcomes, seen, budget, search_seconds, seed, bos, cancel, t0):
            found.extend(batch_found)
            tried += batch_tried
            stopped = why
            yield progress
        note = f"searched {tried:,} inputs near failures and close calls (budget {budget:,} inputs or {search_seconds:g} s; stopped by {stopped})"

    slices = _slices(theory, outcomes)
    claim_results: list[ClaimResult] = []
    claim_words = ""
    if claims and theory.claims:
        yield Progress("claims", 0, len(theory.claims), n_agree, n_fail, time.perf_counter() - t0)
        claim_inputs = _claim_inputs(items, outcomes, selection, claim_limit, seed)
        claim_words = claim_inputs.description
        claim_results = check_claims(lm, theory, claim_inputs, seed=seed, labels=labels, cancel=cancel, bos=bos)
    sample_fails = sorted((o for o in outcomes if not o.agree), key=lambda o: -(o.p_got or 0.0))
    counter = sample_fails + sorted(found, key=lambda o: -(o.p_got or 0.0))
    lengths = [len(it.cont_ids) for it in items]
    result = CompareResult(
        theory=theory.name,
        model_name=lm.checkpoint.name,
        fingerprint=lm.checkpoint.fingerprint,
        n_inputs=len(counted),
        enumerated=selection.enumerated,
        selection=selection.describe(),
        agreement=n_agree / len(counted),
        slices=slices,
        counterexamples=counter,
        n_failures=n_fail,
        searched=tried,
        found_by_search=len(found),
        search=note,
        seconds=time.perf_counter() - t0,
        answer_tokens=(min(lengths), max(lengths)),
        claims=claim_results,
        claim_inputs=claim_words,
        hints=_hints(lm, theory, items, outcomes),
        work=work,
    )
    yield Progress("done", len(counted), len(counted), n_agree, n_fail, result.seconds)
    yield result


def check_work(theory: Theory, n_inputs: int, max_work: int) -> str:
    """Refuse (InputError naming the costliest expression) when evaluating the theory on
    `n_inputs` inputs would take more than `max_work` steps; else the estimate in words."""
    cost = theory.cost_estimate()
    total = cost.steps_per_input * n_inputs
    if total > max_work:
        where = f"{theory.path}:" if theory.path else ""
        raise InputError(
            f"{where}{cost.span.line}:{cost.span.col}: evaluating the theory on {n_inputs:,} inputs would take about {total:,} steps "
            f"(`{cost.expression}` costs up to {cost.steps_per_input:,} per input); the limit is {max_work:,}: "
            "check fewer inputs (--limit) or raise the limit (--max-work)"
        )
    return f"theory evaluation: about {total:,} steps for {n_inputs:,} inputs (limit {max_work:,})"


def _slices(theory: Theory, outcomes: Sequence[Outcome]) -> list[SliceResult]:
    """Each slice and split, and its complement. Sample-only inputs count in slices; split
    inputs count in their split's slices."""
    out = []

    def add(name: str, members: list[Outcome]) -> None:
        out.append(SliceResult(name, len(members), sum(o.agree for o in members) / len(members) if members else None))

    sample = [o for o in outcomes if o.found_by == "sample"]
    for k, s in enumerate(theory.slices):
        add(s.name, [o for o in sample if o.slices[k]])
        add(f"not ({s.name})", [o for o in sample if not o.slices[k]])
    for k, sp in enumerate(theory.splits):
        add(sp.name, [o for o in outcomes if o.splits[k]])
        add(f"not {sp.name}", [o for o in sample if not o.splits[k]])
    return out


def _claim_inputs(items: Sequence[Item], outcomes: Sequence[Outcome], selection: Any, limit: int | None, seed: int) -> ClaimInputs:
    """The selection's inputs (all, or a seeded uniform sample of `limit`), in their order."""
    chosen = [i for i, o in enumerate(outcomes) if o.found_by == "sample"]
    base = selection.describe()
    if limit is not None and len(chosen) > limit:
        chosen = sorted(random.Random(seed).sample(chosen, limit))
        base = f"a uniform random sample of {limit:,} of {base} (seed {seed})"
    return ClaimInputs(
        [items[i].prompt_ids for i in chosen],
        [items[i].cont_ids for i in chosen],
        [items[i].ev for i in chosen],
        base,
    )


def _hints(lm: LoadedModel, theory: Theory, items: Sequence[Item], outcomes: Sequence[Outcome]) -> list[str]:
    """What may explain a low agreement that is about the answer's form, not the model."""
    hints = []
    lengths = sorted({len(it.cont_ids) for it in items})
    if lengths[-1] > 1:
        span = f"{lengths[0]}" if len(lengths) == 1 else f"{lengths[0]} to {lengths[-1]}"
        hints.append(f"expected answers are {span} tokens: an input agrees when the model's greedy continuation of that many "
                     "tokens equals them exactly, and `got` is that continuation")
    n = len(outcomes)
    agree = sum(o.agree for o in outcomes)
    fails = [o for o in outcomes if not o.agree]
    if lengths[-1] > 1 and fails:
        first = sum(o.first_agree for o in outcomes)
        if first - agree >= max(1, n // 10):
            hints.append(f"the first answer token is right on {first / n:.1%} of inputs but the whole answer on {agree / n:.1%}: "
                         "check how the answer continues (separators, length)")
    spacing = sum(o.got is not None and o.got.split() == o.expected.split() for o in fails)
    if fails and spacing >= max(1, len(fails) // 2):
        hints.append(f"{spacing:,} of the {len(fails):,} disagreements differ from the expected answer only in whitespace: "
                     "check the spaces around the answer in `prompt` and `expect`")
    merged = [o for it, o in zip(items, outcomes, strict=True) if it.alone]
    if merged and sum(o.agree for o in merged) < len(merged) / 2:
        hints.append(f"for {len(merged):,} inputs the end of the prompt and the start of the answer tokenise together, so their "
                     "answers were scored as tokenised on their own, and most disagree: check the spacing between prompt and answer")
    tok = lm.tokenizer
    if tok is not None:
        unknown = sum(any(tok.is_unknown(t) for t in it.cont_ids) for it in items)
        if unknown:
            hints.append(f"{unknown:,} expected answers contain the unknown token: the model cannot produce them")
    for k, sp in enumerate(theory.splits):
        if not sp.has_answers:
            continue
        members = [o for o in outcomes if o.splits[k]]
        differ = sum(sp.answer(o.input) != o.expected for o in members)
        if differ:
            hints.append(f"{differ:,} of the {len(members):,} answers in split {sp.name!r} ({sp.path.name}) differ from `expect`")
    return hints


def _key(x: Assignment) -> tuple[Any, ...]:
    return tuple(sorted(x.items()))


def _search(
    lm: LoadedModel,
    theory: Theory,
    outcomes: list[Outcome],
    seen: set[tuple[Any, ...]],
    budget: int,
    seconds: float,
    seed: int,
    bos: bool | None,
    cancel: Callable[[], bool],
    t0: float,
) -> Iterator[tuple[Progress, list[Outcome], int, str]]:
    """Mutate inputs near failures and near the lowest-margin agreements, in rounds, within
    `budget` evaluated inputs and `seconds`. Yields (progress, failures found, tried, why it
    would stop now)."""
    rng = random.Random(seed + 1)
    pool = sorted(outcomes, key=lambda o: o.margin)[: max(32, len(outcomes) // 20)]  # failures first, then low margins
    tried = 0
    rounds = 0
    started = time.perf_counter()
    while tried < budget and pool and rounds < 50:
        if time.perf_counter() - started > seconds:
            return
        rounds += 1
        if cancel():
            raise Cancelled("comparison cancelled")
        candidates: list[Assignment] = []
        per_seed = max(1, min(8, (budget - tried) // max(1, len(pool))))
        for o in pool:
            for _ in range(per_seed):
                x = theory.domain.mutate(o.input, rng)
                if x is not None and _key(x) not in seen:
                    seen.add(_key(x))
                    candidates.append(x)
        candidates = candidates[: budget - tried]
        if not candidates:
            return
        items = tokenize_items(lm, [theory.evaluate(x) for x in candidates], bos)
        scored: list[Outcome] = []
        for event in _score_all(lm, items, cancel, ["search"] * len(items), t0, phase="search"):
            if not isinstance(event, Progress):
                scored = event
        tried += len(scored)
        failing = [i for i, o in enumerate(scored) if not o.agree]
        _answer(lm, [items[i] for i in failing], [scored[i] for i in failing], cancel)
        new_failures = [scored[i] for i in failing]
        # next round: mutate around what failed now, and the closest calls
        pool = new_failures + sorted((o for o in scored if o.agree), key=lambda o: o.margin)[: max(8, len(scored) // 20)]
        elapsed = time.perf_counter() - started
        why = "its budget" if tried >= budget else ("its time limit" if elapsed > seconds else "running out of new inputs")
        yield Progress("search", tried, budget, failures=len(new_failures), seconds=time.perf_counter() - t0), new_failures, len(scored), why


def compare(lm: LoadedModel, theory: Theory, **options: Any) -> CompareResult:
    """Run iter_compare to the end and return its result."""
    for event in iter_compare(lm, theory, **options):
        if isinstance(event, CompareResult):
            return event
    raise TuiInterpError("internal: the comparison ended without a result")
