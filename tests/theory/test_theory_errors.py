"""Every error the language reports, with its exact line and column span.

Each case is one line with the expected span marked «like this»; the line replaces (or is
added to) a valid theory, and it must be the only error, at exactly that span.
"""

from __future__ import annotations

import time

import pytest
from theory_testlib import BASE, errors, marked, warnings, with_line

from tui_interp.errors import TheoryError
from tui_interp.theory import TheoryEvalError, check_theory, parse_theory

# Replacing line 7 (`expect a + b`).
EXPECT_ERRORS = [
    # operators
    ('expect «a + "x"»', "cannot add int and str; convert the int with str(...)"),
    ('expect «"x" - a»', "cannot subtract int from str"),
    ("expect «s * s»", "cannot multiply str by str"),
    ("expect «a & True»", "`&` needs two ints, got int and bool (for bools use `and`, `or` or `!=`)"),
    ("expect «s % a»", "string formatting is not supported"),
    ("expect «a / b»", "`/` is not supported: there are no floats; use `//`"),
    ("expect «a @ b»", "`@` is not supported"),
    ("expect «-s»", "unary `-` needs an int, got str"),
    ("expect «not a»", "`not` needs a bool, got int (compare it, e.g. x != 0)"),
    ("expect «a» and True", "`and` needs bool operands, got int"),
    ("expect True or «s»", "`or` needs bool operands, got str"),
    # comparisons
    ("expect «a == s»", "cannot compare int and str with `==`: they are never equal"),
    ("expect «xs != s»", "cannot compare list[int] and str with `!=`"),
    ("expect «a < s»", "cannot order int and str with `<`"),
    ("expect a < «b <= s»", "cannot order int and str with `<=`"),
    ("expect «True < False»", "bools cannot be ordered with `<`"),
    ("expect «a in s»", "`in` on a str looks for a str, got int"),
    ("expect «s in xs»", "`in` on a list[int] needs an element of type int, got str"),
    ("expect «a not in a»", "`not in` needs a str or a list on the right, got int"),
    ("expect «a is b»", "`is` is not supported: use `==` or `!=`"),
    # if/else
    ("expect a if «s» else b", "`if` needs a bool condition, got str"),
    ("expect «a if a > b else s»", "the two branches of `if`/`else` have different types: int and str"),
    # indexing and slicing
    ('expect xs[«"a"»]', "indices must be ints, got str"),
    ("expect «a»[0]", "cannot index int: only strs and lists have elements"),
    ("expect «[][0]»", "cannot index an empty list"),
    ("expect «a»[1:2]", "cannot slice int"),
    ('expect xs[1:«"x"»]', "slice bounds must be ints, got str"),
    ("expect xs[«1, 2»]", "indexing with a comma (x[i, j]) is not supported"),
    # lists and rendering
    ('expect [1, «"x"»]', "list elements must all have the same type: int and str"),
    ("expect «[xs]»", "`expect` cannot turn list[list[int]] into text"),
    # names and calls
    ("expect «c»", "unknown name `c`; the inputs are a, b, s, xs"),
    ("expect «aa»", "unknown name `aa`; did you mean `a`?"),
    ("expect «len»", "`len` is a function: call it, e.g. len(...)"),
    ("expect «foo»(a)", "unknown function `foo`; the functions are len, sum, min"),
    ("expect «lne»(s)", "unknown function `lne`; did you mean `len`?"),
    ("expect «a»(1)", "`a` is an input, not a function"),
    ("expect «len(s, s)»", "len() takes 1 argument (2 given)"),
    ("expect «range()»", "range() takes 1 to 3 arguments (0 given)"),
    ("expect «join(xs)»", "join() takes 2 arguments (1 given)"),
    ("expect len(«a»)", "len() takes a str or a list, got int"),
    ("expect sum(«s»)", "sum() takes a list of ints, got str"),
    ("expect min(«a»)", "min() of one argument takes a list, got int; for several values write min(a, b)"),
    ("expect min(a, «s»)", "min() arguments must all have the same type: int and str"),
    ("expect min(«[]»)", "min() of an empty list"),
    ("expect max(«[True]»)", "max() needs ints, strs or lists of those, got list[bool]"),
    ("expect abs(«s»)", "abs() needs an int here, got str"),
    ("expect count(s, «1»)", "count() in a str looks for a str, got int"),
    ("expect index(xs, «s»)", "index() in a list[int] needs an element of type int, got str"),
    ("expect join(xs, «1»)", "join() needs a str separator, got int"),
    ('expect join(«a», "")', "join() takes a list, got int"),
    ('expect join(«[xs]», "")', "join() takes a list of ints, bools or strs, got list[list[int]]"),
    ("expect str(«xs»)", 'str() takes an int, bool or str, got list[int]; to turn a list into text use join(xs, " ")'),
    ("expect int(«xs»)", "int() takes a str, bool or int, got list[int]"),
    ("expect int(«a», 2)", "int() with a base takes a str, got int"),
    ("expect ord(«a»)", "ord() takes a one-character str, got int"),
    ("expect sorted(«s»)", "sorted() takes a list; for the characters of a string use sorted(list(s))"),
    ("expect sorted(«[True]»)", "sorted() takes a list of ints, strs or lists of those, got list[bool]"),
    ("expect reversed(«a»)", "reversed() takes a str or a list, got int"),
    ("expect list(«a»)", "list() takes a str or a list, got int"),
    ("expect any(«xs»)", "any() takes a list of bools, got list[int] (compare the elements"),
    ("expect all(«a»)", "all() takes a list of bools, got int"),
    ("expect pow(a, «s»)", "pow() needs an int here, got str"),
    # comprehensions
    ("expect [x for x in «a»]", "`for` needs a str or a list to go through, got int"),
    ("expect [1 for «a» in xs]", "`a` is an input; choose another name for the loop variable"),
    ("expect [1 for «len» in xs]", "`len` is a built-in function; choose another name"),
    ("expect [x for x in xs if «x»]", "`if` in a comprehension needs a bool condition, got int"),
    ("expect [x for x in xs] + [«x»]", "unknown name `x`"),
    # refused syntax
    ("expect «a.b»", "attribute access (`x.y`) is not allowed"),
    ("expect «s.count»('1')", "attribute access (`x.y`) is not allowed"),
    ("expect «lambda: 1»", "`lambda` is not allowed"),
    ("expect («x := 1»)", "`:=` is not allowed"),
    ("expect «{1: 2}»", "dicts are not supported"),
    ("expect «{1, 2}»", "sets are not supported"),
    ("expect «{x for x in xs}»", "sets are not supported"),
    ("expect [«*xs»]", "`*` unpacking is not supported"),
    ("expect len(«s=1»)", "keyword arguments are not supported"),
    ("expect («lambda: 1»)()", "only the built-in functions can be called"),
    ("expect [1 for «(p, q)» in xs]", "only a single name can follow `for`"),
    ("expect «1.5»", "floats are not supported: only whole numbers"),
    ("expect «1e3»", "floats are not supported"),
    ("expect «1j»", "complex numbers are not supported"),
    ("expect «None»", "None is not a value in theories"),
    ("expect «...»", "Ellipsis is not a value in theories"),
    ('expect «f»"{a}"', 'unexpected \'f\' before a string (string prefixes such as f"" or r"" are not supported)'),
    ('expect «rb»"x"', "unexpected 'rb' before a string"),
    ('expect "«\\q»"', "unknown escape \\q"),
    ('expect "«\\x4»"', "\\x needs exactly 2 hex digits"),
    ('expect "«\\ud800»"', "\\ud800 is not a usable character"),
    ('expect «"abc»', 'unterminated string: no closing "'),
    ("expect a «\\» b", "unexpected backslash outside a string"),
    ("expect «é»", "unexpected character 'é' (outside strings only ASCII is allowed)"),
    ("expect a «=» b", "`=` is not allowed here; to compare use `==`"),
    ("expect a «:» b", "unexpected `:`"),
    ("expect «(»a", "'(' was never closed"),
    ("expect «1if» a else 2", "malformed number '1if' (separate a number from a word with a space)"),
    ("expect «0b102»", "malformed number '0b102'"),
    ("expect a +«»", "incomplete expression"),
    ("expect«»", "`expect` needs an expression"),
]


