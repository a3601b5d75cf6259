"""Theory comparison benchmark (issue: typed theories...). One command:

    python benchmarks/bench_compare.py [--baseline-inputs N] [--json OUT]

Compares `(a + b) % 113` with sample_models/modadd-grokked over all 12,769 inputs on the CPU
(claims off, search off: the comparison itself), against the obvious baseline measured in the
same run: tokenise each prompt and run HuggingFace transformers' `generate` on the same
weights, one prompt at a time (timed on N inputs, reported as throughput).
Targets: >= 20x the baseline's throughput, and < 2 s wall for the comparison.

Also the answer table (`tui-interp table`, every input's greedy answer) over the same 12,769
inputs against the comparison measured in the same run: the same order of time (ratio ~1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "sample_models" / "modadd-grokked"
THEORY = 'theory "modular addition"\ninput a: int in 0..112\ninput b: int in 0..112\nprompt "{a} {b} ="\nexpect (a + b) % 113\n'


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline-inputs", type=int, default=500)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch
    import transformers
    from tokenizers import Tokenizer

    from tui_interp.engine.compare import compare
    from tui_interp.model import load_model
    from tui_interp.theory import parse_theory

    transformers.logging.set_verbosity_error()
    theory = parse_theory(THEORY)
    lm = load_model(MODEL, device="cpu")
    compare(lm, theory, search=False, claims=False)  # warm-up
    times, result = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        result = compare(lm, theory, search=False, claims=False)
        times.append(time.perf_counter() - t0)
    ours = statistics.median(times)

    from tui_interp.engine.table import answer_table

    answer_table(lm, theory)  # warm-up
    table_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        answer_table(lm, theory)
        table_times.append(time.perf_counter() - t0)
    table = statistics.median(table_times)

    hf = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    inputs = theory.domain.sample(args.baseline_inputs, seed=0)
    agree = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x in inputs:
            ids = torch.tensor([tok.encode(theory.render_prompt(x)).ids])
            out = hf.generate(ids, max_new_tokens=1, do_sample=False, pad_token_id=0)
            agree += tok.decode(out[0, ids.shape[1] :].tolist()) == theory.render_expected(x)
    baseline = (time.perf_counter() - t0) / len(inputs)  # seconds per input
    n = result.n_inputs
    report = {
        "machine": machine(),
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "n_inputs": n,
        "ours_seconds": ours,
        "ours_inputs_per_s": n / ours,
        "baseline_inputs_timed": len(inputs),
        "baseline_inputs_per_s": 1 / baseline,
        "baseline_agreement_on_its_inputs": agree / len(inputs),
        "ours_agreement": result.agreement,
        "throughput_ratio": (n / ours) * baseline,
        "target_ratio": 20,
        "target_seconds": 2.0,
        "table_seconds": table,
        "table_vs_compare": table / ours,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    print(f"compare over {n:,} inputs: {ours:.2f} s (target < 2 s); throughput {report['throughput_ratio']:.0f}x "
          f"one-prompt-at-a-time transformers generate (target >= 20x)", file=sys.stderr)
    print(f"answer table over {n:,} inputs: {table:.2f} s, {table / ours:.2f}x the comparison (target: same order)", file=sys.stderr)


if __name__ == "__main__":
    main()
