"""Model-core benchmarks (issue: load real safetensors checkpoints...). One command:

    python benchmarks/bench_model.py [--device cpu|cuda] [--dtype float32|bfloat16] [--json OUT] [--only load]

1. open + inspect of a GPT-2-small-sized checkpoint vs `python -c "import torch, safetensors"`;
2. forward with the complete activation cache vs HF transformers' forward with
   output_hidden_states + output_attentions (eager), batch 8 x 128;
3. forward without cache vs HF's default forward (sdpa);
4. peak memory of 2 and 3 (after a warm-up forward, so the mapped weights are resident), each
   measured in a fresh subprocess;
5. memory added by opening and loading the model (peak and settled resident set, RSS; on CUDA
   the device memory too) vs transformers' from_pretrained, each in a fresh subprocess with its
   libraries imported before the measurement starts; then after one forward of 1 x 16 tokens.
Ratios are ours / baseline, measured in the same run. Targets: 1 <= 1.3, 2 <= 1.0, 3 <= 1.05,
5: no more than transformers (issue 18: loading added 674 MB where transformers added 125 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import PeakRSS, gpt2_small_checkpoint, interleaved, machine, python, rss_bytes, run_cmd  # noqa: E402

BATCH, POS = 8, 128


def bench_inspect(ckpt: Path) -> dict:
    exe = str(Path(python()).with_name("tui-interp"))
    t = interleaved(
        {
            "baseline": run_cmd([python(), "-c", "import torch, safetensors"]),
            "inspect": run_cmd([exe, "inspect", str(ckpt), "--json"]),
        },
        repeat=7,
    )
    return {"baseline_s": t["baseline"], "ours_s": t["inspect"], "ratio": t["inspect"] / t["baseline"], "target": 1.3}


def _forward_fns(ckpt: Path, device: str, dtype: str):
    import torch
    import transformers

    from tui_interp.model import load_model

    transformers.logging.set_verbosity_error()
    tdtype = getattr(torch, dtype)
    lm = load_model(ckpt, device=device, dtype=dtype)
    hf_eager = transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=tdtype, attn_implementation="eager").to(device).eval()
    hf_default = transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=tdtype).to(device).eval()
    tokens = torch.randint(0, 50257, (BATCH, POS), generator=torch.Generator().manual_seed(0)).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def wrap(fn):
        def go():
            with torch.inference_mode():
                fn()
            sync()

        return go

    return {
        "ours_cache": wrap(lambda: lm.model.run_with_cache(tokens)),
        "hf_outputs": wrap(lambda: hf_eager(tokens, output_hidden_states=True, output_attentions=True)),
        "ours_nocache": wrap(lambda: lm.model(tokens)),
        "hf_default": wrap(lambda: hf_default(tokens)),
        "ours_same_content": wrap(
            lambda: lm.model.run_with_cache(tokens, ["blocks.*.hook_resid_pre", "blocks.*.attn.hook_pattern", "ln_final.hook_normalized"])
        ),
    }, f"{getattr(hf_default.config, '_attn_implementation', '?')}"


def bench_forward(ckpt: Path, device: str, dtype: str, repeat: int) -> dict:
    fns, hf_attn = _forward_fns(ckpt, device, dtype)
    t = interleaved(fns, repeat=repeat)
    return {
        "shape": [BATCH, POS],
        "hf_default_attn": hf_attn,
        "seconds": t,
        "cache_ratio": t["ours_cache"] / t["hf_outputs"],
        "cache_target": 1.0,
        "same_content_ratio": t["ours_same_content"] / t["hf_outputs"],
        "nocache_ratio": t["ours_nocache"] / t["hf_default"],
        "nocache_target": 1.05,
    }


def _memory_child(ckpt: str, which: str, device: str, dtype: str) -> None:
    import torch

    fns, _ = _forward_fns(Path(ckpt), device, dtype)
    fn = fns[which]
    # Warm up first: weights are memory-mapped (ours, and transformers 5's), so the first forward
    # also faults the checkpoint's pages in; what is measured here is the forward's own memory.
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        print(json.dumps({"peak_increase": torch.cuda.max_memory_allocated() - base}))
        return
    with PeakRSS() as m:
        fn()
    print(json.dumps({"peak_increase": m.increase}))


def bench_memory(ckpt: Path, device: str, dtype: str) -> dict:
    out = {}
    for which in ("ours_cache", "ours_same_content", "hf_outputs", "ours_nocache", "hf_default"):
        res = subprocess.run([python(), __file__, "--memory-child", which, "--device", device, "--dtype", dtype],
                             check=True, capture_output=True, text=True)
        out[which] = json.loads(res.stdout.strip().splitlines()[-1])["peak_increase"]
    return {
        "peak_increase_bytes": out,
        "cache_ratio": out["ours_cache"] / out["hf_outputs"],
        "same_content_ratio": out["ours_same_content"] / out["hf_outputs"],
        "nocache_ratio": out["ours_nocache"] / out["hf_default"],
    }


def _load_child(ckpt: str, which: str, device: str, dtype: str) -> None:
    """Memory added by open + load (and by a first forward), in this fresh process."""
    import time

    import torch

    tdtype = getattr(torch, dtype)
    if which == "ours":
        from tui_interp.model import load_model

        def load():
            return load_model(ckpt, device=device, dtype=dtype).model
    else:
        import transformers

        transformers.logging.set_verbosity_error()
        _ = transformers.GPT2LMHeadModel  # import the modeling code before measuring

        def load():
            return transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=tdtype).to(device).eval()

    tokens = torch.randint(0, 50257, (1, 16), generator=torch.Generator().manual_seed(0)).to(device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats()
    base_dev = torch.cuda.memory_allocated() if cuda else 0
    t0 = time.perf_counter()
    with PeakRSS() as m:
        model = load()
    seconds = time.perf_counter() - t0
    settled = rss_bytes() - m.base
    with torch.inference_mode(), PeakRSS() as f:
        model(tokens)
    out = {"peak_increase": m.increase, "settled_increase": settled, "seconds": seconds,
           "after_forward_increase": rss_bytes() - m.base, "forward_peak_increase": f.peak - m.base}
    if cuda:
        out["device_peak_increase"] = torch.cuda.max_memory_allocated() - base_dev
    print(json.dumps(out))


def bench_load(ckpt: Path, device: str, dtype: str, repeat: int = 3, previous: Path | None = None) -> dict:
    """Open + load, ours vs transformers' from_pretrained: medians over `repeat` fresh processes each.
    `previous`: a `src` directory of an earlier tui-interp (e.g. `git archive REV src | tar -x`), measured alike."""
    import statistics

    runs: dict[str, list[dict]] = {"ours": [], "hf": []}
    if previous is not None:
        runs["previous"] = []
    for _ in range(repeat):
        for which in runs:  # interleaved, so background load hits all alike
            env = dict(os.environ, PYTHONPATH=str(previous)) if which == "previous" else None
            res = subprocess.run([python(), __file__, "--load-child", "hf" if which == "hf" else "ours", "--device", device, "--dtype", dtype],
                                 check=True, capture_output=True, text=True, env=env)
            runs[which].append(json.loads(res.stdout.strip().splitlines()[-1]))
    med = {w: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for w, rs in runs.items()}
    out = {
        "checkpoint_bytes": os.path.getsize(ckpt / "model.safetensors"),
        "ours": med["ours"],
        "transformers": med["hf"],
        "peak_ratio": med["ours"]["peak_increase"] / med["hf"]["peak_increase"],
        "settled_ratio": med["ours"]["settled_increase"] / med["hf"]["settled_increase"],
    }
    if previous is not None:
        out["previous"] = med["previous"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--memory-child")
    ap.add_argument("--load-child")
    ap.add_argument("--only", choices=["load", "memory"])
    ap.add_argument("--previous-src", type=Path, help="src/ of an earlier tui-interp to measure open+load against")
    args = ap.parse_args()
    ckpt = gpt2_small_checkpoint()
    if args.memory_child:
        _memory_child(str(ckpt), args.memory_child, args.device, args.dtype)
        return
    if args.load_child:
        _load_child(str(ckpt), args.load_child, args.device, args.dtype)
        return
    import torch

    if args.only == "memory":
        m = bench_memory(ckpt, args.device, args.dtype)
        print(json.dumps(m, indent=2))
        print(f"peak memory: full cache / HF outputs {m['cache_ratio']:.2f}x, same content {m['same_content_ratio']:.2f}x, "
              f"no cache / HF default {m['nocache_ratio']:.2f}x", file=sys.stderr)
        return
    if args.only == "load":
        report = {"machine": machine(), "device": args.device, "dtype": args.dtype, "torch": torch.__version__,
                  "load": bench_load(ckpt, args.device, args.dtype, previous=args.previous_src)}
        text = json.dumps(report, indent=2)
        print(text)
        if args.json:
            args.json.write_text(text + "\n")
        _print_load(report["load"])
        return

    report = {
        "machine": machine(),
        "device": args.device,
        "dtype": args.dtype,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "checkpoint": str(ckpt),
        "checkpoint_bytes": os.path.getsize(ckpt / "model.safetensors"),
        "inspect": bench_inspect(ckpt) if args.device == "cpu" else None,
        "forward": bench_forward(ckpt, args.device, args.dtype, args.repeat),
        "memory": bench_memory(ckpt, args.device, args.dtype),
        "load": bench_load(ckpt, args.device, args.dtype, previous=args.previous_src),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    i, f, m = report["inspect"], report["forward"], report["memory"]
    if i:
        print(f"open+inspect / import torch,safetensors: {i['ratio']:.2f}x (target <= {i['target']})", file=sys.stderr)
    print(f"forward+full cache / HF outputs: {f['cache_ratio']:.2f}x time (target <= 1.0), {m['cache_ratio']:.2f}x peak memory", file=sys.stderr)
    print(f"forward+HF-equivalent cache / HF outputs: {f['same_content_ratio']:.2f}x time, {m['same_content_ratio']:.2f}x peak memory", file=sys.stderr)
    print(f"forward no cache / HF default ({f['hf_default_attn']}): {f['nocache_ratio']:.2f}x time (target <= 1.05), "
          f"{m['nocache_ratio']:.2f}x peak memory", file=sys.stderr)
    _print_load(report["load"])


def _print_load(load: dict) -> None:
    mb = 2**20
    o, h = load["ours"], load["transformers"]
    print(f"open+load adds {o['peak_increase'] / mb:.0f} MB peak RSS ({o['settled_increase'] / mb:.0f} MB settled, {o['seconds']:.2f} s); "
          f"transformers' from_pretrained {h['peak_increase'] / mb:.0f} MB ({h['settled_increase'] / mb:.0f} MB settled, {h['seconds']:.2f} s): "
          f"{load['peak_ratio']:.2f}x peak", file=sys.stderr)
    print(f"after one forward: ours +{o['after_forward_increase'] / mb:.0f} MB, transformers +{h['after_forward_increase'] / mb:.0f} MB",
          file=sys.stderr)
    if "previous" in load:
        p = load["previous"]
        print(f"previous version: open+load adds {p['peak_increase'] / mb:.0f} MB peak, +{p['after_forward_increase'] / mb:.0f} MB after one forward",
              file=sys.stderr)


if __name__ == "__main__":
    main()
