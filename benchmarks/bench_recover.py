"""Rule recovery (`tui-interp recover`, engine/recover.py): how fast it finds the rule a sample
model computes, and how many expressions it tries per second. One command:

    python benchmarks/bench_recover.py [--budget 30] [--repeat 3] [--parity] [--json OUT]

Per sample model (modadd-grokked and modadd-memorized with modadd.question; sorting-generalising
and sorting-memorised with sorting-memorised/sorting.question; induction-2l with an induction
question; with --parity also a parity model trained on first use under benchmarks/.cache):
the answers' time, the search's expressions tried per second, the time to the first candidate
equal to the known rule on every input of the table (from the search's start, and from the
command's), the verdict and the best candidate. Then the end-to-end wall time of
`tui-interp recover modadd-grokked` as a subprocess (median of --repeat runs; the issue's
target: under 10 s), and the search alone on synthetic tables where nothing is to be found
(expressions per second at 441 and 12,769 rows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import CACHE, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "sample_models"
INDUCTION_QUESTION = """theory "induction (question)"
input s: str of "abcdefghijklmnopqrstuvwxyz" len 6
where all(count(s, c) == 1 for c in s)
prompt "{join(list(s), ' ')} {join(list(s[:5]), ' ')}"
"""
PARITY_TRAIN = ["parity", "--task-option", "n_bits=6", "--train-frac", "0.75", "--seed", "0", "--dtype", "float16", "--threads", "1"]


def cases(parity: bool) -> list[tuple[str, Path, Path, str, bool]]:
    """(name, model, question, the rule it was trained on, whether it should be explained)."""
    induction = CACHE / "recover" / "induction.question"
    induction.parent.mkdir(parents=True, exist_ok=True)
    induction.write_text(INDUCTION_QUESTION)
    sorting_q = MODELS / "sorting-memorised" / "sorting.question"
    out = [
        ("modadd-grokked", MODELS / "modadd-grokked", MODELS / "modadd-grokked" / "modadd.question", "(a + b) % 113", True),
        ("modadd-memorized", MODELS / "modadd-memorized", MODELS / "modadd-memorized" / "modadd.question", "(a + b) % 113", False),
        ("sorting-generalising", MODELS / "sorting-generalising", sorting_q, "sorted(xs)", True),
        ("sorting-memorised", MODELS / "sorting-memorised", sorting_q, "sorted(xs)", False),
        ("induction-2l", MODELS / "induction-2l", induction, "s[5]", True),
    ]
    if parity:
        model = CACHE / "recover" / "parity-6"
        if not (model / "model.safetensors").is_file():
            print(f"training {model} (about a minute)...", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "tui_interp", "train", *PARITY_TRAIN, "--out", str(model), "--force"], check=True,
                           stdout=subprocess.DEVNULL)
        out.append(("parity-6 (trained here)", model, model / "parity.question", 'count(s, "1") % 2', True))
    return out


def first_correct(result, question: Path, rule: str) -> tuple[int, float] | None:  # noqa: ANN001 -- RecoverResult
    """(rank, search seconds when found) of the first candidate equal to the rule on the table's inputs."""
    from tui_interp.engine.recover import with_expect
    from tui_interp.theory import load_theory, parse_theory

    theory = load_theory(question)
    inputs = list(theory.domain.select(limit=20_000 if theory.domain.raw_size <= 20_000 else 1_000, seed=0).inputs)
    truth = parse_theory(with_expect(theory.source, rule), question)
    want = [truth.render_expected(x) for x in inputs]
    for rank, c in enumerate(result.candidates, 1):
        mine = parse_theory(with_expect(theory.source, c.expect), question)
        if [mine.render_expected(x) for x in inputs] == want:
            return rank, c.found_seconds
    return None


