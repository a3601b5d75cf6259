"""Model commands: inspect, run, verify. Thin: parse, call the core, render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tui_interp.cli import app
from tui_interp.cli.common import (
    EXIT_CHECK_FAILED,
    AblateOpt,
    DeviceOpt,
    DtypeChoice,
    DtypeOpt,
    JsonOpt,
    PromptOpt,
    SeedOpt,
    SteerOpt,
    TokensOpt,
    console,
    emit_json,
    fail,
    user_errors,
    warn_non_finite,
)

if TYPE_CHECKING:
    from tui_interp.model.loader import LoadedModel

ModelArg = Annotated[Path, typer.Argument(help="Model directory (HuggingFace layout) or a .safetensors file.", show_default=False)]
PromptsOpt = Annotated[
    Path | None,
    typer.Option("--prompts", help="A file of prompts, one per line: run each in this one process (JSONL with --json).", show_default=False),
]
BosOpt = Annotated[
    bool | None,
    typer.Option("--bos/--no-bos", help="Force a BOS token on or off (default: the tokenizer's post-processor decides).", show_default=False),
]


@app.command()
def inspect(model: ModelArg, json: JsonOpt = False) -> None:
    """Architecture and size of a checkpoint, from its headers only (no weights are read)."""
    with user_errors():
        from tui_interp.model.checkpoint import open_checkpoint

        ckpt = open_checkpoint(model)
        cfg = ckpt.config
        doc = {
            "name": ckpt.name,
            "path": str(ckpt.path),
            "architecture": cfg.architecture,
            "n_layers": cfg.n_layers,
            "n_heads": cfg.n_heads,
            "n_kv_heads": cfg.n_kv_heads,
            "d_model": cfg.d_model,
            "d_head": cfg.d_head,
            "d_mlp": cfg.d_mlp,
            "vocab_size": cfg.vocab_size,
            "n_ctx": cfg.n_ctx,
            "n_params": ckpt.n_params,
            "dtype": ckpt.dtype,
            "fingerprint": ckpt.fingerprint,
            "norm": cfg.norm,
            "positional": cfg.positional,
            "rotary_dim": cfg.rope.rotary_dim if cfg.rope else None,
            "act_fn": cfg.act_fn,
            "gated_mlp": cfg.gated_mlp,
            "parallel_attn_mlp": cfg.parallel_attn_mlp,
            "tie_word_embeddings": cfg.tie_word_embeddings,
            "files": [str(f) for f in ckpt.files],
            "size_bytes": ckpt.size_bytes,
            "tokenizer": str(ckpt.tokenizer_path) if ckpt.tokenizer_path else None,
        }
    if json:
        emit_json(doc)
        return
    table = Table(title=escape(f"{ckpt.name}  ({cfg.architecture})"), show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("architecture", "n_layers", "n_heads", "n_kv_heads", "d_model", "d_head", "d_mlp", "vocab_size",
                "n_ctx", "n_params", "dtype", "norm", "positional", "rotary_dim", "act_fn", "gated_mlp",
                "parallel_attn_mlp", "tie_word_embeddings", "fingerprint", "tokenizer"):
        value = doc[key]
        if key == "n_params":
            value = f"{value:,}"
        table.add_row(key, escape(str(value)))
    console.print(table)


def load(model: Path, device: str, dtype: DtypeChoice, stream: bool = False) -> LoadedModel:
    from tui_interp.model.loader import load_model

    return load_model(model, device=device, dtype=dtype.value, stream=stream)


@app.command()
def run(
    model: ModelArg,
    prompt: PromptOpt = None,
    tokens: TokensOpt = None,
    prompts: PromptsOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="How many next-token predictions to show.")] = 5,
    save_cache: Annotated[Path | None, typer.Option("--save-cache", help="Write activations to this .safetensors file.")] = None,
    hooks: Annotated[str, typer.Option("--hooks", help="Glob of hook names to save (with --save-cache).")] = "*",
    ablate: AblateOpt = None,
    steer: SteerOpt = None,
    seed: SeedOpt = 0,
    bos: BosOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Run a prompt (or every line of a prompts file): the tokens it ran, the top next tokens, and the logit lens.

    With --prompts FILE and --json, one JSON document per line (JSONL), in the file's order."""
    with user_errors():
        from tui_interp.engine.interventions import parse_steering
        from tui_interp.engine.run import run_prompt
        from tui_interp.engine.tokens import encode_prompts

        lm = load(model, device, dtype)
        batch = encode_prompts(lm, prompt, tokens, prompts, bos)
        if save_cache is not None and prompts is not None:
            raise fail("--save-cache writes the activations of one prompt: give --prompt or --tokens")
        steering = [parse_steering(spec, lm.model) for spec in steer or []]
        for text, ids, bos_how in batch:
            result = run_prompt(lm, ids, top_k_count=top_k, ablate=ablate or [], steer=steering, seed=seed,
                                save_cache=save_cache, hooks=hooks, bos=bos_how)
            doc = {"prompt": text if tokens is None else None, **result.to_json()}
            if json:
                emit_json(doc, lines=prompts is not None)
            else:
                _render_run(lm, doc, many=prompts is not None)


