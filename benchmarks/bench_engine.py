"""Engine benchmarks (issue: step through the forward pass, intervene, attribute). One command:

    python benchmarks/bench_engine.py [--json OUT]

1. a full step-through (all steps, state kept) vs one forward with the complete cache
   (GPT-2-small-sized, 1 x 64 tokens): target <= 1.15x;
2. activation patching of all heads x positions on a 2-layer, 8-head model, 20 positions:
   batched vs one forward per patch in a loop (same results): target >= 10x;
3. streaming a ~1 GB checkpoint with a 300 MB memory budget (CPU simulation): peak memory
   (anonymous memory, i.e. converted weights and activations, plus the resident weights that
   stay file-backed on the CPU but would sit in device memory on a GPU) vs the budget, and vs
   the same run without streaming. Each run in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import CACHE, gpt2_small_checkpoint, interleaved, machine, python  # noqa: E402

BUDGET = 300 * 2**20


def bench_step_through() -> dict:
    import torch

    from tui_interp.engine.stepper import Stepper
    from tui_interp.model import load_model

    lm = load_model(gpt2_small_checkpoint(), device="cpu")
    tokens = torch.randint(0, 50257, (1, 64), generator=torch.Generator().manual_seed(0))

    def forward() -> None:
        with torch.inference_mode():
            lm.model.run_with_cache(tokens)

    def step_through() -> None:
        s = Stepper(lm.model, tokens)
        while not s.done:
            s.step()

    t = interleaved({"cached_forward": forward, "step_through": step_through}, repeat=9)
    return {"shape": [1, 64], "seconds": t, "ratio": t["step_through"] / t["cached_forward"], "target": 1.15}


def bench_patching(d_model: int) -> dict:
    import torch
    import transformers

    from tui_interp.components import resolve_components
    from tui_interp.engine.patching import activation_patching, activation_patching_loop
    from tui_interp.model import load_model

    out = CACHE / f"patch-2l-8h-d{d_model}"
    if not (out / "model.safetensors").is_file():
        torch.manual_seed(0)
        config = transformers.GPT2Config(n_layer=2, n_head=8, n_embd=d_model, vocab_size=1000, n_positions=64)
        transformers.GPT2LMHeadModel(config).save_pretrained(out)
    lm = load_model(out, device="cpu")
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 1000, (1, 20), generator=g)
    corrupt = clean.clone()
    corrupt[0, 5] = (corrupt[0, 5] + 1) % 1000
    comps = resolve_components("L*.H*", lm.config)
    results = {}

    def batched() -> None:
        results["batched"] = activation_patching(lm.model, clean, corrupt, 7, comps, other=8, per_position=True).raw

    def loop() -> None:
        results["loop"] = activation_patching_loop(lm.model, clean, corrupt, 7, comps, other=8, per_position=True)

    t = interleaved({"batched": batched, "loop": loop}, repeat=3)
    same = bool(torch.allclose(results["batched"], results["loop"], atol=1e-5))
    return {"d_model": d_model, "patches": len(comps) * 20, "seconds": t, "speedup": t["loop"] / t["batched"], "target": 10.0, "same_results": same}


def big_checkpoint() -> Path:
    """~1 GB fp32 GPT-2-style checkpoint: 16 layers, d_model 1024 (252M parameters)."""
    out = CACHE / "gpt2-1gb-random"
    if (out / "model.safetensors").is_file():
        return out
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=16, n_embd=1024, n_head=16)).save_pretrained(out)
    return out


def _anon_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def _stream_child(stream: bool) -> None:
    import threading
    import time

    import torch

    from tui_interp.model import load_model

    base = _anon_rss()  # torch and the interpreter: not the model's
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _anon_rss())
            time.sleep(0.0005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    lm = load_model(big_checkpoint(), device="cpu", stream=stream)
    tokens = torch.randint(0, 50257, (1, 64), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        logits = lm.model(tokens)
    stop.set()
    th.join()
    resident = sum(p.numel() * p.element_size() for p in lm.model.parameters() if not p.is_meta)
    print(json.dumps({"peak_anon_increase": peak[0] - base, "resident_weights": resident, "logit_sum": float(logits.double().sum())}))


def bench_streaming() -> dict:
    ckpt = big_checkpoint()
    out = {}
    for mode in ("stream", "full"):
        res = subprocess.run([python(), __file__, "--stream-child", mode], check=True, capture_output=True, text=True)
        out[mode] = json.loads(res.stdout.strip().splitlines()[-1])
    return {
        "checkpoint_bytes": (ckpt / "model.safetensors").stat().st_size,
        "budget_bytes": BUDGET,
        # On the CPU, weights read without a conversion stay backed by the mmap'd file (page cache,
        # not anonymous memory); on a GPU they would occupy device memory. So the simulated device
        # memory is the peak anonymous memory plus every weight resident after the run.
        "stream_peak_bytes": out["stream"]["peak_anon_increase"] + out["stream"]["resident_weights"],
        "full_peak_bytes": max(out["full"]["peak_anon_increase"], out["full"]["resident_weights"]),
        "stream_peak_anon_bytes": out["stream"]["peak_anon_increase"],
        "stream_resident_weights_bytes": out["stream"]["resident_weights"],
        "stream_within_budget": out["stream"]["peak_anon_increase"] + out["stream"]["resident_weights"] <= BUDGET,
        "identical_logits": out["stream"]["logit_sum"] == out["full"]["logit_sum"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    ap.add_argument("--stream-child")
    ap.add_argument("--only", choices=["step", "patch", "stream"])
    args = ap.parse_args()
    if args.stream_child:
        _stream_child(args.stream_child == "stream")
        return
    report: dict = {"machine": machine(), "device": "cpu", "dtype": "float32"}
    if args.only in (None, "step"):
        report["step_through"] = bench_step_through()
    if args.only in (None, "patch"):
        report["patching"] = [bench_patching(d) for d in (128, 256)]
    if args.only in (None, "stream"):
        report["streaming"] = bench_streaming()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if "step_through" in report:
        s = report["step_through"]
        print(f"step-through / cached forward: {s['ratio']:.2f}x (target <= {s['target']})", file=sys.stderr)
    if "patching" in report:
        for p in report["patching"]:
            print(f"patching {p['patches']} (head, position) pairs, d_model {p['d_model']}: batched {p['speedup']:.1f}x faster than the loop "
                  f"(target >= 10), same results: {p['same_results']}", file=sys.stderr)
    if "streaming" in report:
        st = report["streaming"]
        mb = 2**20
        print(f"streaming a {st['checkpoint_bytes'] / mb:.0f} MB checkpoint: peak {st['stream_peak_bytes'] / mb:.0f} MB "
              f"vs budget {st['budget_bytes'] / mb:.0f} MB "
              f"(without streaming {st['full_peak_bytes'] / mb:.0f} MB), identical logits: {st['identical_logits']}", file=sys.stderr)


if __name__ == "__main__":
    main()
