"""Check a theory against a model over its whole input domain, and hunt for counterexamples.

For every input the theory renders a prompt and the text the model should output next. The
model's answer is its greedy continuation of as many tokens as the expected text has. Agreement
needs one teacher-forced forward per input (the greedy continuation equals the expected tokens
exactly when every expected token is the argmax after its prefix); the model's actual answer is
generated only for the disagreeing inputs. Inputs are batched by length on the model's device.

Where the domain is too large to enumerate, agreement is measured on a uniform sample (stated),
and a search mutates inputs near known failures and near low-margin agreements to find more
counterexamples than the sample alone; those are reported but never counted in agreement.

`iter_compare` yields progress events and finally the result, checking a cancel flag between
batches; it is a pure function of (model, theory, options), so batches could be mapped over a
cluster later.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tui_interp.engine.claims import ClaimContext, ClaimResult, HookFactory, check_claims, sample_for_claims
from tui_interp.errors import InputError, TuiInterpError
from tui_interp.model.loader import LoadedModel
from tui_interp.theory import Assignment, Evaluation, Theory, format_input, to_json
from tui_interp.theory.limits import DEFAULT_ENUMERATION_LIMIT

MAX_BATCH_TOKENS = 65_536  # tokens per forward
CLAIM_INPUTS = 4096  # claims are checked on all inputs up to this many, else on a seeded sample


class Cancelled(TuiInterpError):
    """The comparison was cancelled."""


@dataclass
class Outcome:
    """The model against the theory on one input."""

    input: Assignment
    prompt: str
    expected: str
    got: str | None  # the model's greedy answer (None until generated: only for disagreements)
    agree: bool
    p_expected: float  # probability of the whole expected continuation (teacher forced)
    margin: float  # min over expected tokens of logit(expected) - best other logit (< 0: disagree)
    slices: tuple[bool, ...]
    found_by: str = "sample"  # "sample" (counted in agreement) or "search"


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
    n_inputs: int
    enumerated: bool
    selection: str  # in words: "all 12,769 inputs" or "a uniform random sample of ..."
    agreement: float
    slices: list[SliceResult]
    counterexamples: list[Outcome]  # most confident first: sample failures, then search finds
    n_failures: int  # in the sample
    searched: int = 0  # extra inputs tried by the search
    found_by_search: int = 0
    seconds: float = 0.0
    claims: list[ClaimResult] = field(default_factory=list)

    @property
    def failed_claims(self) -> int:
        return sum(c.status == "fails" for c in self.claims)

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
            "slices": [{"name": s.name, "n": s.n, "agreement": s.agreement} for s in self.slices],
            "counterexamples": [
                {
                    "input": to_json(o.input),
                    "prompt": o.prompt,
                    "expected": o.expected,
                    "got": o.got,
                    "p_expected": o.p_expected,
                    "found_by": o.found_by,
                }
                for o in shown
            ],
            "search": {"tried": self.searched, "found": self.found_by_search},
            "claims": [c.to_json() for c in self.claims],
            "seconds": self.seconds,
        }


@dataclass
class Progress:
    phase: str  # "prepare", "compare", "search", "done"
    done: int
    total: int
    agree: int = 0
    failures: int = 0

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class _Item:
    ev: Evaluation
    prompt_ids: list[int]
    cont_ids: list[int]


def _tokenize(lm: LoadedModel, evs: Sequence[Evaluation], bos: bool | None) -> list[_Item]:
    """Prompt and continuation tokens. The continuation is what follows the prompt's tokens in
    the tokenisation of prompt + expected text; where the two do not line up (a merge across the
    boundary, or a whitespace-split vocabulary), the expected text is tokenised on its own."""
    tok = lm.need_tokenizer()
    prompts = tok.encode_batch([e.prompt for e in evs], bos=bos)
    fulls = tok.encode_batch([e.prompt + e.expected_text for e in evs], bos=bos)
    alone = None
    items = []
    for i, (e, p, f) in enumerate(zip(evs, prompts, fulls, strict=True)):
        if len(f) > len(p) and f[: len(p)] == p:
            cont = f[len(p) :]
        else:
            if alone is None:
                alone = tok.encode_batch([x.expected_text for x in evs], bos=False)
            cont = alone[i]
        if not p:
            raise InputError(f"the prompt for {format_input(e.input)} encodes to no tokens")
        if not cont:
            raise InputError(f"the expected answer for {format_input(e.input)} ({e.expected_text!r}) encodes to no tokens")
        items.append(_Item(e, p, cont))
    return items


@torch.inference_mode()
def _score(
    lm: LoadedModel, items: Sequence[_Item], cancel: Callable[[], bool], hooks: HookFactory | None = None
) -> Iterator[list[tuple[int, Outcome]]]:
    """Teacher-forced scoring in length buckets; yields each batch as (item index, outcome) pairs.
    `hooks(batch_size)` gives interventions to run the batch under (claims use it)."""
    model = lm.model
    n_ctx = model.cfg.n_ctx
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        total = len(it.prompt_ids) + len(it.cont_ids) - 1
        if total > n_ctx:
            raise InputError(f"prompt and answer for {format_input(it.ev.input)} are {total} tokens, longer than the context ({n_ctx})")
        buckets[(len(it.prompt_ids), len(it.cont_ids))].append(i)
    for (plen, clen), idxs in buckets.items():
        length = plen + clen - 1  # the last expected token is never an input
        per_batch = max(1, MAX_BATCH_TOKENS // length)
        for start in range(0, len(idxs), per_batch):
            if cancel():
                raise Cancelled("comparison cancelled")
            chunk = idxs[start : start + per_batch]
            rows = [items[i].prompt_ids + items[i].cont_ids[:-1] for i in chunk]
            tokens = torch.tensor(rows, device=lm.device)  # [batch, pos]
            targets = torch.tensor([items[i].cont_ids for i in chunk], device=lm.device)  # [batch, clen]
            with model.hooks(hooks(len(chunk)) if hooks is not None else []):
                resid = model(tokens, stop_at_layer=model.cfg.n_layers)
                logits = model.unembed(resid[:, plen - 1 :]).float()  # [batch, clen, vocab]: predictions of the answer
            logp = torch.log_softmax(logits, dim=-1)
            lp_expected = logp.gather(-1, targets[..., None])[..., 0]  # [batch, clen]
            expected_logit = logits.gather(-1, targets[..., None])[..., 0]
            others = logits.scatter(-1, targets[..., None], float("-inf")).amax(-1)
            margin = (expected_logit - others).amin(-1)  # [batch]
            p_expected = lp_expected.sum(-1).exp()
            agree = margin > 0
            batch = []
            for i, ok, p, mg in zip(chunk, agree.tolist(), p_expected.tolist(), margin.tolist(), strict=True):
                ev = items[i].ev
                batch.append((i, Outcome(ev.input, ev.prompt, ev.expected_text, ev.expected_text if ok else None, ok, p, mg, ev.slices)))
            yield batch


@torch.inference_mode()
def _generate(lm: LoadedModel, items: Sequence[_Item], outcomes: Sequence[Outcome]) -> None:
    """Fill in `got` (the greedy continuation, decoded) for disagreeing outcomes."""
    tok = lm.need_tokenizer()
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (it, o) in enumerate(zip(items, outcomes, strict=True)):
        if o.got is None:
            groups[(len(it.prompt_ids), len(it.cont_ids))].append(i)
    for (plen, clen), idxs in groups.items():
        for start in range(0, len(idxs), max(1, MAX_BATCH_TOKENS // (plen + clen))):
            chunk = idxs[start : start + max(1, MAX_BATCH_TOKENS // (plen + clen))]
            tokens = torch.tensor([items[i].prompt_ids for i in chunk], device=lm.device)
            for _ in range(clen):
                if tokens.shape[1] > lm.model.cfg.n_ctx:  # the model cannot read this many tokens
                    break
                resid = lm.model(tokens, stop_at_layer=lm.model.cfg.n_layers)
                nxt = lm.model.unembed(resid[:, -1:])[:, 0].argmax(-1)  # [batch]
                tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            for row, i in enumerate(chunk):
                outcomes[i].got = tok.decode(tokens[row, plen:].tolist())


def _evaluate(theory: Theory, inputs: Sequence[Assignment]) -> list[Evaluation]:
    return [theory.evaluate(x) for x in inputs]


def iter_compare(
    lm: LoadedModel,
    theory: Theory,
    *,
    limit: int = DEFAULT_ENUMERATION_LIMIT,
    seed: int = 0,
    search: bool = True,
    search_budget: int | None = None,
    bos: bool | None = None,
    cancel: Callable[[], bool] = lambda: False,
    labels: Any = None,
    claims: bool = True,
) -> Iterator[Progress | CompareResult]:
    """Yield Progress events, then the CompareResult. Raises Cancelled when cancel() turns true."""
    t0 = time.perf_counter()
    selection = theory.domain.select(limit=limit, seed=seed)
    inputs = selection.inputs
    if not inputs:
        raise InputError(f"theory {theory.name!r}: the domain is empty (check the `where` filter)")
    yield Progress("prepare", 0, len(inputs))
    evs = _evaluate(theory, inputs)
    items = _tokenize(lm, evs, bos)
    slots: list[Outcome | None] = [None] * len(items)
    done = n_agree = 0
    for batch in _score(lm, items, cancel):
        for i, o in batch:
            slots[i] = o
        done += len(batch)
        n_agree += sum(o.agree for _, o in batch)
        yield Progress("compare", done, len(items), n_agree, done - n_agree)
    outcomes = [o for o in slots if o is not None]  # in input order
    failures = [(it, o) for it, o in zip(items, outcomes, strict=True) if not o.agree]
    _generate(lm, [it for it, _ in failures], [o for _, o in failures])

    found: list[Outcome] = []
    tried = 0
    if search and not selection.enumerated:
        budget = search_budget if search_budget is not None else max(1000, len(inputs) // 4)
        seen = {_key(o.input) for o in outcomes}
        for progress, batch_found, batch_tried in _search(lm, theory, outcomes, seen, budget, seed, bos, cancel):
            found.extend(batch_found)
            tried += batch_tried
            yield progress

    slices = []
    for k, s in enumerate(theory.slices):
        for inside in (True, False):
            members = [o for o in outcomes if o.slices[k] == inside]
            name = s.name if inside else f"not ({s.name})"
            slices.append(SliceResult(name, len(members), (sum(o.agree for o in members) / len(members)) if members else None))
    claim_results = []
    if claims and theory.claims:
        yield Progress("claims", 0, len(theory.claims), n_agree, len(outcomes) - n_agree)
        claim_results = check_claims(_claim_context(lm, theory, items, cancel, seed, labels, bos))
    counter = sorted((o for o in outcomes if not o.agree), key=lambda o: o.p_expected)
    counter += sorted(found, key=lambda o: o.p_expected)
    result = CompareResult(
        theory=theory.name,
        model_name=lm.checkpoint.name,
        fingerprint=lm.checkpoint.fingerprint,
        n_inputs=len(outcomes),
        enumerated=selection.enumerated,
        selection=selection.describe(),
        agreement=n_agree / len(outcomes),
        slices=slices,
        counterexamples=counter,
        n_failures=len(outcomes) - n_agree,
        searched=tried,
        found_by_search=len(found),
        seconds=time.perf_counter() - t0,
        claims=claim_results,
    )
    yield Progress("done", len(outcomes), len(outcomes), n_agree, result.n_failures)
    yield result


def _claim_context(
    lm: LoadedModel, theory: Theory, items: Sequence[_Item], cancel: Callable[[], bool], seed: int, labels: Any, bos: bool | None
) -> ClaimContext:
    chosen = [items[i] for i in sample_for_claims(len(items), CLAIM_INPUTS, seed)]

    def agreement(hooks: HookFactory | None) -> float:
        agree = sum(o.agree for batch in _score(lm, chosen, cancel, hooks) for _, o in batch)
        return agree / len(chosen)

    def token_batches() -> list[torch.Tensor]:
        groups: dict[int, list[list[int]]] = defaultdict(list)
        for it in chosen:
            row = it.prompt_ids + it.cont_ids[:-1]
            groups[len(row)].append(row)
        out = []
        for rows in groups.values():
            step = max(1, MAX_BATCH_TOKENS // len(rows[0]))
            out += [torch.tensor(rows[i : i + step], device=lm.device) for i in range(0, len(rows), step)]
        return out

    def prompts() -> list[tuple[list[int], list[tuple[int, int]], Any]]:
        tok = lm.need_tokenizer()
        out = []
        for it in chosen[:1024]:
            ids, offsets = tok.encode_with_offsets(it.ev.prompt, bos=bos)
            out.append((ids, offsets, it.ev.input))
        return out

    return ClaimContext(lm, theory, agreement, token_batches, prompts, len(chosen), seed, labels)


def _key(x: Assignment) -> tuple[Any, ...]:
    return tuple(sorted(x.items()))


def _search(
    lm: LoadedModel,
    theory: Theory,
    outcomes: list[Outcome],
    seen: set[tuple[Any, ...]],
    budget: int,
    seed: int,
    bos: bool | None,
    cancel: Callable[[], bool],
) -> Iterator[tuple[Progress, list[Outcome], int]]:
    """Mutate inputs near failures and near the lowest-margin agreements, in rounds."""
    rng = random.Random(seed + 1)
    pool = sorted(outcomes, key=lambda o: o.margin)[: max(32, len(outcomes) // 20)]  # failures first, then low margins
    tried = 0
    rounds = 0
    while tried < budget and pool and rounds < 50:
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
            break
        items = _tokenize(lm, _evaluate(theory, candidates), bos)
        slots: list[Outcome | None] = [None] * len(items)
        for batch in _score(lm, items, cancel):
            for i, o in batch:
                slots[i] = o
        scored = [o for o in slots if o is not None]
        tried += len(scored)
        new_failures = [o for o in scored if not o.agree]
        fail_items = [it for it, o in zip(items, scored, strict=True) if not o.agree]
        _generate(lm, fail_items, new_failures)
        for o in new_failures:
            o.found_by = "search"
        # next round: mutate around what failed now, and the closest calls
        pool = new_failures + sorted((o for o in scored if o.agree), key=lambda o: o.margin)[: max(8, len(scored) // 20)]
        yield Progress("search", tried, budget, failures=len(new_failures)), new_failures, len(scored)


def compare(lm: LoadedModel, theory: Theory, **options: Any) -> CompareResult:
    """Run iter_compare to the end and return its result."""
    for event in iter_compare(lm, theory, **options):
        if isinstance(event, CompareResult):
            return event
    raise TuiInterpError("internal: the comparison ended without a result")
