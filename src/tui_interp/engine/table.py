"""The answer table: the model's greedy answer for every input of a theory's domain (or sample).

One row per input: the input, the prompt, the model's greedy answer (`got`) and its
probability, the expected answer when the theory has one, and the splits the input is in.
Rows stream out in chunks (`iter_table`), so a table of 200,000 inputs is written as it is
computed. A question (a theory without `expect`) works too; that is what recover and audit
read.

How many tokens an answer has: the expected answer's tokens when the theory has `expect`;
else the input's answer in a split file when it has one; else `answer_tokens` when given; else
the most common token count of the split files' answers; else 1.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tui_interp.engine.answers import Cancelled, generate
from tui_interp.engine.compare import MAX_WORK, PREPARE_CHUNK, Progress, check_work
from tui_interp.errors import InputError
from tui_interp.model.loader import LoadedModel
from tui_interp.theory import Assignment, Theory, to_json
from tui_interp.theory.limits import DEFAULT_ENUMERATION_LIMIT


@dataclass(frozen=True)
class TableRow:
    input: Assignment
    prompt: str
    got: str  # the model's greedy answer
    p_got: float  # its probability
    expected: str | None  # what `expect` says (None for a question)
    splits: tuple[str, ...]  # names of the splits the input is in
    answer: str | None = None  # the input's answer in a split file, if any

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "input": to_json(self.input),
            "prompt": self.prompt,
            "got": self.got,
            "p_got": self.p_got,
            "expected": self.expected,
            "splits": list(self.splits),
        }
        if self.answer is not None:
            doc["answer"] = self.answer
        return doc


@dataclass(frozen=True)
class TableInfo:
    """What the table covers, in words, before its rows."""

    n_inputs: int
    enumerated: bool
    selection: str
    answer_tokens: str  # how the answer length was chosen


def _answer_rule(lm: LoadedModel, theory: Theory, answer_tokens: int | None) -> tuple[int, str]:
    """The answer length of a question's inputs that have no answer in a split file, and the rule in words."""
    if not theory.is_question:
        return 1, "as many tokens as the expected answer"
    with_answers = [s for s in theory.splits if s.has_answers]
    fallback, rule = 1, "1 token"
    if answer_tokens is not None:
        fallback, rule = answer_tokens, f"{answer_tokens} tokens (--answer-tokens)"
    elif with_answers:
        tok = lm.need_tokenizer()
        counts: Counter[int] = Counter()
        for s in with_answers:
            sample = s.inputs()[:2000]
            counts.update(len(ids) for ids in tok.encode_batch([s.answer(x) or "" for x in sample], bos=False))
        fallback = counts.most_common(1)[0][0] if counts else 1
        rule = f"{fallback} tokens (the most common length of the split files' answers)"
    if with_answers:
        rule = "the split file's answer where the input has one, else " + rule
    return fallback, rule


def continuation_lengths(tok: Any, prompts: Sequence[str], prompt_ids: Sequence[list[int]], answers: Sequence[str | None], fallback: int) -> list[int]:
    """How many tokens each answer adds after its prompt (as compare tokenises it); `fallback`
    where there is no answer."""
    known = [i for i, a in enumerate(answers) if a is not None]
    out = [fallback] * len(answers)
    if not known:
        return out
    fulls = tok.encode_batch([prompts[i] + (answers[i] or "") for i in known])
    alone = None
    for k, i in enumerate(known):
        p, f = prompt_ids[i], fulls[k]
        if len(f) > len(p) and f[: len(p)] == p:
            out[i] = len(f) - len(p)
        else:
            if alone is None:
                alone = tok.encode_batch([answers[j] or "" for j in known], bos=False)
            out[i] = max(1, len(alone[k]))
    return out


def iter_table(
    lm: LoadedModel,
    theory: Theory,
    *,
    limit: int = DEFAULT_ENUMERATION_LIMIT,
    seed: int = 0,
    answer_tokens: int | None = None,
    inputs: Sequence[Assignment] | None = None,
    cancel: Callable[[], bool] = lambda: False,
    max_work: int = MAX_WORK,
) -> Iterator[TableInfo | Progress | list[TableRow]]:
    """Yield a TableInfo, then progress events and chunks of rows, in input order.

    `inputs`: the inputs to answer (default: the domain's selection, all of it or a seeded
    uniform sample of `limit`)."""
    t0 = time.perf_counter()
    if answer_tokens is not None and answer_tokens < 1:
        raise InputError(f"--answer-tokens must be at least 1, got {answer_tokens}")
    if inputs is None:
        selection = theory.domain.select(limit=limit, seed=seed)
        chosen, enumerated, words = list(selection.inputs), selection.enumerated, selection.describe()
    else:
        chosen, enumerated, words = list(inputs), False, f"{len(inputs):,} given inputs"
    if not chosen:
        raise InputError(f"theory {theory.name!r}: the domain is empty (check the `where` filter)")
    check_work(theory, len(chosen), max_work)
    fallback, rule = _answer_rule(lm, theory, answer_tokens)
    yield TableInfo(len(chosen), enumerated, words, rule)
    tok = lm.need_tokenizer()
    done = 0
    for start in range(0, len(chosen), PREPARE_CHUNK):
        if cancel():
            raise Cancelled("cancelled")
        evs = [theory.evaluate(x) for x in chosen[start : start + PREPARE_CHUNK]]
        prompts = tok.encode_batch([e.prompt for e in evs])
        answers_of = [e.expected_text if e.expected_text is not None else _split_answer(theory, e) for e in evs]
        counts = continuation_lengths(tok, [e.prompt for e in evs], prompts, answers_of, fallback)
        if any(not p for p in prompts):
            raise InputError("a prompt encodes to no tokens")
        answers = generate(lm, prompts, counts, cancel=cancel)
        rows = []
        for e, (ids, p) in zip(evs, answers, strict=True):
            names = tuple(s.name for s, inside in zip(theory.splits, e.splits, strict=True) if inside)
            rows.append(TableRow(e.input, e.prompt, tok.decode(ids), p, e.expected_text, names, _split_answer(theory, e)))
        done += len(rows)
        yield Progress("answers", done, len(chosen), seconds=time.perf_counter() - t0)
        yield rows


def _split_answer(theory: Theory, ev: Any) -> str | None:
    """The input's answer in the first split file that has one for it."""
    for s, inside in zip(theory.splits, ev.splits, strict=True):
        if inside:
            answer = s.answer(ev.input)
            if answer is not None:
                return answer
    return None


def answer_table(lm: LoadedModel, theory: Theory, **options: Any) -> tuple[TableInfo, list[TableRow]]:
    """Run iter_table to the end: the table's description and every row."""
    info: TableInfo | None = None
    rows: list[TableRow] = []
    for event in iter_table(lm, theory, **options):
        if isinstance(event, TableInfo):
            info = event
        elif isinstance(event, list):
            rows += event
    if info is None:
        raise InputError("internal: the table ended without a description")
    return info, rows