@pytest.mark.parametrize("line, message", EXPECT_ERRORS, ids=[c[0] for c in EXPECT_ERRORS])
def test_expect_line_errors(line: str, message: str) -> None:
    m = marked(line)
    found = errors(with_line(7, m.text))
    assert len(found) == 1, found
    (d,) = found
    assert (d.line, d.col, d.end_col) == (7, m.col, m.end_col), d
    assert message in d.message, d.message


# What depends on values is not refused before running: the evaluator refuses it when it
# happens, at the expression that failed (the checker repeats no run-time limit).
X = {"a": 1, "b": 2, "s": "0101", "xs": [0] * 8}
RUNTIME_ERRORS = [
    ("expect «a // 0»", "division by zero"),
    ("expect «a % 0»", "modulo by zero"),
    ("expect «10**10**10»", "int too large: 30,000,000,001 bits (ints are limited to 4,096 bits)"),
    ("expect «2 ** -1»", "negative exponent -1: powers must be whole numbers"),
    ("expect «1 << 5000»", "int too large: 5,001 bits"),
    ("expect «1 << -1»", "negative shift count -1"),
    ("expect «123456789 ** 5 ** 5»", "int too large"),
    ('expect «"x" * 10**9»', "string too long: 1,000,000,000 elements (the limit is 100,000)"),
    ("expect «xs * 100000»", "list too long: 800,000 elements"),
    ("expect «range(10**9)»", "list too long: 1,000,000,000 elements"),
    ("expect «range(1, 5, 0)»", "range() step cannot be 0"),
    ("expect «[x for x in range(100000) for y in range(100000)]»", "evaluation is too long: more than 1,000,000 steps"),
    ("expect «xs[8]»", "index 8 is out of range for a list of length 8"),
    ("expect «xs[-9]»", "index -9 is out of range for a list of length 8"),
    ("expect «s[4]»", "index 4 is out of range for a string of length 4"),
    ("expect «xs[::0]»", "slice step cannot be 0"),
    ("expect «int(s, 40)»", "int() base must be from 2 to 36, got 40"),
    ('expect «ord("ab")»', "ord() takes a single character, got a string of length 2"),
    ("expect «chr(-1)»", "chr(): -1 is not a valid character code"),
    ("expect «base(a, 1)»", "base() needs a base from 2 to 36, got 1"),
    ("expect «base(a, 2, 10**6)»", "base() width 1,000,000 is larger than the string limit of 100,000"),
    ("expect «pow(a, b, 0)»", "pow() modulus cannot be 0"),
]


