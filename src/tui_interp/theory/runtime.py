"""Run-time guards shared by the evaluator and the built-in functions.

Every operation that can grow a value or loop checks its limit *before* doing the work, so a
theory can never make the process hang or run out of memory; failures are EvalFailure, which
the evaluator turns into a TheoryEvalError pointing at the expression that failed.
"""

from __future__ import annotations

from tui_interp.theory.limits import MAX_INT_BITS, MAX_LIST_LEN, MAX_STEPS, MAX_STR_LEN
from tui_interp.theory.render import Value


class EvalFailure(Exception):
    """An operation failed on these values; the evaluator adds the span and the input."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Budget:
    """The work one evaluation may do (MAX_STEPS); every loop and every value built charges it."""

    __slots__ = ("steps",)

    def __init__(self) -> None:
        self.steps = 0

    def charge(self, n: int) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise EvalFailure(f"evaluation is too long: more than {MAX_STEPS:,} steps")


def too_large(bits: int) -> EvalFailure:
    return EvalFailure(f"int too large: {bits:,} bits (ints are limited to {MAX_INT_BITS:,} bits)")


def check_int(value: int) -> int:
    bits = value.bit_length()
    if bits > MAX_INT_BITS:
        raise too_large(bits)
    return value


def check_len(budget: Budget, length: int, what: str) -> None:
    """Refuse (before building it) a str or list longer than its limit; charge its length."""
    limit = MAX_STR_LEN if what == "string" else MAX_LIST_LEN
    if length > limit:
        raise EvalFailure(f"{what} too long: {length:,} elements (the limit is {limit:,})")
    budget.charge(length)


def seq_kind(value: object) -> str:
    return "string" if isinstance(value, str) else "list"


def int_pow(a: int, b: int) -> int:
    if b < 0:
        raise EvalFailure(f"negative exponent {b}: powers must be whole numbers")
    magnitude = abs(a)
    if magnitude >= 2 and b * (magnitude.bit_length() - 1) >= MAX_INT_BITS:
        raise too_large(b * (magnitude.bit_length() - 1) + 1)
    return check_int(a**b)


def int_lshift(a: int, b: int) -> int:
    if b < 0:
        raise EvalFailure(f"negative shift count {b}")
    if a != 0 and a.bit_length() + b > MAX_INT_BITS:
        raise too_large(a.bit_length() + b)
    return a << b


def int_rshift(a: int, b: int) -> int:
    if b < 0:
        raise EvalFailure(f"negative shift count {b}")
    return a >> min(b, MAX_INT_BITS + 1)


def int_floordiv(a: int, b: int) -> int:
    if b == 0:
        raise EvalFailure("division by zero")
    return a // b


def int_mod(a: int, b: int) -> int:
    if b == 0:
        raise EvalFailure("modulo by zero")
    return a % b


def repeat(budget: Budget, seq: str | tuple[Value, ...], n: int) -> str | tuple[Value, ...]:
    """`seq * n` for a string or list, refused before it is built when too long."""
    if n <= 0:
        return seq[:0]
    check_len(budget, len(seq) * n, seq_kind(seq))
    return seq * n


def concat(budget: Budget, a: str | tuple[Value, ...], b: str | tuple[Value, ...]) -> str | tuple[Value, ...]:
    check_len(budget, len(a) + len(b), seq_kind(a))
    return a + b  # type: ignore[operator]  # the checker guarantees a and b have the same kind
