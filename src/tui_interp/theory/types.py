"""Types of the theory language: int, bool, str, list[T], with the bounds the checker knows.

Bounds are facts the checker can prove (an input `int in 0..112` has type int with lo=0,
hi=112); `None` means unknown. They let the checker refuse work that must exceed a limit
(`10 ** 10 ** 10`, `"x" * 10 ** 9`) before anything runs. Two types of the same kind are
compatible whatever their bounds: bounds never make a program ill-typed.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_interp.theory.limits import MAX_INT_BITS


class Type:
    """Base of every type."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class IntType(Type):
    lo: int | None = None
    hi: int | None = None


@dataclass(frozen=True, slots=True)
class BoolType(Type):
    pass


@dataclass(frozen=True, slots=True)
class StrType(Type):
    """A string; `alphabet` (when known) holds every character it can contain."""

    min_len: int = 0
    max_len: int | None = None
    alphabet: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class ListType(Type):
    elem: Type
    min_len: int = 0
    max_len: int | None = None


@dataclass(frozen=True, slots=True)
class EmptyType(Type):
    """The element type of `[]`: compatible with every element type."""


@dataclass(frozen=True, slots=True)
class ErrorType(Type):
    """The type of an expression that already has an error: silences follow-on errors."""


INT = IntType()
BOOL = BoolType()
STR = StrType()
ERROR = ErrorType()
EMPTY = EmptyType()


def describe(t: Type) -> str:
    """The name a user reads in messages: `int`, `str`, `list[int]`, ..."""
    if isinstance(t, IntType):
        return "int"
    if isinstance(t, BoolType):
        return "bool"
    if isinstance(t, StrType):
        return "str"
    if isinstance(t, ListType):
        return f"list[{describe(t.elem)}]" if not isinstance(t.elem, EmptyType) else "list"
    if isinstance(t, EmptyType):
        return "nothing"
    return "unknown"


def is_poison(t: Type) -> bool:
    """Error and Empty types accept anything silently."""
    return isinstance(t, (ErrorType, EmptyType))


def join(a: Type, b: Type) -> Type | None:
    """The smallest type holding both, or None when their kinds differ."""
    if isinstance(a, ErrorType) or isinstance(b, ErrorType):
        return ERROR
    if isinstance(a, EmptyType):
        return b
    if isinstance(b, EmptyType):
        return a
    if isinstance(a, IntType) and isinstance(b, IntType):
        return IntType(_min(a.lo, b.lo), _max(a.hi, b.hi))
    if isinstance(a, BoolType) and isinstance(b, BoolType):
        return BOOL
    if isinstance(a, StrType) and isinstance(b, StrType):
        alphabet = a.alphabet | b.alphabet if a.alphabet is not None and b.alphabet is not None else None
        return StrType(min(a.min_len, b.min_len), _max(a.max_len, b.max_len), alphabet)
    if isinstance(a, ListType) and isinstance(b, ListType):
        elem = join(a.elem, b.elem)
        if elem is None:
            return None
        return ListType(elem, min(a.min_len, b.min_len), _max(a.max_len, b.max_len))
    return None


def compatible(a: Type, b: Type) -> bool:
    return join(a, b) is not None


def is_orderable(t: Type) -> bool:
    """Types `<`, `sorted`, `min` and `max` accept: int, str, and lists of those."""
    if is_poison(t) or isinstance(t, (IntType, StrType)):
        return True
    return isinstance(t, ListType) and is_orderable(t.elem)


def is_scalar_renderable(t: Type) -> bool:
    return is_poison(t) or isinstance(t, (IntType, BoolType, StrType))


def is_renderable(t: Type) -> bool:
    """Types a prompt placeholder or `expect` can turn into text: scalars and lists of scalars."""
    if is_scalar_renderable(t):
        return True
    return isinstance(t, ListType) and is_scalar_renderable(t.elem)


def _min(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else min(a, b)


def _max(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else max(a, b)


def int_fits(value: int) -> bool:
    """Whether an int is within MAX_INT_BITS."""
    return value.bit_length() <= MAX_INT_BITS


def bounded_int(lo: int | None, hi: int | None) -> IntType:
    """An IntType, forgetting any bound too large to be a value anyway."""
    if lo is not None and not int_fits(lo):
        lo = None
    if hi is not None and not int_fits(hi):
        hi = None
    return IntType(lo, hi)


def digits_len(t: IntType) -> int | None:
    """Most characters `str(x)` can have for x of type t."""
    if t.lo is None or t.hi is None:
        return None
    return max(len(str(abs(t.lo))) + (t.lo < 0), len(str(abs(t.hi))) + (t.hi < 0))


DIGITS = frozenset("0123456789-")