@pytest.mark.parametrize("line, message", RUNTIME_ERRORS, ids=[c[0] for c in RUNTIME_ERRORS])
def test_value_dependent_errors_fail_fast_at_run_time_at_their_span(line: str, message: str) -> None:
    m = marked(line)
    text = with_line(7, m.text)
    assert errors(text) == []
    theory = parse_theory(text)
    t0 = time.perf_counter()
    with pytest.raises(TheoryEvalError) as info:
        theory.evaluate(X)
    assert time.perf_counter() - t0 < 5.0  # a sanity bound
    e = info.value
    assert (e.line, e.col, e.end_col) == (7, m.col, m.end_col), e
    assert e.message.startswith(message), e.message


# Added as line 8.
LINE_ERRORS = [
    ("«frob» a", "unknown directive `frob` (expected one of: theory, input, where, prompt, expect, slice, split, claim)"),
    ("«expct» a", "unknown directive `expct`; did you mean `expect`?"),
    ("«1»23 a", "expected a directive: theory, input, where, prompt, expect, slice, split, claim"),
    ('«theory» "again"', "second `theory` line (the first is line 1)"),
    ('«prompt» "x"', "second `prompt` line (the first is line 6)"),
    ("«expect» 1", "second `expect` line (the first is line 7)"),
    ('theory«"»x"', "expected a space after `theory`"),
    # input
    ("input «if»: bool", "`if` is a Python keyword; choose another input name"),
    ("input «len»: bool", "`len` is a built-in function; choose another input name"),
    ("input «a»: bool", "input `a` is already declared on line 2"),
    ("input c, «c»: bool", "input `c` is declared twice"),
    ("input «1»: bool", "expected an input name, got '1'"),
    ("input c«»", "expected `:` and a type, e.g. input a: int in 0..112"),
    ("input c «=» int", "expected `:` after the input name, got '='"),
    ("input c:«»", 'missing type: int in A..B, bool, str of "ALPHABET" len A..B, or list[TYPE] len A..B'),
    (
        "input c: «float»",
        "expected a type: int in A..B, bool, str of \"ALPHABET\" len A..B, or list[TYPE] len A..B; got 'float'",
    ),
    ("input c: int «from» 0..9", "expected `in` and an inclusive range, e.g. int in 0..112; got 'from'"),
    ("input c: int in «[»0, 9]", "expected the range's first bound (a whole number), got '['"),
    ("input c: int in 0«,»9", "expected `..` between the bounds (e.g. 0..112), got ','"),
    ("input c: int in «9..0»", "empty range 9..0: the first bound must not exceed the second"),
    ("input c: int in «-3..-5»", "empty range -3..-5"),
    ("input c: int in 0..«x»", "expected the range's last bound (a whole number), got 'x'"),
    ("input c: int in 0..9 «extra»", "unexpected 'extra' after the type"),
    ("input c: int in «1_»..9", "malformed number '1_'"),
    ("input c: int in 0..«9x»", "malformed number '9x'"),
    ("input c: int in «$»", "unexpected character '$'"),
    ("input c: str of «01» len 2", "expected the alphabet in quotes, e.g. \"01\"; got '01'"),
    ('input c: str of «""» len 2', "the alphabet must be a non-empty string"),
    ('input c: str of «"aba"» len 2', 'the alphabet repeats "a"'),
    ('input c: str of "ab" «size» 2', "expected `len` and the lengths, e.g. len 8 or len 1..12, got 'size'"),
    ('input c: str of "ab" len «3..1»', "empty length range 3..1"),
    ('input c: str of "ab" len «20000»', "length 20,000 is longer than inputs may be (10,000)"),
    ('input c: str of "ab" len«»', "expected a length, e.g. len 8 or len 1..12"),
    ('input c: str of "ab" len «x»', "expected a length (a whole number), got 'x'"),
    (
        "input c: «list[int in 0..4294967295] len 10000»",
        "this domain is too large to describe: about 2^320,000 values (the limit is 2^65,536)",
    ),
    ("input c: list«»", "expected `[` after list, e.g. list[int in 0..9] len 8"),
    ("input c: list[int in 0..9«»", "expected `]` to close the element type"),
    ("input c: list[int in 0..9] len«»", "expected a length"),
    # where / slice
    ("where«»", "`where` needs a condition, e.g. where a != b"),
    ("where «a + 1»", "`where` needs a bool condition, got int (compare it, e.g. x != 0)"),
    ("where «xs»", "`where` needs a bool condition, got list[int]"),
    ("slice «a»", "`slice` needs a bool condition, got int"),
    ('slice «""»: a > 1', "the slice's name must not be empty"),
    ('slice "x"«:»', "expected a condition after the slice's name"),
    # claims
    ("claim«»", "`claim` needs a claim, e.g. claim needs L0.mlp"),
    ("claim «frob» L0", "unknown claim 'frob': expected one of needs, suffices, attends, label"),
    ("claim needs«»", "`claim needs` needs at least one component, e.g. claim needs L0.mlp"),
    ("claim needs «l0.mlp»", "unknown component id 'l0.mlp'; did you mean 'L0.mlp'?"),
    ("claim needs «L0.attention»", "unknown component id 'L0.attention'"),
    ("claim needs «,» L0.mlp", "expected a component before `,`"),
    ("claim needs L0.mlp,«»", "expected a component after `,`"),
    ('claim needs «"L0"»', 'expected a component id such as L0.mlp, got "L0"'),
    ("claim needs «L*.m$p»", "malformed component pattern 'L*.m$p'"),
    (
        "claim needs L0.mlp «above» 0.5",
        "`claim needs` takes `below X`, not `above`: with the components ablated, agreement must fall below X",
    ),
    ("claim suffices L0.mlp «below» 0.5", "`claim suffices` takes `above X`, not `below`"),
    ("claim needs L0.mlp below «x»", "expected a number from 0 to 1 or a percentage, got x"),
    ("claim needs L0.mlp below «150%»", "a threshold must be from 0 to 1 (or 0% to 100%), got 150%"),
    ("claim needs L0.mlp below «1.5»", "a threshold must be from 0 to 1 (or 0% to 100%), got 1.5"),
    ("claim needs L0.mlp below 0.5 «below» 0.4", "the threshold is given twice"),
    ("claim needs L0.mlp below«»", "expected a number after `below`, e.g. below 0.5 or below 50%"),
    ("claim needs L0.mlp using «max»", "unknown ablation 'max': expected zero, mean, resample"),
    ("claim needs L0.mlp using mean «using» zero", "`using` is given twice"),
    ("claim needs L0.mlp using«»", "expected an ablation after `using`: zero, mean, resample"),
    ("claim attends «L0.mlp» from -1 to a", "`claim attends` needs an attention head such as L0.H2, got L0.mlp"),
    ("claim attends «L*.H*» from -1 to a", "'L*.H*' is a pattern; give a single component id here"),
    ("claim attends L0.H0 «to» -1", "expected `from`, got to"),
    ("claim attends L0.H0 from -1 «at» a", "expected `to`, got at"),
    ('claim attends L0.H0 from «""» to a', "the token text must not be empty"),
    (
        "claim attends L0.H0 from «1.5» to a",
        'expected token text in quotes ("="), an input name, or an index (-1), got 1.5',
    ),
    (
        "claim attends L0.H0 from -1 to «c»",
        'unknown input `c` (the inputs are: a, b, s, xs); for token text use quotes: "c"',
    ),
    ("claim attends L0.H0 from -1 to «s»", "input `s` does not appear in the prompt, so it has no position"),
    ("claim attends L0.H0 from -1 to a «using» mean", "unexpected 'using': expected `above X`"),
    ("claim attends L0.H0 from -1 to«»", "expected a position after `to`"),
    ('claim label «L*» "x"', "'L*' is a pattern; give a single component id here"),
    ("claim label L0.H0 «x»", 'expected the label in quotes, e.g. "previous token", got x'),
    ('claim label L0.H0 «""»', "the label must not be empty"),
    ('claim label L0.H0 "x" «y»', "unexpected 'y' after the label"),
    ("claim label L0.H0«»", "the label in quotes"),
    # characters
    ("expect a«\x00»", "NUL character in the file"),
    ("where a«\r»> 1", "stray carriage return inside a line"),
    ("where a > «\ud800»", "invalid character (a lone surrogate)"),
]


