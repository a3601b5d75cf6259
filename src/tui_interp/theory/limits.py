"""Named limits of the theory language.

Theory files may come from anyone, so every way an expression or a domain can grow is
bounded here, in one place. The parser refuses declarations over a limit; the evaluator
refuses what would exceed one before doing the work (a TheoryEvalError at the expression,
never a hang or a crash).
"""

from __future__ import annotations

# --- values --------------------------------------------------------------------------------
MAX_INT_BITS = 4096
"""Largest magnitude of any int: 2**4096 (about 1,233 decimal digits)."""

MAX_INT_DIGITS = len(str(1 << MAX_INT_BITS))
"""Most decimal digits an int may be written with (longer literals are refused unread)."""

MAX_STR_LEN = 100_000
"""Longest string an expression may build."""

MAX_LIST_LEN = 100_000
"""Longest list an expression may build (including `range`)."""

MAX_STEPS = 1_000_000
"""Work budget of one evaluation: loop iterations plus the length of every string or list built."""

COST_SAMPLES = 64
COST_SAFETY_FACTOR = 2
COST_SAMPLE_STEPS = 4 * MAX_STEPS
"""Theory.cost_estimate evaluates up to COST_SAMPLES inputs (stopping once they have used
COST_SAMPLE_STEPS steps together) and multiplies the most steps one used by the factor."""

# --- source ----------------------------------------------------------------------------------
MAX_SOURCE_CHARS = 1_000_000
"""Largest theory file, in characters (load_theory checks bytes against the same number)."""

MAX_LINE_CHARS = 4096
"""Longest line of a theory file."""

MAX_EXPR_DEPTH = 100
"""Deepest nesting of one expression (operators, calls, brackets)."""

# --- domains ---------------------------------------------------------------------------------
MAX_DOMAIN_LEN = 10_000
"""Longest `str`/`list` an input domain may declare (`len A..B` with B at most this)."""

MAX_DOMAIN_SIZE_BITS = 65_536
"""Largest input domain: 2**65536 inputs. Sizes are exact Python ints below this."""

DEFAULT_ENUMERATION_LIMIT = 200_000
"""Domains with at most this many inputs (before `where`) are enumerated, larger ones sampled."""

MIN_SAMPLE_ATTEMPTS = 10_000
SAMPLE_ATTEMPTS_PER_INPUT = 50
"""Rejection sampling gives up after max(MIN_SAMPLE_ATTEMPTS, SAMPLE_ATTEMPTS_PER_INPUT * n) draws."""

MUTATE_ATTEMPTS = 64
"""Tries `Domain.mutate` makes to find a neighbour that passes the `where` filter."""

MAX_SPLIT_BYTES = 64 * 1024 * 1024
"""Largest split file (`split NAME from "FILE"`), in bytes."""

MAX_SPLIT_ROWS = 1_000_000
"""Most rows (inputs, duplicates included) a split file may hold."""

# --- claims ----------------------------------------------------------------------------------
DEFAULT_NEEDS_BELOW = 0.5
"""`claim needs C`: agreement with C ablated must fall below this unless the claim says otherwise."""

DEFAULT_SUFFICES_ABOVE = 0.9
"""`claim suffices C`: agreement with all but C ablated must stay above this."""

DEFAULT_ATTENDS_ABOVE = 0.5
"""`claim attends L.H from X to Y`: mean attention from X to Y must be above this."""

DEFAULT_ABLATION = "mean"
"""Ablation used by `needs`/`suffices` claims without `using`."""

ABLATIONS = ("zero", "mean", "resample")