def run_models(budget: float, parity: bool) -> list[dict]:
    from tui_interp.engine.recover import recover
    from tui_interp.model import load_model
    from tui_interp.theory import load_theory

    rows = []
    for name, model, question, rule, should in cases(parity):
        lm = load_model(model, device="cpu")
        theory = load_theory(question)
        t0 = time.perf_counter()
        result = recover(lm, theory, seconds=budget)
        wall = time.perf_counter() - t0
        found = first_correct(result, question, rule)
        best = result.best
        rows.append({
            "model": name,
            "rule": rule,
            "explained": result.explained,
            "expected_explained": should,
            "best": best.expect if best else None,
            "best_agreement": best.agreement if best else None,
            "rows": result.n_rows,
            "answers_s": result.table_seconds,
            "search_s": result.search_seconds,
            "tried": result.searched,
            "tried_per_s": result.searched / result.search_seconds if result.search_seconds else None,
            "first_correct_rank": found[0] if found else None,
            "first_correct_search_s": found[1] if found else None,
            "first_correct_total_s": result.table_seconds + found[1] if found else None,
            "wall_s": wall,
            "stopped": result.stopped,
        })
        r = rows[-1]
        ok = "ok" if r["explained"] == should else "WRONG VERDICT"
        first = (f"rank {r['first_correct_rank']} after {r['first_correct_search_s']:.2f} s of search ({r['first_correct_total_s']:.2f} s in all)"
                 if found else "none")
        print(f"{name}: {'explained' if r['explained'] else 'not explained'} ({ok}); best {r['best']} {r['best_agreement']:.2%}; "
              f"{r['rows']:,} rows, answers {r['answers_s']:.2f} s, search {r['search_s']:.2f} s, {r['tried']:,} tried "
              f"({r['tried_per_s']:,.0f}/s); first correct: {first}; stopped: {r['stopped']}", file=sys.stderr)
    return rows


def end_to_end(repeat: int) -> dict:
    argv = [sys.executable, "-m", "tui_interp", "recover", str(MODELS / "modadd-grokked"), str(MODELS / "modadd-grokked" / "modadd.question"),
            "--json"]
    times, cpu, doc = [], [], None
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(argv, check=True, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        doc = json.loads(out.stdout)
    assert doc is not None
    return {"command": "tui-interp recover sample_models/modadd-grokked .../modadd.question --json", "median_s": statistics.median(times),
            "runs_s": times, "median_cpu_s": statistics.median(cpu), "load_average": os.getloadavg(),
            "best": doc["candidates"][0]["expect"], "explained": doc["explained"]}


def synthetic(seconds: float) -> list[dict]:
    """The search alone, with random answers (nothing to find): it runs until the budget."""
    import random

    from tui_interp.engine.recover import AnswerTable, Grammar, SearchBudget, search_rules
    from tui_interp.theory import parse_theory

    out = []
    for hi in (20, 112):
        theory = parse_theory(f'theory "random"\ninput a: int in 0..{hi}\ninput b: int in 0..{hi}\nprompt "{{a}} {{b}} ="\n')
        inputs = list(theory.domain.select().inputs)
        rng = random.Random(0)
        table = AnswerTable.from_answers(theory, inputs, [str(rng.randrange(hi + 1)) for _ in inputs])
        result = search_rules(table, Grammar.for_theory(theory, table, max_size=9), SearchBudget(seconds=seconds))
        out.append({"rows": len(inputs), "tried": result.searched, "distinct": result.distinct, "search_s": result.search_seconds,
                    "tried_per_s": result.searched / result.search_seconds, "complete_size": result.complete_size})
        print(f"synthetic, {len(inputs):,} rows, random answers: {result.searched:,} tried ({out[-1]['tried_per_s']:,.0f}/s), "
              f"{result.distinct:,} distinct, every size up to {result.complete_size} done in {seconds:g} s", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0, help="search budget per model, seconds (the CLI's default)")
    parser.add_argument("--repeat", type=int, default=3, help="end-to-end runs of the grokked model")
    parser.add_argument("--parity", action="store_true", help="also train (once, cached) and recover a parity model")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--end-to-end-only", action="store_true", help="only the end-to-end runs of the grokked model")
    args = parser.parse_args()
    import torch

    doc = {"machine": machine(), "torch_threads": torch.get_num_threads(), "budget_s": args.budget}
    if not args.end_to_end_only:
        doc["models"] = run_models(args.budget, args.parity)
    e2e = doc["end_to_end"] = end_to_end(args.repeat)
    print(f"end to end: {e2e['command']}: median {e2e['median_s']:.2f} s wall, {e2e['median_cpu_s']:.2f} s CPU "
          f"(runs {', '.join(f'{t:.2f}' for t in e2e['runs_s'])}; load average {e2e['load_average'][0]:.1f}), best {e2e['best']}",
          file=sys.stderr)
    if not args.end_to_end_only:
        doc["synthetic"] = synthetic(5.0)
    text = json.dumps(doc, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