@pytest.mark.parametrize("line, message", LINE_ERRORS, ids=[repr(c[0]) for c in LINE_ERRORS])
def test_directive_errors(line: str, message: str) -> None:
    m = marked(line)
    text = BASE + m.text + "\n"
    found = [d for d in errors(text) if d.line == 8]
    assert len(found) == 1, check_theory(text)
    (d,) = found
    assert (d.line, d.col, d.end_col) == (8, m.col, m.end_col), d
    assert message in d.message, d.message
    if "second `expect`" not in message and "NUL" not in message:
        assert [e for e in errors(text) if e.line != 8] == []


# Replacing line 6 (the prompt).
PROMPT_ERRORS = [
    ('prompt "{a} «}»"', "single `}` in the prompt: write `}}` for a literal brace"),
    ('prompt "«{»a"', "unclosed `{` in the prompt: close the placeholder, or write `{{` for a brace"),
    ('prompt "«{}»"', "empty placeholder `{}`: put an expression inside, e.g. {a}"),
    ('prompt "«{  }»"', "empty placeholder"),
    ('prompt "{a«:3»}"', "format specs such as {x:3} or {x!r} are not supported; use str(), base() or join()"),
    ('prompt "{a«!r»}"', "format specs such as"),
    ('prompt "{«a + s»}"', "cannot add int and str"),
    ('prompt "x \\"{«a + \\"y\\"»}\\" z"', "cannot add int and str"),
    ('prompt "é{«s + 1»}"', "cannot add str and int"),
    ('prompt "\\t{«c»} \\u00e9"', "unknown name `c`"),
    ('prompt "{«[xs]»}"', "a prompt placeholder cannot turn list[list[int]] into text"),
    ('prompt "{a +«»}"', "incomplete expression"),
    ('prompt "{«\\\\»}"', "unexpected backslash outside a string"),
    ('prompt "{a «#» b}"', "`#` is not allowed in an expression"),
    ('prompt "{a«\\n»}"', "line breaks are not allowed in an expression"),
    ("prompt «a»", 'needs a template in quotes, e.g. prompt "{a} + {b} ="'),
    ('prompt "x" «y»', "unexpected text after the prompt string: 'y'"),
    ('prompt «"abc»', 'unterminated string: no closing "'),
    ("prompt«»", "`prompt` needs a template in quotes"),
]


