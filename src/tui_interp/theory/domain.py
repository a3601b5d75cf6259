"""Input domains: what values a theory's inputs range over, enumerated, sampled or mutated.

Each `input` line declares a Spec:

    int in A..B                 every int from A to B inclusive
    bool                        False, True
    str of "01" len 1..12       strings over the alphabet, of each length from 1 to 12
    list[SPEC] len 8            lists of exactly 8 elements of SPEC (or `len 1..8`)

The Domain is the product of the inputs' specs (the first input varies slowest), filtered
by the `where` lines. Sizes are exact Python ints, however large.

Orders are deterministic: ints ascending, False before True, strings and lists shortest
first then lexicographic (alphabet order as written, element order of the element spec).
Sampling is uniform over the domain: every input is equally likely, so long strings and
lists dominate a domain with a range of lengths, as they do in the count.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any

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
from tui_interp.theory.render import Value, format_input, format_value
from tui_interp.theory.types import BOOL, IntType, ListType, StrType, Type

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
        """The checker's type of these values (with their bounds)."""

    @abstractmethod
    def values(self) -> Iterator[Value]:
        """Every value, in the deterministic order (only sensible for small specs)."""

    @abstractmethod
    def at(self, i: int) -> Value:
        """The i-th value of `values()`, for 0 <= i < size."""

    @abstractmethod
    def index(self, value: Value) -> int:
        """The position of a value in `values()` (the value must be contained)."""

    @abstractmethod
    def random(self, rng: Random) -> Value:
        """A value drawn uniformly."""

    @abstractmethod
    def mutate(self, value: Value, rng: Random) -> Value | None:
        """A different value near this one, or None when the spec has a single value."""

    @abstractmethod
    def neighbours(self, value: Value) -> Iterator[Value]:
        """The values one smallest step away (ints ±1, a flipped bool, one character or
        element changed), in a deterministic order."""

    @abstractmethod
    def contains(self, value: Value) -> bool:
        """Whether a (normalised) value is in this spec."""

    @abstractmethod
    def normalize(self, value: Any) -> Value:
        """The value with lists as tuples; raises SpecError when its type is wrong."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Value) -> int:
    if not _is_int(value):
        raise SpecError(f"expected an int, got {type(value).__name__}")
    return int(value)  # type: ignore[arg-type]  # _is_int checked it


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
        for bound in (self.lo, self.hi):
            if bound.bit_length() > MAX_INT_BITS:
                raise SpecError(f"int bound is too large (ints are limited to {MAX_INT_BITS:,} bits)")
        object.__setattr__(self, "size", self.hi - self.lo + 1)

    @property
    def type(self) -> Type:
        return IntType(self.lo, self.hi)

    def values(self) -> Iterator[Value]:
        return iter(range(self.lo, self.hi + 1))

    def at(self, i: int) -> Value:
        return self.lo + i

    def index(self, value: Value) -> int:
        return _as_int(value) - self.lo

    def random(self, rng: Random) -> Value:
        return rng.randint(self.lo, self.hi)

    def mutate(self, value: Value, rng: Random) -> Value | None:
        if self.size == 1 or not _is_int(value):
            return None
        v = _as_int(value)
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

    def neighbours(self, value: Value) -> Iterator[Value]:
        v = _as_int(value)
        return iter([n for n in (v - 1, v + 1) if self.lo <= n <= self.hi])

    def contains(self, value: Value) -> bool:
        return _is_int(value) and self.lo <= value <= self.hi  # type: ignore[operator]

    def normalize(self, value: Any) -> Value:
        if not _is_int(value):
            raise SpecError(f"expected an int, got {type(value).__name__}")
        return value

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

    def at(self, i: int) -> Value:
        return bool(i)

    def index(self, value: Value) -> int:
        return int(bool(value))

    def random(self, rng: Random) -> Value:
        return rng.random() < 0.5

    def mutate(self, value: Value, rng: Random) -> Value | None:
        return not value

    def neighbours(self, value: Value) -> Iterator[Value]:
        return iter((not value,))

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


class _Lengths:
    """Sequences of lengths min_len..max_len over `base` symbols: counts in closed form.

    No table of per-length counts is kept (they can be enormous): the number of sequences
    shorter than a length is computed when needed, and lengths are found by bisection.
    """

    __slots__ = ("base", "max_len", "min_len", "size")

    def __init__(self, base: int, min_len: int, max_len: int) -> None:
        if base > 1 and max_len * math.log2(base) > MAX_DOMAIN_SIZE_BITS:
            raise SpecError(
                f"this domain is too large to describe: about 2^{int(max_len * math.log2(base)):,} values "
                f"(the limit is 2^{MAX_DOMAIN_SIZE_BITS:,})"
            )
        self.base = base
        self.min_len = min_len
        self.max_len = max_len
        self.size = self.below(max_len + 1)

    def below(self, length: int) -> int:
        """How many sequences are shorter than `length` (and at least min_len long)."""
        if length <= self.min_len:
            return 0
        if self.base == 1:
            return length - self.min_len
        return (self.base**length - self.base**self.min_len) // (self.base - 1)

    def bucket(self, i: int) -> tuple[int, int]:
        """(length, index among sequences of that length) of the i-th sequence."""
        lo, hi = self.min_len, self.max_len
        while lo < hi:  # smallest length L with below(L + 1) > i
            mid = (lo + hi) // 2
            if self.below(mid + 1) > i:
                hi = mid
            else:
                lo = mid + 1
        return lo, i - self.below(lo)


def _digits(i: int, base: int, length: int) -> list[int]:
    out = [0] * length
    for pos in range(length - 1, -1, -1):
        i, out[pos] = divmod(i, base)
    return out


@dataclass(frozen=True)
class StrSpec(Spec):
    alphabet: str
    min_len: int
    max_len: int
    size: int = field(init=False)
    _lengths: _Lengths = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_alphabet(self.alphabet)
        check_lengths(self.min_len, self.max_len)
        lengths = _Lengths(len(self.alphabet), self.min_len, self.max_len)
        object.__setattr__(self, "_lengths", lengths)
        object.__setattr__(self, "size", lengths.size)

    @property
    def type(self) -> Type:
        return StrType(self.min_len, self.max_len, frozenset(self.alphabet))

    def values(self) -> Iterator[Value]:
        for length in range(self.min_len, self.max_len + 1):
            for chars in itertools.product(self.alphabet, repeat=length):
                yield "".join(chars)

    def at(self, i: int) -> Value:
        length, rest = self._lengths.bucket(i)
        return "".join(self.alphabet[d] for d in _digits(rest, len(self.alphabet), length))

    def index(self, value: Value) -> int:
        text = str(value)
        before = self._lengths.below(len(text))
        rest = 0
        for ch in text:
            rest = rest * len(self.alphabet) + self.alphabet.index(ch)
        return before + rest

    def random(self, rng: Random) -> Value:
        length = self._lengths.bucket(rng.randrange(self.size))[0]
        return "".join(rng.choice(self.alphabet) for _ in range(length))

    def mutate(self, value: Value, rng: Random) -> Value | None:
        text = str(value)
        ops = []
        if len(self.alphabet) > 1 and text:
            ops.append("replace")
        if len(text) < self.max_len:
            ops.append("insert")
        if len(text) > self.min_len:
            ops.append("delete")
        if not ops:
            return None
        op = rng.choice(ops)
        if op == "replace":
            pos = rng.randrange(len(text))
            new = rng.choice([ch for ch in self.alphabet if ch != text[pos]])
            return text[:pos] + new + text[pos + 1 :]
        if op == "insert":
            pos = rng.randrange(len(text) + 1)
            return text[:pos] + rng.choice(self.alphabet) + text[pos:]
        pos = rng.randrange(len(text))
        return text[:pos] + text[pos + 1 :]

    def neighbours(self, value: Value) -> Iterator[Value]:
        text = str(value)
        for pos, old in enumerate(text):
            for ch in self.alphabet:
                if ch != old:
                    yield text[:pos] + ch + text[pos + 1 :]

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
        return f"str of {format_value(self.alphabet)} len {_lengths(self.min_len, self.max_len)}"


def _lengths(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}..{hi}"


@dataclass(frozen=True)
class ListSpec(Spec):
    elem: Spec
    min_len: int
    max_len: int
    size: int = field(init=False)
    _lengths: _Lengths = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.elem, Spec):
            raise SpecError("a list's element domain must be a Spec")
        check_lengths(self.min_len, self.max_len)
        lengths = _Lengths(self.elem.size, self.min_len, self.max_len)
        object.__setattr__(self, "_lengths", lengths)
        object.__setattr__(self, "size", lengths.size)

    @property
    def type(self) -> Type:
        return ListType(self.elem.type, self.min_len, self.max_len)

    def values(self) -> Iterator[Value]:
        elems = list(self.elem.values()) if self.max_len > 0 else []
        for length in range(self.min_len, self.max_len + 1):
            yield from itertools.product(elems, repeat=length)

    def at(self, i: int) -> Value:
        length, rest = self._lengths.bucket(i)
        return tuple(self.elem.at(d) for d in _digits(rest, self.elem.size, length))

    def index(self, value: Value) -> int:
        items = tuple(value)  # type: ignore[arg-type]
        before = self._lengths.below(len(items))
        rest = 0
        for item in items:
            rest = rest * self.elem.size + self.elem.index(item)
        return before + rest

    def random(self, rng: Random) -> Value:
        length = self._lengths.bucket(rng.randrange(self.size))[0]
        return tuple(self.elem.random(rng) for _ in range(length))

    def mutate(self, value: Value, rng: Random) -> Value | None:
        items = list(value)  # type: ignore[arg-type]
        ops = []
        if items and self.elem.size > 1:
            ops.append("change")
        if len(items) >= 2 and any(item != items[0] for item in items):
            ops.append("swap")
        if len(items) < self.max_len:
            ops.append("insert")
        if len(items) > self.min_len:
            ops.append("delete")
        if not ops:
            return None
        op = rng.choice(ops)
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

    def neighbours(self, value: Value) -> Iterator[Value]:
        items = tuple(value)  # type: ignore[arg-type]
        for pos, old in enumerate(items):
            for new in self.elem.neighbours(old):
                yield items[:pos] + (new,) + items[pos + 1 :]

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
        return f"list[{self.elem}] len {_lengths(self.min_len, self.max_len)}"


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
        raw_size = 1
        for spec in self.specs:
            raw_size *= spec.size
            if raw_size.bit_length() > MAX_DOMAIN_SIZE_BITS + 1:
                raise SpecError(f"the inputs together are too many: more than 2^{MAX_DOMAIN_SIZE_BITS:,} combinations")
        self.raw_size: int = raw_size
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

    def raw_at(self, i: int) -> Assignment:
        """The i-th assignment of the unfiltered product (0 <= i < raw_size), for sharding."""
        if not 0 <= i < self.raw_size:
            raise InputError(f"index {i} is outside the domain (0..{self.raw_size - 1})")
        values: list[Value] = []
        for spec in reversed(self.specs):
            i, rest = divmod(i, spec.size)
            values.append(spec.at(rest))
        return dict(zip(self.names, reversed(values), strict=True))

    def raw_index(self, assignment: Mapping[str, Any]) -> int:
        """The inverse of raw_at (the assignment must be in the unfiltered product)."""
        x = self.normalize(assignment)
        if not all(spec.contains(x[name]) for name, spec in zip(self.names, self.specs, strict=True)):
            raise InputError(f"{format_input(x)} is not in the domain")
        i = 0
        for name, spec in zip(self.names, self.specs, strict=True):
            i = i * spec.size + spec.index(x[name])
        return i

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

    def _draw(self, rng: Random) -> Assignment:
        return {name: spec.random(rng) for name, spec in zip(self.names, self.specs, strict=True)}

    def random(self, rng: Random) -> Assignment:
        """One input drawn uniformly from the (filtered) domain."""
        attempts = MIN_SAMPLE_ATTEMPTS
        for _ in range(attempts):
            x = self._draw(rng)
            if self.accepts(x):
                return x
        raise TheoryError(self._rejection_message(0, attempts))

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
                raise TheoryError(self._rejection_message(len(chosen), attempts))
            attempts += 1
            x = self._draw(rng)
            key = tuple(x.values())
            if key in seen:
                continue
            seen.add(key)
            if self.accepts(x):
                accepted += 1
                chosen.append(x)
        return Selection(tuple(chosen), False, self.raw_size, self._count, seed, attempts, accepted)

    def _rejection_message(self, kept: int, attempts: int) -> str:
        return (
            f"the `where` filter kept only {kept:,} of {attempts:,} random inputs; "
            "narrow the input ranges so that most inputs pass it"
        )

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

    def neighbours(self, assignment: Mapping[str, Any], limit: int = 10_000) -> list[Assignment]:
        """Every input one smallest step away (see Spec.neighbours) that passes `where`.

        Deterministic (input order, then each spec's order); at most `limit` of them.
        For local search around an interesting input (a counterexample, a low margin).
        """
        x = self.normalize(assignment)
        out: list[Assignment] = []
        for name, spec in zip(self.names, self.specs, strict=True):
            for new in spec.neighbours(x[name]):
                if len(out) >= limit:
                    return out
                candidate = dict(x)
                candidate[name] = new
                if spec.contains(new) and self.accepts(candidate):
                    out.append(candidate)
        return out

    def describe(self) -> str:
        parts = ", ".join(f"{name}: {spec}" for name, spec in zip(self.names, self.specs, strict=True))
        size = self._count
        count = f"{_size_text(size)} inputs" if size is not None else f"at most {_size_text(self.raw_size)} inputs"
        return f"{parts} ({count}{', filtered by where' if self.has_filter else ''})"
