"""Input domains: what values a theory's inputs range over, enumerated, sampled or mutated.

Each `input` line declares a Spec (IntRange, BoolSpec, StrSpec, ListSpec: see LANGUAGE.md).
The Domain is the product of the inputs' specs (the first input varies slowest), filtered by
the `where` lines. Sizes are exact Python ints, however large. Orders are deterministic;
sampling is uniform over the domain, so long strings and lists dominate a domain with a range
of lengths, as they do in the count.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any, cast

from tui_interp.errors import InputError, TheoryError
from tui_interp.theory.limits import (
    DEFAULT_ENUMERATION_LIMIT,
    MAX_DOMAIN_LEN,
    MAX_DOMAIN_SIZE_BITS,
    MAX_INT_BITS,
    MIN_SAMPLE_ATTEMPTS,
    MUTATE_ATTEMPTS,
    SAMPLE_ATTEMPTS_PER_INPUT,
)
from tui_interp.theory.render import Value, format_value
from tui_interp.theory.types import BOOL, INT, STR, ListType, Type

Assignment = dict[str, Value]
"""One input of a theory: a value for every input name (lists are tuples)."""


class SpecError(ValueError):
    """A domain declaration that cannot be honoured (empty range, too large, ...)."""


class Spec(ABC):
    """The values one input can take."""

    size: int

    @property
    @abstractmethod
    def type(self) -> Type:
        """The checker's type of these values."""

    @abstractmethod
    def values(self) -> Iterator[Value]:
        """Every value, in the deterministic order (only sensible for small specs)."""

    @abstractmethod
    def random(self, rng: Random) -> Value:
        """A value drawn uniformly."""

    @abstractmethod
    def mutate(self, value: Value, rng: Random) -> Value | None:
        """A different value near this one, or None when the spec has a single value."""

    @abstractmethod
    def contains(self, value: Value) -> bool:
        """Whether a (normalised) value is in this spec."""

    @abstractmethod
    def normalize(self, value: Any) -> Value:
        """The value with lists as tuples; raises SpecError when its type is wrong."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class IntRange(Spec):
    lo: int
    hi: int
    size: int = field(init=False)

    def __post_init__(self) -> None:
        if not (_is_int(self.lo) and _is_int(self.hi)):
            raise SpecError("int bounds must be whole numbers")
        if self.lo > self.hi:
            raise SpecError(f"empty range {self.lo}..{self.hi}: the first bound must not exceed the second")
        if max(self.lo.bit_length(), self.hi.bit_length()) > MAX_INT_BITS:
            raise SpecError(f"int bound is too large (ints are limited to {MAX_INT_BITS:,} bits)")
        object.__setattr__(self, "size", self.hi - self.lo + 1)

    @property
    def type(self) -> Type:
        return INT

    def values(self) -> Iterator[Value]:
        return iter(range(self.lo, self.hi + 1))

    def random(self, rng: Random) -> Value:
        return rng.randint(self.lo, self.hi)

    def mutate(self, value: Value, rng: Random) -> Value | None:
        if self.size == 1 or not _is_int(value):
            return None
        v = cast(int, value)
        bits = max(1, (self.hi - self.lo).bit_length())
        roll = rng.random()
        if roll < 0.4:
            new = v + rng.choice((-1, 1))
        elif roll < 0.6:
            step = 1 << rng.randrange(bits)
            new = v + rng.choice((-step, step))
        elif roll < 0.8:  # flip one bit of the offset from lo
            new = self.lo + ((v - self.lo) ^ (1 << rng.randrange(bits)))
        else:
            new = rng.randint(self.lo, self.hi)
        new = min(max(new, self.lo), self.hi)
        if new == v:
            new = v + 1 if v < self.hi else v - 1
        return new

    def contains(self, value: Value) -> bool:
        return _is_int(value) and self.lo <= value <= self.hi  # type: ignore[operator]

    def normalize(self, value: Any) -> Value:
        if not _is_int(value):
            raise SpecError(f"expected an int, got {type(value).__name__}")
        return cast(int, value)

    def __str__(self) -> str:
        return f"int in {self.lo}..{self.hi}"


@dataclass(frozen=True)
class BoolSpec(Spec):
    size: int = field(init=False, default=2)

    @property
    def type(self) -> Type:
        return BOOL

    def values(self) -> Iterator[Value]:
        return iter((False, True))

    def random(self, rng: Random) -> Value:
        return rng.random() < 0.5

    def mutate(self, value: Value, rng: Random) -> Value | None:
        return not value

    def contains(self, value: Value) -> bool:
        return isinstance(value, bool)

    def normalize(self, value: Any) -> Value:
        if not isinstance(value, bool):
            raise SpecError(f"expected a bool, got {type(value).__name__}")
        return value

    def __str__(self) -> str:
        return "bool"


def check_alphabet(alphabet: str) -> None:
    """Refuse an empty alphabet or one that repeats a character."""
    if not isinstance(alphabet, str) or not alphabet:
        raise SpecError("the alphabet must be a non-empty string")
    repeated = sorted(ch for ch, n in Counter(alphabet).items() if n > 1)
    if repeated:
        raise SpecError(f"the alphabet repeats {format_value(repeated[0])}")


def check_lengths(min_len: int, max_len: int) -> None:
    """Refuse negative, reversed or too large length bounds."""
    if not (_is_int(min_len) and _is_int(max_len)) or min_len < 0:
        raise SpecError("lengths must be whole numbers from 0")
    if min_len > max_len:
        raise SpecError(f"empty length range {min_len}..{max_len}")
    if max_len > MAX_DOMAIN_LEN:
        raise SpecError(f"length {max_len:,} is longer than inputs may be ({MAX_DOMAIN_LEN:,})")


class _SeqSpec(Spec):
    """Strings and lists: sequences of `min_len..max_len` symbols out of `base` choices.

    Shorter first, then lexicographic; a uniform draw picks a length with probability
    proportional to how many sequences have it, so long ones dominate as they do in the count.
    """

    min_len: int
    max_len: int

    def _init_size(self, base: int) -> None:
        check_lengths(self.min_len, self.max_len)
        if base > 1 and self.max_len * math.log2(base) > MAX_DOMAIN_SIZE_BITS:
            raise SpecError(
                f"this domain is too large to describe: about 2^{int(self.max_len * math.log2(base)):,} values "
                f"(the limit is 2^{MAX_DOMAIN_SIZE_BITS:,})"
            )
        lo, hi = self.min_len, self.max_len
        size = hi - lo + 1 if base == 1 else (base ** (hi + 1) - base**lo) // (base - 1)
        object.__setattr__(self, "size", size)

    def _random_length(self, rng: Random, base: int) -> int:
        i = rng.randrange(self.size)  # the i-th sequence in order; find its length from the top
        upper = self.size
        for length in range(self.max_len, self.min_len, -1):
            upper -= base**length
            if i >= upper:
                return length
        return self.min_len

    def _edit(self, items: Sequence[Any], rng: Random, n_choices: int, swap: bool = False) -> str | None:
        """Pick an edit of `items` that keeps the length in range: change, swap, insert, delete."""
        ops = []
        if items and n_choices > 1:
            ops.append("change")
        if swap and len(items) >= 2 and any(item != items[0] for item in items):
            ops.append("swap")
        if len(items) < self.max_len:
            ops.append("insert")
        if len(items) > self.min_len:
            ops.append("delete")
        return rng.choice(ops) if ops else None

    def _lengths_text(self) -> str:
        return str(self.min_len) if self.min_len == self.max_len else f"{self.min_len}..{self.max_len}"


@dataclass(frozen=True)
class StrSpec(_SeqSpec):
    alphabet: str
    min_len: int
    max_len: int
    size: int = field(init=False)

    def __post_init__(self) -> None:
        check_alphabet(self.alphabet)
        self._init_size(len(self.alphabet))

    @property
    def type(self) -> Type:
        return STR

    def values(self) -> Iterator[Value]:
        for length in range(self.min_len, self.max_len + 1):
            for chars in itertools.product(self.alphabet, repeat=length):
                yield "".join(chars)

    def random(self, rng: Random) -> Value:
        length = self._random_length(rng, len(self.alphabet))
        return "".join(rng.choice(self.alphabet) for _ in range(length))

    def mutate(self, value: Value, rng: Random) -> Value | None:
        text = str(value)
        op = self._edit(text, rng, len(self.alphabet))
        if op is None:
            return None
        if op == "change":
            pos = rng.randrange(len(text))
            new = rng.choice([ch for ch in self.alphabet if ch != text[pos]])
            return text[:pos] + new + text[pos + 1 :]
        if op == "insert":
            pos = rng.randrange(len(text) + 1)
            return text[:pos] + rng.choice(self.alphabet) + text[pos:]
        pos = rng.randrange(len(text))
        return text[:pos] + text[pos + 1 :]

    def contains(self, value: Value) -> bool:
        return (
            isinstance(value, str)
            and self.min_len <= len(value) <= self.max_len
            and all(ch in self.alphabet for ch in value)
        )

    def normalize(self, value: Any) -> Value:
        if not isinstance(value, str):
            raise SpecError(f"expected a str, got {type(value).__name__}")
        return value

    def __str__(self) -> str:
        return f"str of {format_value(self.alphabet)} len {self._lengths_text()}"


@dataclass(frozen=True)
class ListSpec(_SeqSpec):
    elem: Spec
    min_len: int
    max_len: int
    size: int = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.elem, Spec):
            raise SpecError("a list's element domain must be a Spec")
        self._init_size(self.elem.size)

    @property
    def type(self) -> Type:
        return ListType(self.elem.type)

    def values(self) -> Iterator[Value]:
        elems = list(self.elem.values()) if self.max_len > 0 else []
        for length in range(self.min_len, self.max_len + 1):
            yield from itertools.product(elems, repeat=length)

    def random(self, rng: Random) -> Value:
        length = self._random_length(rng, self.elem.size)
        return tuple(self.elem.random(rng) for _ in range(length))

    def mutate(self, value: Value, rng: Random) -> Value | None:
        items = list(cast(tuple[Value, ...], value))
        op = self._edit(items, rng, self.elem.size, swap=True)
        if op is None:
            return None
        if op == "change":
            pos = rng.randrange(len(items))
            changed = self.elem.mutate(items[pos], rng)
            if changed is not None:
                items[pos] = changed
        elif op == "swap":
            i = rng.randrange(len(items))
            # not all elements are equal (checked above), so some element differs from items[i]
            j = rng.choice([k for k in range(len(items)) if items[k] != items[i]])
            items[i], items[j] = items[j], items[i]
        elif op == "insert":
            items.insert(rng.randrange(len(items) + 1), self.elem.random(rng))
        else:
            del items[rng.randrange(len(items))]
        return tuple(items)

    def contains(self, value: Value) -> bool:
        return (
            isinstance(value, tuple)
            and self.min_len <= len(value) <= self.max_len
            and all(self.elem.contains(v) for v in value)
        )

    def normalize(self, value: Any) -> Value:
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"expected a list, got {type(value).__name__}")
        return tuple(self.elem.normalize(v) for v in value)

    def __str__(self) -> str:
        return f"list[{self.elem}] len {self._lengths_text()}"


# --- the product domain ------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The inputs a comparison runs on: the whole domain, or a uniform sample of it.

    `size` is the exact number of inputs in the domain when known (always when enumerated);
    `attempts` counts random draws (sampling only) and `acceptance` the share the `where`
    filter kept, so `acceptance * raw_size` estimates the domain's size.
    """

    inputs: tuple[Assignment, ...]
    enumerated: bool
    raw_size: int
    size: int | None
    seed: int | None
    attempts: int = 0
    accepted: int = 0

    @property
    def acceptance(self) -> float:
        return self.accepted / self.attempts if self.attempts else 1.0

    def describe(self) -> str:
        if self.enumerated:
            return f"all {len(self.inputs):,} inputs"
        return (
            f"a uniform random sample of {len(self.inputs):,} of {_size_text(self.raw_size)} inputs (seed {self.seed})"
        )