@pytest.mark.parametrize("line, message", PROMPT_ERRORS, ids=[c[0] for c in PROMPT_ERRORS])
def test_prompt_errors(line: str, message: str) -> None:
    m = marked(line)
    found = errors(with_line(6, m.text))
    assert len(found) == 1, found
    (d,) = found
    assert (d.line, d.col, d.end_col) == (6, m.col, m.end_col), d
    assert message in d.message, d.message


THEORY_LINE_ERRORS = [
    ("theory «x»", 'needs a name in quotes, e.g. theory "modular addition"'),
    ('theory «""»', "the theory's name must not be empty"),
    ('theory "x" «y»', "unexpected text after the theory string: 'y'"),
]


@pytest.mark.parametrize("line, message", THEORY_LINE_ERRORS)
def test_theory_line_errors(line: str, message: str) -> None:
    m = marked(line)
    found = errors(with_line(1, m.text))
    assert len(found) == 1, found
    assert (found[0].line, found[0].col, found[0].end_col) == (1, m.col, m.end_col)
    assert message in found[0].message


def test_missing_prompt_points_at_the_theory_name_and_missing_expect_is_a_question() -> None:
    text = 'theory "t"\ninput a: int in 0..9\n'
    found = errors(text)
    assert [(d.line, d.col, d.end_col) for d in found] == [(1, 8, 11)]
    assert [d.message for d in found] == ['missing `prompt` line, e.g. prompt "{a} + {b} ="']


