"""Benchmark: parse + type-check a 20-line theory (budget: 5 ms), and evaluate inputs.

    python benchmarks/theory_parse.py [--repeat N]

Prints the median wall time of `check_theory` (as-you-type diagnostics) and `parse_theory`
(check + compile) on a 20-line theory, the ratio to the 5 ms budget, and the per-input cost
of `Theory.evaluate` over the whole modular-addition domain. The baseline measured in the
same run is `ast.parse` of the same expressions (the floor any Python-syntax checker pays).
"""

from __future__ import annotations

import argparse
import ast
import statistics
import time
from collections.abc import Callable

from tui_interp.theory import check_theory, parse_theory

THEORY = """\
theory "modular addition, with the trimmings"   # 20 lines
input a: int in 0..112
input b: int in 0..112
input s: str of "01" len 1..12
input xs: list[int in 0..63] len 1..8
input flag: bool
where a != b
where len(s) >= 2 or flag
prompt "{a} {b} {s} {join(xs, ',')} ="
expect (a + b) % 113
slice "wraps": a + b >= 113
slice "even": (a + b) % 2 == 0
slice "long s": len(s) > 6
slice "ones": count(s, "1") > len(s) // 2
slice "sorted": sorted(xs) == list(xs)
slice "big max": max(xs) > 40
slice "sum": sum([x * 2 for x in xs if x % 2 == 0]) > 10
claim needs L0.mlp below 0.5
claim suffices embed, L0.H0, L0.mlp, unembed using resample above 90%
claim attends L0.H2 from "=" to a
"""

BUDGET_S = 0.005


def median_time(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(max(3, repeat // 10)):  # warm-up
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    lines = THEORY.count("\n")
    expressions = [
        line.split(" ", 1)[1].split(":", 1)[-1] if line.startswith('slice "') else line.split(" ", 1)[1]
        for line in THEORY.splitlines()
        if line.split(" ", 1)[0] in ("where", "expect", "slice")
    ]
    baseline = median_time(lambda: [ast.parse(e.strip(), mode="eval") for e in expressions], args.repeat)
    check = median_time(lambda: check_theory(THEORY), args.repeat)
    parse = median_time(lambda: parse_theory(THEORY), args.repeat)
    print(f"theory: {lines} lines, {len(expressions)} expressions")
    print(f"baseline ast.parse of the expressions: median {baseline * 1e3:.3f} ms")
    for name, t in (("check_theory", check), ("parse_theory", parse)):
        print(f"{name}: median {t * 1e3:.3f} ms  ({t / baseline:.1f}x baseline, {t / BUDGET_S:.0%} of the 5 ms budget)")

    modadd = parse_theory(
        'theory "modadd"\ninput a: int in 0..112\ninput b: int in 0..112\nprompt "{a} {b} ="\nexpect (a + b) % 113\n'
        "slice a + b >= 113\n"
    )
    t0 = time.perf_counter()
    inputs = list(modadd.domain.enumerate())
    enumerate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for x in inputs:
        modadd.evaluate(x)
    evaluate_s = time.perf_counter() - t0
    print(
        f"modadd: enumerate {len(inputs):,} inputs {enumerate_s * 1e3:.1f} ms, "
        f"evaluate all {evaluate_s * 1e3:.1f} ms ({evaluate_s / len(inputs) * 1e6:.2f} us per input)"
    )


if __name__ == "__main__":
    main()
