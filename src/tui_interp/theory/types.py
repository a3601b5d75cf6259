"""Types of the theory language: int, bool, str and list[T].

Types say what kind of value an expression has, nothing more: how large an int or a list may
grow is the evaluator's business (its limits and step budget refuse what is too large when it
happens, at the expression that did it). `[]` has type list[nothing] (EmptyType elements),
which joins with any list; an expression with an error has ErrorType, which silences
follow-on errors.
"""

from __future__ import annotations

from dataclasses import dataclass


class Type:
    """Base of every type."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class IntType(Type):
    pass


@dataclass(frozen=True, slots=True)
class BoolType(Type):
    pass


@dataclass(frozen=True, slots=True)
class StrType(Type):
    pass


@dataclass(frozen=True, slots=True)
class ListType(Type):
    elem: Type


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
    if isinstance(t, ListType):
        return f"list[{describe(t.elem)}]" if not isinstance(t.elem, EmptyType) else "list"
    names = {IntType: "int", BoolType: "bool", StrType: "str", EmptyType: "nothing"}
    return names.get(type(t), "unknown")


def is_poison(t: Type) -> bool:
    """Error and Empty types accept anything silently."""
    return isinstance(t, (ErrorType, EmptyType))


def join(a: Type, b: Type) -> Type | None:
    """The type holding both, or None when their kinds differ."""
    if isinstance(a, ErrorType) or isinstance(b, ErrorType):
        return ERROR
    if isinstance(a, EmptyType):
        return b
    if isinstance(b, EmptyType):
        return a
    if isinstance(a, ListType) and isinstance(b, ListType):
        elem = join(a.elem, b.elem)
        return None if elem is None else ListType(elem)
    return a if type(a) is type(b) else None


def compatible(a: Type, b: Type) -> bool:
    return join(a, b) is not None


def is_orderable(t: Type) -> bool:
    """Types `<`, `sorted`, `min` and `max` accept: int, str, and lists of those."""
    if is_poison(t) or isinstance(t, (IntType, StrType)):
        return True
    return isinstance(t, ListType) and is_orderable(t.elem)


def is_scalar(t: Type) -> bool:
    return is_poison(t) or isinstance(t, (IntType, BoolType, StrType))


def is_renderable(t: Type) -> bool:
    """Types a prompt placeholder or `expect` can turn into text: scalars and lists of scalars."""
    return is_scalar(t) or (isinstance(t, ListType) and is_scalar(t.elem))
