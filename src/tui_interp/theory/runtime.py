"""Run-time guards shared by the evaluator and the built-in functions: the step budget and limits.

Every operation charges the Budget for the work it is about to do *before* doing it, and checks
the size of what it builds, so a theory can never make the process hang or run out of memory.
One step is about the cost of one loop iteration (a fraction of a microsecond): scanning,
comparing or copying an element is a step (nested strs and lists count in full), sorting n
elements costs about n·log2(n) comparisons, multiplying big ints costs by their words.
Failures are EvalFailure, which the evaluator turns into a TheoryEvalError at the expression.
"""

from __future__ import annotations

from tui_interp.theory.limits import MAX_INT_BITS, MAX_LIST_LEN, MAX_STEPS, MAX_STR_LEN
from tui_interp.theory.render import Value, render_value


class EvalFailure(Exception):
    """An operation failed on these values; the evaluator adds the span and the input."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Budget:
    """The work one expression's evaluation may do: `steps` so far, at most MAX_STEPS."""

    __slots__ = ("steps",)

    def __init__(self) -> None:
        self.steps = 0

    @property
    def left(self) -> int:
        return MAX_STEPS - self.steps

    def charge(self, n: int) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise EvalFailure(f"evaluation is too long: more than {MAX_STEPS:,} steps")

    def charge_size(self, value: Value, times: int = 1) -> None:
        """Charge `times` × the size of value (see size_of), measured no further than needed."""
        self.charge(size_of(value, self.left // times + 1) * times)


def size_of(value: Value, limit: int = MAX_STEPS) -> int:
    """The work of scanning, comparing or copying a value element by element: its length plus
    the sizes of nested strs and lists (1 for a scalar). Counting stops once past `limit`, so
    measuring costs no more than the charge it leads to."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, tuple):
        return 1
    total = len(value)
    if value and isinstance(value[0], (str, tuple)):
        for item in value:
            if total > limit:
                break
            total += size_of(item, limit - total)
    return total


def text_size(value: Value) -> int:
    """At least len(render_value(value)), found without rendering (ints by their bit length).
    Renderable values are scalars and lists of scalars, so this reads each element once."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return value.bit_length() * 30103 // 100000 + 2
    return max(len(value) - 1, 0) + sum(text_size(item) for item in value)


def render(budget: Budget, value: Value) -> str:
    """render_value, refused before it is built when too long, and charged for its length."""
    check_len(budget, text_size(value), "string")
    return render_value(value)


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


def _words(n: int) -> int:
    return (n.bit_length() >> 6) + 1


def int_mul(budget: Budget, a: int, b: int) -> int:
    budget.charge(_words(a) * _words(b) // 200)
    return check_int(a * b)


def int_pow(budget: Budget, a: int, b: int) -> int:
    if b < 0:
        raise EvalFailure(f"negative exponent {b}: powers must be whole numbers")
    magnitude = abs(a)
    if magnitude >= 2 and b * (magnitude.bit_length() - 1) >= MAX_INT_BITS:
        raise too_large(b * (magnitude.bit_length() - 1) + 1)
    budget.charge((b * magnitude.bit_length() >> 6) ** 2 // 500)
    return check_int(a**b)


def int_mod_pow(budget: Budget, a: int, b: int, m: int) -> int:
    """pow(a, b, m): about b's bit length squarings of numbers of m's size."""
    if m == 0:
        raise EvalFailure("pow() modulus cannot be 0")
    budget.charge(b.bit_length() * _words(m) ** 2 // 32)
    try:
        return pow(a, b, m)
    except ValueError:
        raise EvalFailure(f"pow(): {a} has no inverse modulo {m}") from None


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


def int_divmod(budget: Budget, a: int, b: int, op: str) -> int:
    if b == 0:
        raise EvalFailure("division by zero" if op == "//" else "modulo by zero")
    budget.charge(_words(a) * _words(b) // 200)
    return a // b if op == "//" else a % b


def repeat(budget: Budget, seq: str | tuple[Value, ...], n: int) -> str | tuple[Value, ...]:
    """`seq * n` for a string or list, refused before it is built when too long."""
    if n <= 0:
        return seq[:0]
    check_len(budget, len(seq) * n, "string" if isinstance(seq, str) else "list")
    return seq * n


def concat(budget: Budget, a: str | tuple[Value, ...], b: str | tuple[Value, ...]) -> str | tuple[Value, ...]:
    check_len(budget, len(a) + len(b), "string" if isinstance(a, str) else "list")
    return a + b  # type: ignore[operator]  # the checker guarantees a and b have the same kind