def _size_text(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"about 2^{n.bit_length() - 1}"


class Domain:
    """The inputs of a theory: the product of its input specs, filtered by `where`.

    `where` is the theory's filter on one assignment (None: no filter); it may raise a
    TheoryEvalError, which is passed on (a filter that fails on an input is a bug in the theory).
    """

    def __init__(
        self,
        inputs: Sequence[tuple[str, Spec]],
        where: Callable[[Assignment], bool] | None = None,
    ) -> None:
        self.names: tuple[str, ...] = tuple(name for name, _ in inputs)
        self.specs: tuple[Spec, ...] = tuple(spec for _, spec in inputs)
        if len(set(self.names)) != len(self.names):
            raise SpecError("input names must be distinct")
        self.raw_size: int = math.prod(spec.size for spec in self.specs)  # bounded by the parser
        self._where = where
        self._count: int | None = None if where is not None else self.raw_size

    @property
    def has_filter(self) -> bool:
        return self._where is not None

    @property
    def size(self) -> int | None:
        """Exact number of inputs: counted by enumeration when filtered and small enough, else None."""
        return self.count()

    def count(self, limit: int = DEFAULT_ENUMERATION_LIMIT) -> int | None:
        """Exact number of inputs passing `where` when raw_size <= limit (cached), else None."""
        if self._count is None and self.raw_size <= limit:
            self._count = sum(1 for _ in self.enumerate(limit))
        return self._count

    def accepts(self, assignment: Assignment) -> bool:
        """Whether the `where` filter keeps this (well-typed) assignment."""
        return self._where is None or self._where(assignment)

    def enumerate(self, limit: int = DEFAULT_ENUMERATION_LIMIT) -> Iterator[Assignment]:
        """Every input, in order (first input slowest). Refuses domains larger than `limit`."""
        if self.raw_size > limit:
            raise TheoryError(
                f"the domain has {_size_text(self.raw_size)} inputs, more than the enumeration limit "
                f"of {limit:,}; sample it instead"
            )
        names = self.names
        for values in itertools.product(*(list(spec.values()) for spec in self.specs)):
            assignment = dict(zip(names, values, strict=True))
            if self.accepts(assignment):
                yield assignment

    def normalize(self, assignment: Mapping[str, Any]) -> Assignment:
        """A well-formed assignment (lists as tuples), or InputError naming the problem."""
        if not isinstance(assignment, Mapping):
            raise InputError(f"an input is a mapping from input names to values, got {type(assignment).__name__}")
        extra = [k for k in assignment if k not in self.names]
        if extra:
            raise InputError(f"unknown input {extra[0]!r} (the inputs are {', '.join(self.names)})")
        out: Assignment = {}
        for name, spec in zip(self.names, self.specs, strict=True):
            if name not in assignment:
                raise InputError(f"missing input {name!r}")
            try:
                out[name] = spec.normalize(assignment[name])
            except SpecError as e:
                raise InputError(f"input {name!r}: {e}") from None
        return out

    def contains(self, assignment: Mapping[str, Any]) -> bool:
        """Whether an assignment is in the domain (right names, types, ranges, and `where`)."""
        try:
            x = self.normalize(assignment)
        except InputError:
            return False
        if not all(spec.contains(x[name]) for name, spec in zip(self.names, self.specs, strict=True)):
            return False
        return self.accepts(x)

    def draw(self, rng: Random) -> Assignment:
        """One input of the unfiltered product, uniformly (`where` not applied)."""
        return {name: spec.random(rng) for name, spec in zip(self.names, self.specs, strict=True)}

    def sample(self, n: int, seed: int = 0) -> list[Assignment]:
        """n distinct inputs drawn uniformly (without replacement) with this seed.

        When the domain has at most n inputs, all of them are returned, in order.
        """
        return list(self._sample(n, seed).inputs)

    def _sample(self, n: int, seed: int) -> Selection:
        rng = Random(seed)
        if n <= 0:
            return Selection((), False, self.raw_size, self._count, seed)
        if self.raw_size <= DEFAULT_ENUMERATION_LIMIT and (n >= self.raw_size or self.raw_size <= 4 * n):
            pool = list(self.enumerate(self.raw_size))
            self._count = len(pool)
            if n >= len(pool):
                return Selection(tuple(pool), True, self.raw_size, len(pool), seed)
            return Selection(tuple(rng.sample(pool, n)), False, self.raw_size, len(pool), seed)
        budget = max(MIN_SAMPLE_ATTEMPTS, SAMPLE_ATTEMPTS_PER_INPUT * n)
        seen: set[tuple[Value, ...]] = set()
        chosen: list[Assignment] = []
        attempts = accepted = 0
        while len(chosen) < n:
            if attempts >= budget:
                raise TheoryError(
                    f"the `where` filter kept only {len(chosen):,} of {attempts:,} random inputs; "
                    "narrow the input ranges so that most inputs pass it"
                )
            attempts += 1
            x = self.draw(rng)
            key = tuple(x.values())
            if key in seen:
                continue
            seen.add(key)
            if self.accepts(x):
                accepted += 1
                chosen.append(x)
        return Selection(tuple(chosen), False, self.raw_size, self._count, seed, attempts, accepted)

    def select(self, limit: int = DEFAULT_ENUMERATION_LIMIT, seed: int = 0) -> Selection:
        """All inputs when raw_size <= limit, else a uniform sample of `limit` of them."""
        if self.raw_size <= limit:
            inputs = tuple(self.enumerate(limit))
            self._count = len(inputs)
            return Selection(inputs, True, self.raw_size, len(inputs), None)
        return self._sample(limit, seed)

    def mutate(self, assignment: Mapping[str, Any], rng: Random) -> Assignment | None:
        """A neighbouring input: one input changed a little, still in the domain (and `where`).

        Ints move by ±1, by a power of two, or jump; bools flip; strings and lists change,
        insert or delete one element (lists may also swap two). Returns None when no
        neighbour passing `where` was found in MUTATE_ATTEMPTS tries.
        """
        x = self.normalize(assignment)
        movable = [i for i, spec in enumerate(self.specs) if spec.size > 1]
        if not movable:
            return None
        for _ in range(MUTATE_ATTEMPTS):
            i = rng.choice(movable)
            name, spec = self.names[i], self.specs[i]
            new = spec.mutate(x[name], rng)
            if new is None or new == x[name] or not spec.contains(new):
                continue
            candidate = dict(x)
            candidate[name] = new
            if self.accepts(candidate):
                return candidate
        return None

    def describe(self) -> str:
        parts = ", ".join(f"{name}: {spec}" for name, spec in zip(self.names, self.specs, strict=True))
        size = self._count
        count = f"{_size_text(size)} inputs" if size is not None else f"at most {_size_text(self.raw_size)} inputs"
        return f"{parts} ({count}{', filtered by where' if self.has_filter else ''})"
