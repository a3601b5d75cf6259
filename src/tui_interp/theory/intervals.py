"""Interval arithmetic on int bounds, for the checker.

Each function takes the operand types and returns the result type and a list of Issues:
certain ones (the operation must fail or exceed a limit for every input: an error) and
possible ones (it may, for some inputs: a warning). Bounds are over-approximations, so a
certain issue is always real. Nothing here computes a number larger than 2 * MAX_INT_BITS bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tui_interp.theory.limits import MAX_INT_BITS
from tui_interp.theory.types import IntType, bounded_int

LIMIT = (1 << MAX_INT_BITS) - 1
"""Largest int magnitude a value may have."""

_BIG = 2 * MAX_INT_BITS  # bounds larger than this many bits are not computed exactly


@dataclass(frozen=True, slots=True)
class Issue:
    certain: bool
    message: str


Result = tuple[IntType, list[Issue]]
UNKNOWN = IntType()


def _too_large_message(bits: int) -> str:
    shown = f"{bits:,}" if bits < 10**15 else f"2^{bits.bit_length() - 1}"
    return f"this int is too large: about {shown} bits (ints are limited to {MAX_INT_BITS:,} bits)"


def _power_bits(base: int, exponent: int) -> int:
    """About how many bits base ** exponent has (base >= 2), without computing it."""
    if exponent.bit_length() < 900:
        return int(exponent * math.log2(base))
    return exponent * (base.bit_length() - 1)


def finish(lo: int | None, hi: int | None) -> Result:
    """Classify bounds against the int limit and return the (clamped) type."""
    if lo is not None and lo > LIMIT:
        return UNKNOWN, [Issue(True, _too_large_message(lo.bit_length()))]
    if hi is not None and hi < -LIMIT:
        return UNKNOWN, [Issue(True, _too_large_message(hi.bit_length()))]
    issues = []
    if (hi is not None and hi > LIMIT) or (lo is not None and lo < -LIMIT):
        issues.append(Issue(False, f"this int may exceed the limit of {MAX_INT_BITS:,} bits for some inputs"))
    return bounded_int(lo, hi), issues


def add(a: IntType, b: IntType) -> Result:
    lo = a.lo + b.lo if a.lo is not None and b.lo is not None else None
    hi = a.hi + b.hi if a.hi is not None and b.hi is not None else None
    return finish(lo, hi)


def sub(a: IntType, b: IntType) -> Result:
    lo = a.lo - b.hi if a.lo is not None and b.hi is not None else None
    hi = a.hi - b.lo if a.hi is not None and b.lo is not None else None
    return finish(lo, hi)


def neg(a: IntType) -> Result:
    return finish(-a.hi if a.hi is not None else None, -a.lo if a.lo is not None else None)


def invert(a: IntType) -> Result:
    return finish(-a.hi - 1 if a.hi is not None else None, -a.lo - 1 if a.lo is not None else None)


def absolute(a: IntType) -> Result:
    lo, hi = a.lo, a.hi
    if lo is None or hi is None:
        return IntType(0, None), []
    if lo >= 0:
        return finish(lo, hi)
    if hi <= 0:
        return finish(-hi, -lo)
    return finish(0, max(-lo, hi))


def mul(a: IntType, b: IntType) -> Result:
    if a.lo is None or a.hi is None or b.lo is None or b.hi is None:
        return UNKNOWN, []
    values = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return finish(min(values), max(values))


def _magnitudes(lo: int, hi: int) -> tuple[int, int]:
    """(smallest, largest) |x| for x in [lo, hi]."""
    largest = max(abs(lo), abs(hi))
    smallest = 0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
    return smallest, largest


def _non_negative_count(b: IntType, what: str, issues: list[Issue]) -> tuple[int, int | None] | None:
    """Clamp an exponent/shift count to >= 0, reporting when it is (or may be) negative."""
    if b.hi is not None and b.hi < 0:
        issues.append(Issue(True, f"{what} is always negative"))
        return None
    if b.lo is not None and b.lo < 0:
        issues.append(Issue(False, f"{what} may be negative for some inputs"))
    return (max(b.lo, 0) if b.lo is not None else 0), b.hi


def power(a: IntType, b: IntType) -> Result:
    """`a ** b`; negative exponents are errors (no floats)."""
    issues: list[Issue] = []
    counts = _non_negative_count(b, "the exponent (powers with negative exponents are not whole numbers)", issues)
    if counts is None:
        return UNKNOWN, issues
    e_lo, e_hi = counts
    if a.lo is None or a.hi is None:
        return UNKNOWN, issues
    smallest, largest = _magnitudes(a.lo, a.hi)
    if smallest >= 2 and e_lo * (smallest.bit_length() - 1) >= MAX_INT_BITS:
        return UNKNOWN, [*issues, Issue(True, _too_large_message(_power_bits(smallest, e_lo)))]
    if e_hi is None or (largest >= 2 and e_hi * largest.bit_length() > _BIG):
        if e_hi is not None:
            issues.append(Issue(False, f"this power may exceed the limit of {MAX_INT_BITS:,} bits for some inputs"))
        return IntType(0 if a.lo >= 0 else None, None), issues
    bases = {a.lo, a.hi} | {x for x in (-1, 0, 1) if a.lo <= x <= a.hi}
    exps = {e for e in (e_lo, e_lo + 1, e_hi - 1, e_hi) if e_lo <= e <= e_hi}
    values = [x**e for x in bases for e in exps]
    result, more = finish(min(values), max(values))
    return result, issues + more


def lshift(a: IntType, b: IntType) -> Result:
    issues: list[Issue] = []
    counts = _non_negative_count(b, "the shift count", issues)
    if counts is None:
        return UNKNOWN, issues
    e_lo, e_hi = counts
    if a.lo is None or a.hi is None:
        return UNKNOWN, issues
    smallest, largest = _magnitudes(a.lo, a.hi)
    if smallest >= 1 and smallest.bit_length() + e_lo > MAX_INT_BITS:
        return UNKNOWN, [*issues, Issue(True, _too_large_message(smallest.bit_length() + e_lo))]
    if e_hi is None or largest.bit_length() + e_hi > _BIG:
        if e_hi is not None:
            issues.append(Issue(False, f"this shift may exceed the limit of {MAX_INT_BITS:,} bits for some inputs"))
        return IntType(0 if a.lo >= 0 else None, None), issues
    values = [x << e for x in (a.lo, a.hi) for e in (e_lo, e_hi)]
    result, more = finish(min(values), max(values))
    return result, issues + more


def rshift(a: IntType, b: IntType) -> Result:
    issues: list[Issue] = []
    counts = _non_negative_count(b, "the shift count", issues)
    if counts is None:
        return UNKNOWN, issues
    e_lo, e_hi = counts
    if a.lo is None or a.hi is None:
        return UNKNOWN, issues
    cap = MAX_INT_BITS + 1
    shifts = (min(e_lo, cap), min(e_hi, cap) if e_hi is not None else cap)
    values = [x >> e for x in (a.lo, a.hi) for e in shifts]
    return finish(min(values), max(values))[0], issues


def bitwise(op: str, a: IntType, b: IntType) -> Result:
    """`&`, `|`, `^`."""
    if a.lo is None or a.hi is None or b.lo is None or b.hi is None:
        return UNKNOWN, []
    width = max(abs(v).bit_length() for v in (a.lo, a.hi, b.lo, b.hi))
    top = (1 << width) - 1
    if a.lo >= 0 and b.lo >= 0:
        if op == "&":
            return IntType(0, min(a.hi, b.hi)), []
        return IntType(0, top), []
    return IntType(-(1 << width), top), []


def _divisor_issues(b: IntType, what: str) -> tuple[bool, list[Issue]]:
    """(always zero, issues) for a divisor."""
    if b.lo == 0 and b.hi == 0:
        return True, [Issue(True, f"{what} by zero: the divisor is always 0")]
    if b.lo is not None and b.hi is not None and b.lo <= 0 <= b.hi:
        return False, [Issue(False, f"{what} by zero for inputs where the divisor is 0")]
    return False, []


def floordiv(a: IntType, b: IntType) -> Result:
    always_zero, issues = _divisor_issues(b, "division")
    if always_zero or a.lo is None or a.hi is None or b.lo is None or b.hi is None:
        return UNKNOWN, issues
    divisors = {d for d in (b.lo, b.hi, -1, 1) if b.lo <= d <= b.hi and d != 0}
    values = [x // d for x in (a.lo, a.hi) for d in divisors]
    return finish(min(values), max(values))[0], issues


def mod(a: IntType, b: IntType) -> Result:
    always_zero, issues = _divisor_issues(b, "modulo")
    if always_zero or b.lo is None or b.hi is None:
        return UNKNOWN, issues
    if b.lo > 0:
        if a.lo is not None and a.hi is not None and a.lo >= 0 and a.hi < b.lo:
            return IntType(a.lo, a.hi), issues
        return IntType(0, b.hi - 1), issues
    if b.hi < 0:
        return IntType(b.lo + 1, 0), issues
    return IntType(min(b.lo + 1, 0), max(b.hi - 1, 0)), issues