def test_missing_theory_name_is_a_warning_and_the_name_comes_from_the_path() -> None:
    text = BASE.replace('theory "t"\n', "")
    assert errors(text) == []
    (w,) = warnings(text)
    assert (w.line, w.col, w.end_col, w.severity) == (1, 1, 2, "warning")
    assert 'no `theory "NAME"` line' in w.message
    assert parse_theory(text, path="/x/y/my-rule.theory").name == "my-rule"
    assert parse_theory(text).name == "untitled"


def test_an_empty_file_reports_what_is_missing() -> None:
    found = check_theory("")
    assert [(d.severity, d.message.split(" line")[0]) for d in found] == [
        ("error", "missing `prompt`"),
        ("warning", 'no `theory "NAME"`'),
    ]


def test_a_line_that_is_too_long() -> None:
    line = "where " + "a+" * 3000 + "a > 0"
    (d,) = errors(BASE + line + "\n")
    assert (d.line, d.col, d.end_col) == (8, 4097, len(line) + 1)
    assert d.message == "line is too long (6,011 characters; the limit is 4,096)"


def test_an_expression_nested_too_deeply() -> None:
    line = "expect " + "-" * 150 + "a"
    (d,) = errors(with_line(7, line))
    # the node at depth 101 starts 101 characters into the expression
    assert (d.line, d.col, d.end_col) == (7, 8 + 101, len(line) + 1)
    assert d.message == "expression is nested too deeply (more than 100 levels)"