def _render_run(lm: LoadedModel, doc: dict[str, Any], *, many: bool) -> None:
    warn_non_finite(doc)
    if many:
        console.rule(characters="-")
        console.print("prompt: " + escape(repr(doc["prompt"])))
    else:
        console.print(f"[bold]{escape(lm.name)}[/] on {lm.device} ({doc['dtype']}), BOS: {doc['bos']}")
    if doc["interventions"]:
        reference = doc["reference"]
        console.print("ablated: " + escape(", ".join(doc["interventions"])) + (f" (reference: {escape(reference)})" if reference else ""))
    console.print("tokens: " + "  ".join(f"[dim]{r['id']}[/]:{escape(repr(r['text']))}" for r in doc["tokens"]))
    table = Table(title="next token")
    for col in ("#", "id", "token", "prob", "logit"):
        table.add_column(col, justify="right" if col != "token" else "left")
    for rank, row in enumerate(doc["top_k"], 1):
        table.add_row(str(rank), str(row["id"]), escape(repr(row["text"])), _num(row["prob"], ".3f"), _num(row["logit"], ".2f"))
    console.print(table)
    lens_table = Table(title="logit lens (last position)")
    lens_table.add_column("after")
    lens_table.add_column("top predictions")
    for row in doc["logit_lens"]:
        lens_table.add_row(row["after"], "  ".join(f"{escape(repr(s['text']))} {_num(s['prob'], '.2f')}" for s in row["top"]))
    console.print(lens_table)
    saved = doc["saved_cache"]
    if saved:
        console.print(f"saved {saved['n_tensors']} activations to {escape(saved['path'])}")


def _num(x: float | None, fmt: str) -> str:
    return "nan" if x is None else format(x, fmt)


@app.command()
def verify(
    model: ModelArg,
    prompt: Annotated[list[str] | None, typer.Option("--prompt", "-p", help="Prompt to compare on (repeatable; default: seeded random tokens).")] = None,
    tolerance: Annotated[float | None, typer.Option("--tolerance", help="Max |Δlogit| (default 1e-4 in float32, 5e-2 in half precision).")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Compare this tool's forward pass with HuggingFace transformers on the same weights (exit 1 beyond tolerance)."""
    with user_errors():
        import torch

        from tui_interp.model.verify import verify as run_verify

        lm = load(model, device, dtype)
        if prompt:
            tok = lm.need_tokenizer()
            token_lists = [tok.encode(p) for p in prompt]
        else:
            g = torch.Generator().manual_seed(0)
            n = lm.config.n_ctx
            token_lists = [torch.randint(0, lm.config.vocab_size, (length,), generator=g).tolist() for length in sorted({1, min(7, n), min(32, n)})]
        report = run_verify(lm, token_lists, tolerance=tolerance)
    if json:
        from tui_interp.engine.tokens import model_json

        emit_json({"model": model_json(lm), "device": str(lm.device), **report.to_json()})
    else:
        table = Table(title=escape(f"{lm.name}: tui-interp vs transformers {report.transformers_version} ({report.dtype})"))
        for col in ("prompt", "tokens", "max |Δlogit|", "max |Δresid| (layer)", "max |Δpattern|"):
            table.add_column(col, justify="right")
        for i, p in enumerate(report.prompts):
            worst = max(range(len(p.resid_diffs)), key=lambda l: p.resid_diffs[l])
            table.add_row(str(i), str(len(p.tokens)), f"{p.max_abs_logit_diff:.2e}", f"{p.resid_diffs[worst]:.2e} ({worst})",
                          f"{max(p.pattern_diffs, default=0.0):.2e}")
        console.print(table)
        verdict = "[green]OK[/]" if report.ok else "[red]MISMATCH[/]"
        console.print(f"{verdict}: max |Δlogit| {report.max_abs_logit_diff:.2e} (tolerance {report.tolerance:.0e})")
    if not report.ok:
        if not json:
            raise fail(report.verdict, EXIT_CHECK_FAILED)
        raise typer.Exit(EXIT_CHECK_FAILED)
