"""Domains: exact sizes, deterministic order, where filters, seeded sampling, mutation."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tui_interp.errors import TheoryError
from tui_interp.theory import BoolSpec, Domain, IntRange, ListSpec, SpecError, StrSpec, parse_theory


def theory(inputs: str, where: str = "") -> Domain:
    text = f'theory "d"\n{inputs}\n{where}\nprompt "x"\nexpect 1\n'
    return parse_theory(text).domain


def test_sizes_are_exact() -> None:
    assert IntRange(0, 112).size == 113
    assert IntRange(-5, 5).size == 11
    assert BoolSpec().size == 2
    assert StrSpec("01", 1, 12).size == 2**13 - 2
    assert StrSpec("abc", 0, 0).size == 1
    assert StrSpec("a", 2, 5).size == 4
    assert ListSpec(IntRange(0, 63), 8, 8).size == 64**8
    assert ListSpec(IntRange(0, 63), 1, 8).size == sum(64**n for n in range(1, 9))
    assert ListSpec(ListSpec(BoolSpec(), 2, 2), 3, 3).size == 4**3
    big = StrSpec("0123456789", 1, 10000)
    assert big.size == (10**10001 - 10) // 9
    assert theory("input a: int in 0..112\ninput b: int in 0..112").raw_size == 12769


def test_filtered_size_is_counted() -> None:
    d = theory("input a: int in 0..112\ninput b: int in 0..112", "where a != b")
    assert d.raw_size == 12769
    assert d.has_filter
    assert d.count(limit=100) is None  # not counted: more raw inputs than the limit
    assert d.size == 12769 - 113
    assert d.count(limit=100) == 12769 - 113  # once counted, the count is known
    big = theory("input xs: list[int in 0..63] len 8", "where xs[0] > 3")
    assert big.size is None  # too many to count
    assert theory("input a: int in 0..9").size == 10


def test_enumeration_order_first_input_slowest() -> None:
    d = theory('input a: int in 0..1\ninput f: bool\ninput s: str of "ba" len 0..1')
    got = [(x["a"], x["f"], x["s"]) for x in d.enumerate()]
    assert got[:6] == [(0, False, ""), (0, False, "b"), (0, False, "a"), (0, True, ""), (0, True, "b"), (0, True, "a")]
    assert len(got) == 12


def test_string_and_list_order_is_shortest_first_then_lexicographic() -> None:
    assert list(StrSpec("10", 0, 2).values()) == ["", "1", "0", "11", "10", "01", "00"]
    assert list(ListSpec(IntRange(3, 4), 1, 2).values()) == [(3,), (4,), (3, 3), (3, 4), (4, 3), (4, 4)]


@pytest.mark.parametrize(
    "spec",
    [
        IntRange(-3, 4),
        BoolSpec(),
        StrSpec("xyz", 0, 3),
        ListSpec(IntRange(0, 2), 1, 3),
        ListSpec(StrSpec("ab", 1, 2), 0, 2),
        ListSpec(ListSpec(BoolSpec(), 0, 1), 2, 2),
    ],
    ids=str,
)
def test_values_are_distinct_contained_and_as_many_as_the_size(spec) -> None:
    values = list(spec.values())
    assert len(values) == len(set(values)) == spec.size
    assert all(spec.contains(v) for v in values)
    rng = random.Random(0)
    assert all(spec.random(rng) in values for _ in range(50))


def test_random_values_of_astronomical_domains_are_contained() -> None:
    spec = ListSpec(StrSpec("abc", 0, 20), 1, 50)
    rng = random.Random(0)
    for _ in range(50):
        assert spec.contains(spec.random(rng))


def test_where_filters_enumeration_and_membership() -> None:
    d = theory("input a: int in 0..9\ninput b: int in 0..9", "where a < b\nwhere (a + b) % 2 == 0")
    got = list(d.enumerate())
    assert got == [{"a": a, "b": b} for a in range(10) for b in range(10) if a < b and (a + b) % 2 == 0]
    assert d.contains({"a": 1, "b": 3})
    assert not d.contains({"a": 3, "b": 1})
    assert not d.contains({"a": 1, "b": 12})  # outside the range
    assert not d.contains({"a": 1})  # missing input
    assert not d.contains({"a": "1", "b": 3})  # wrong type


def test_contains_checks_types_and_ranges() -> None:
    d = theory('input s: str of "01" len 2..3\ninput xs: list[int in 0..3] len 2\ninput f: bool')
    assert d.contains({"s": "01", "xs": [0, 3], "f": True})
    assert d.contains({"s": "010", "xs": (0, 3), "f": False})
    assert not d.contains({"s": "0", "xs": [0, 3], "f": True})
    assert not d.contains({"s": "02", "xs": [0, 3], "f": True})
    assert not d.contains({"s": "01", "xs": [0, 4], "f": True})
    assert not d.contains({"s": "01", "xs": [0, 1, 2], "f": True})
    assert not d.contains({"s": "01", "xs": [0, 3], "f": 1})


def test_enumerate_refuses_large_domains() -> None:
    d = theory("input xs: list[int in 0..63] len 8")
    with pytest.raises(TheoryError, match="more than the enumeration limit of 200,000; sample it instead"):
        next(d.enumerate())
    assert sum(1 for _ in theory("input a: int in 0..999").enumerate(limit=1000)) == 1000


def test_select_enumerates_small_domains() -> None:
    d = theory("input a: int in 0..112\ninput b: int in 0..112", "where a != b")
    sel = d.select()
    assert sel.enumerated
    assert list(sel.inputs) == list(d.enumerate())
    assert sel.size == 12656
    assert sel.describe() == "all 12,656 inputs"


def test_select_samples_large_domains_and_says_so() -> None:
    d = theory("input xs: list[int in 0..63] len 8", "where xs[0] != xs[1]")
    sel = d.select(limit=500, seed=7)
    assert not sel.enumerated
    assert len(sel.inputs) == 500
    assert sel.size is None
    assert sel.describe() == "a uniform random sample of 500 of 281,474,976,710,656 inputs (seed 7)"
    assert sel.attempts >= 500 and sel.accepted == 500
    assert 0.9 < sel.acceptance <= 1.0
    assert all(d.contains(x) for x in sel.inputs)
    assert len({tuple(x["xs"]) for x in sel.inputs}) == 500  # without replacement


def test_sampling_is_deterministic_per_seed() -> None:
    d = theory('input s: str of "01" len 1..12\ninput a: int in 0..1000000')
    assert d.sample(200, seed=3) == d.sample(200, seed=3)
    assert d.sample(200, seed=3) != d.sample(200, seed=4)
    again = theory('input s: str of "01" len 1..12\ninput a: int in 0..1000000')
    assert again.sample(50, seed=11) == d.sample(50, seed=11)


def test_sampling_a_small_domain() -> None:
    d = theory("input a: int in 0..9")
    assert d.sample(20, seed=0) == [{"a": a} for a in range(10)]  # all of them, in order
    sample = d.sample(5, seed=0)
    assert len(sample) == 5 and len({x["a"] for x in sample}) == 5
    assert d.sample(0) == []


def test_sampling_is_uniform_over_the_domain() -> None:
    spec = StrSpec("01", 0, 3)  # 15 strings: the 8 of length 3 are 8/15 of the domain
    rng = random.Random(0)
    counts = Counter(spec.random(rng) for _ in range(30000))
    assert set(counts) == set(spec.values())
    for value in spec.values():
        assert 1500 < counts[value] < 2500, (value, counts[value])
    lengths = Counter(len(v) for v in counts.elements())
    assert 14000 < lengths[3] < 18000


def test_a_filter_that_rejects_almost_everything_is_reported() -> None:
    d = theory("input xs: list[int in 0..63] len 8", "where sum(xs) == 0")
    with pytest.raises(TheoryError, match="the `where` filter kept only 0 of 10,000 random inputs"):
        d.sample(10, seed=0)


def test_mutate_stays_in_the_domain_and_changes_one_input() -> None:
    d = theory(
        'input a: int in 0..1000\ninput f: bool\ninput s: str of "abc" len 1..5\ninput xs: list[int in 0..9] len 2..4',
        "where a % 2 == 0 or f",
    )
    rng = random.Random(1)
    x = d.sample(1, seed=0)[0]
    changed = Counter()
    for _ in range(2000):
        y = d.mutate(x, rng)
        assert y is not None
        assert d.contains(y)
        diff = [k for k in x if x[k] != y[k]]
        assert len(diff) == 1
        changed[diff[0]] += 1
        x = y
    assert set(changed) == {"a", "f", "s", "xs"}


def test_int_mutation_is_mostly_local() -> None:
    d = theory("input a: int in 0..1000000")
    rng = random.Random(2)
    steps = [abs(d.mutate({"a": 500000}, rng)["a"] - 500000) for _ in range(1000)]
    assert sum(1 for s in steps if s == 1) > 400
    assert all(s >= 1 for s in steps)


def test_mutate_respects_bounds_and_returns_none_without_neighbours() -> None:
    rng = random.Random(3)
    edge = theory("input a: int in 5..6")
    assert all(edge.mutate({"a": 5}, rng) == {"a": 6} for _ in range(20))
    assert theory("input a: int in 5..5").mutate({"a": 5}, rng) is None
    lonely = theory("input a: int in 0..9", "where a == 3")
    assert lonely.mutate({"a": 3}, rng) is None


def test_mutating_strings_and_lists() -> None:
    rng = random.Random(4)
    spec = StrSpec("ab", 2, 3)
    for _ in range(300):
        v = spec.mutate("ab", rng)
        assert v != "ab" and spec.contains(v)
    fixed = ListSpec(IntRange(0, 1), 3, 3)
    for _ in range(300):
        v = fixed.mutate((0, 1, 1), rng)
        assert v != (0, 1, 1) and fixed.contains(v)
    assert StrSpec("a", 2, 2).mutate("aa", rng) is None


def test_spec_errors() -> None:
    with pytest.raises(SpecError, match=r"empty range 3\.\.1"):
        IntRange(3, 1)
    with pytest.raises(SpecError, match="the alphabet repeats"):
        StrSpec("aa", 1, 1)
    with pytest.raises(SpecError, match="empty length range"):
        StrSpec("ab", 2, 1)
    with pytest.raises(SpecError, match="too large to describe"):
        ListSpec(IntRange(0, 2**32), 1, 10000)
    with pytest.raises(SpecError, match="input names must be distinct"):
        Domain([("a", BoolSpec()), ("a", BoolSpec())])


def test_a_theory_without_inputs_has_one_input() -> None:
    t = parse_theory('theory "const"\nprompt "2 + 2 ="\nexpect 4\n')
    assert t.domain.raw_size == 1
    assert list(t.domain.enumerate()) == [{}]
    assert t.render_prompt({}) == "2 + 2 ="
    assert t.domain.mutate({}, random.Random(0)) is None


def test_describe() -> None:
    d = theory('input a: int in 0..9\ninput s: str of "01" len 1..3\ninput xs: list[bool] len 2', "where a > 1")
    assert (
        d.describe()
        == 'a: int in 0..9, s: str of "01" len 1..3, xs: list[bool] len 2 (at most 560 inputs, filtered by where)'
    )
    d.count()
    assert d.describe().endswith("(448 inputs, filtered by where)")


def test_int_mutation_flips_bits_too() -> None:
    d = theory("input a: int in 0..255")
    rng = random.Random(5)
    seen = {d.mutate({"a": 0b10100000}, rng)["a"] for _ in range(400)}
    assert {0b10100001, 0b10100000 ^ 0b1000, 0b00100000} <= seen
