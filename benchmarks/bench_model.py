"""Model-core benchmarks (issue: load real safetensors checkpoints...). One command:

    python benchmarks/bench_model.py [--device cpu|cuda] [--dtype float32|bfloat16] [--json OUT]

1. open + inspect of a GPT-2-small-sized checkpoint vs `python -c "import torch, safetensors"`;
2. forward with the complete activation cache vs HF transformers' forward with
   output_hidden_states + output_attentions (eager), batch 8 x 128;
3. forward without cache vs HF's default forward (sdpa);
4. peak memory of 2 and 3, each measured in a fresh subprocess.
Ratios are ours / baseline, measured in the same run. Targets: 1 <= 1.3, 2 <= 1.0, 3 <= 1.05.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import PeakRSS, gpt2_small_checkpoint, interleaved, machine, python, run_cmd  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--memory-child")
    args = ap.parse_args()
    ckpt = gpt2_small_checkpoint()
    if args.memory_child:
        _memory_child(str(ckpt), args.memory_child, args.device, args.dtype)
        return
    import torch

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


if __name__ == "__main__":
    main()