def test_types_nested_too_deeply() -> None:
    line = "input c: " + "list[" * 20 + "bool" + "] len 1" * 20
    (d,) = errors(BASE + line + "\n")
    col = len("input c: ") + len("list[") * 17 + 1
    assert (d.line, d.col, d.end_col) == (8, col, col + 4)
    assert d.message == "types are nested too deeply (more than 16 levels)"


def test_a_domain_with_too_many_inputs_in_total() -> None:
    line = "input c: list[int in 0..4294967295] len 1250"
    text = BASE + line + "\n" + line.replace("c:", "d:") + "\n"
    (d,) = errors(text)
    assert (d.line, d.col, d.end_col) == (9, 10, len(line) + 1)
    assert d.message == "the inputs together are too many: more than 2^65,536 combinations"


def test_duplicate_slice_names() -> None:
    text = BASE + 'slice "x": a > 1\nslice "x": a > 2\nslice a > 1\nslice a > 1\n'
    found = errors(text)
    assert [(d.line, d.col, d.end_col) for d in found] == [(9, 7, 17), (11, 7, 12)]
    assert found[0].message == "a slice named 'x' is already on line 8"
    assert found[1].message == "a slice named 'a > 1' is already on line 10"


def test_a_placeholder_error_does_not_hide_later_ones() -> None:
    found = errors(with_line(6, 'prompt "{c} {a + s} {d}"'))
    assert [(d.col, d.end_col, d.message) for d in found] == [
        (10, 11, "unknown name `c`; the inputs are a, b, s, xs"),
        (14, 19, "cannot add int and str; convert the int with str(...) or the str with int(...)"),
        (22, 23, "unknown name `d`; the inputs are a, b, s, xs"),
    ]


def test_every_problem_in_a_file_is_reported_in_order() -> None:
    text = (
        'theory "several mistakes"\n'
        "input a: int in 0..9\n"
        "input b: int in 9..0\n"
        "where a +\n"
        'prompt "{a} {c} ="\n'
        'expect a + "x"\n'
        "slice a\n"
        "claim needs L0.mlp above 0.5\n"
    )
    found = check_theory(text)
    assert [(d.line, d.col, d.end_col) for d in found] == [
        (3, 17, 21),
        (4, 10, 11),
        (5, 14, 15),
        (6, 8, 15),
        (7, 7, 8),
        (8, 20, 25),
    ]
    assert all(d.is_error for d in found)


def test_an_input_with_a_bad_domain_does_not_cascade() -> None:
    text = BASE + "input c: int in 9..0\nwhere c > 1\nwhere len(c) > 1\n"
    # `c` is known (its domain is wrong): no "unknown name", no type errors on its uses
    assert [(d.line, d.message) for d in errors(text)] == [
        (8, "empty range 9..0: the first bound must not exceed the second"),
    ]


def test_comment_and_strings() -> None:
    text = with_line(6, 'prompt "{a} # not a comment" # a comment "with quotes"')
    assert errors(text) == []
    theory = parse_theory(text)
    assert theory.render_prompt({"a": 1, "b": 2, "s": "0", "xs": [0] * 8}) == "1 # not a comment"


def test_parse_theory_raises_the_first_error_with_its_position_and_path() -> None:
    text = with_line(7, 'expect a + "x"') + "where s\n"
    with pytest.raises(TheoryError) as info:
        parse_theory(text, path="rules.theory")
    e = info.value
    assert (e.line, e.col, e.end_col, e.path) == (7, 8, 15, "rules.theory")
    assert str(e) == "rules.theory:7:8: cannot add int and str; convert the int with str(...) or the str with int(...)"


def test_warnings_do_not_stop_parsing_and_are_kept() -> None:
    text = BASE + 'claim attends L0.H0 from "zz" to a\n'
    theory = parse_theory(text)
    assert [(w.line, w.col, w.end_col, w.message) for w in theory.warnings] == [
        (8, 26, 30, "'zz' is not in the prompt's fixed text; it can only match where an input renders to it")
    ]
