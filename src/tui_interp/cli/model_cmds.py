"""Model commands: inspect, run, verify. Thin: parse, call the core, render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from tui_interp.cli import app
from tui_interp.cli.common import (
    EXIT_CHECK_FAILED,
    DeviceOpt,
    DtypeChoice,
    DtypeOpt,
    JsonOpt,
    console,
    emit_json,
    fail,
    user_errors,
)

if TYPE_CHECKING:
    from tui_interp.model.loader import LoadedModel

ModelArg = Annotated[Path, typer.Argument(help="Model directory (HuggingFace layout) or a .safetensors file.", show_default=False)]
BosOpt = Annotated[
    Optional[bool],
    typer.Option("--bos/--no-bos", help="Force a BOS token on or off (default: the tokenizer's post-processor decides).", show_default=False),
]


def model_ref(ckpt: Any) -> dict[str, str]:
    return {"name": ckpt.name, "fingerprint": ckpt.fingerprint}


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


def parse_tokens(text: str) -> list[int]:
    from tui_interp.errors import InputError

    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise InputError(f"--tokens {text!r}: expected comma-separated token ids such as 1,2,3") from None
    if not ids:
        raise InputError("--tokens: no token ids given")
    return ids


def prompt_tokens(lm: LoadedModel, prompt: str | None, tokens: str | None, bos: bool | None) -> tuple[list[int], str]:
    """Token ids to run, and how BOS was decided ("tokenizer", "forced", "removed", "as given")."""
    from tui_interp.errors import InputError

    if (prompt is None) == (tokens is None):
        raise InputError("give exactly one of --prompt TEXT or --tokens 1,2,3")
    if tokens is not None:
        return parse_tokens(tokens), "as given"
    tok = lm.need_tokenizer()
    ids = tok.encode(prompt or "", bos=bos)
    how = "tokenizer" if bos is None else ("forced on" if bos else "forced off")
    if not ids:
        raise InputError("the prompt encodes to no tokens")
    return ids, how


def token_rows(lm: LoadedModel, ids: list[int]) -> list[dict[str, Any]]:
    tok = lm.tokenizer
    return [{"id": i, "text": tok.display(i) if tok is not None and i < tok.vocab_size else f"<{i}>"} for i in ids]


@app.command()
def run(
    model: ModelArg,
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", help="Text to run.")] = None,
    tokens: Annotated[Optional[str], typer.Option("--tokens", help="Token ids to run, e.g. 1,2,3.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="How many next-token predictions to show.")] = 5,
    save_cache: Annotated[Optional[Path], typer.Option("--save-cache", help="Write activations to this .safetensors file.")] = None,
    hooks: Annotated[str, typer.Option("--hooks", help="Glob of hook names to save (with --save-cache).")] = "*",
    ablate: Annotated[Optional[list[str]], typer.Option("--ablate", help="Ablate a component during the run: C[:zero|mean|resample] (repeatable; C an id or glob).")] = None,
    steer: Annotated[Optional[list[str]], typer.Option("--steer", help="Add a vector to a hook: HOOK=FILE.safetensors[*COEF] (the file holds one tensor; repeatable).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random reference batch for mean/resample ablation.")] = 0,
    bos: BosOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Run a prompt: the tokens it ran, the top next tokens, and the logit lens."""
    with user_errors():
        import torch

        from tui_interp.engine.cache import save_cache as write_cache
        from tui_interp.engine.lens import logit_lens, top_k as topk

        from tui_interp.engine.ablation import reference_batch
        from tui_interp.engine.interventions import hooks_for, parse_interventions, prepare

        lm = load(model, device, dtype)
        ids, bos_how = prompt_tokens(lm, prompt, tokens, bos)
        t = torch.tensor([ids], device=lm.device)
        ivs = parse_interventions(ablate or [], lm.config)
        reference = None
        if any(iv.needs_reference for iv in ivs):
            ref, reference = reference_batch(lm, len(ids), None, seed=seed)
            ivs = prepare(ivs, lm.model, reference=ref, seed=seed)
        ivs = [*ivs, *(parse_steering(spec, lm) for spec in steer or [])]
        patterns = ["blocks.0.hook_resid_pre", "blocks.*.hook_resid_post"]
        if save_cache is not None:
            patterns.append(hooks)
            lm.model.match_hooks(hooks)  # a glob that matches nothing is an error before running
        with torch.inference_mode():
            logits, cache = lm.model.run_with_cache(t, patterns, hooks=hooks_for(ivs, lm.config))
        lens = logit_lens(lm.model, cache, k=top_k)
        saved = None
        if save_cache is not None:
            saved = write_cache(save_cache, lm, ids, logits, cache, hooks, interventions=[str(iv) for iv in ivs])
    name = lambda i: token_rows(lm, [i])[0]["text"]  # noqa: E731
    top = [{"id": s.id, "text": name(s.id), "logit": s.logit, "prob": s.prob} for s in topk(logits[0, -1], top_k)]
    doc = {
        "model": model_ref(lm.checkpoint),
        "device": str(lm.device),
        "dtype": str(lm.dtype).removeprefix("torch."),
        "bos": bos_how,
        "tokens": token_rows(lm, ids),
        "interventions": [str(iv) for iv in ivs],
        "reference": reference,
        "top_k": top,
        "logit_lens": [
            {"after": row.label, "top": [{"id": s.id, "text": name(s.id), "prob": s.prob} for s in row.top]} for row in lens
        ],
        "saved_cache": saved,
    }
    if json:
        emit_json(doc)
        return
    console.print(f"[bold]{escape(lm.name)}[/] on {lm.device} ({doc['dtype']}), BOS: {bos_how}")
    if ivs:
        console.print("ablated: " + escape(", ".join(doc["interventions"])) + (f" (reference: {escape(reference)})" if reference else ""))
    console.print("tokens: " + "  ".join(f"[dim]{r['id']}[/]:{escape(repr(r['text']))}" for r in doc["tokens"]))
    table = Table(title="next token")
    for col in ("#", "id", "token", "prob", "logit"):
        table.add_column(col, justify="right" if col != "token" else "left")
    for rank, row in enumerate(top, 1):
        table.add_row(str(rank), str(row["id"]), escape(repr(row["text"])), f"{row['prob']:.3f}", f"{row['logit']:.2f}")
    console.print(table)
    lens_table = Table(title="logit lens (last position)")
    lens_table.add_column("after")
    lens_table.add_column("top predictions")
    for row in doc["logit_lens"]:
        lens_table.add_row(row["after"], "  ".join(f"{escape(repr(s['text']))} {s['prob']:.2f}" for s in row["top"]))
    console.print(lens_table)
    if saved:
        console.print(f"saved {saved['n_tensors']} activations to {escape(saved['path'])}")


def parse_steering(spec: str, lm: LoadedModel):  # noqa: ANN201 -- engine.interventions.Steering
    """`HOOK=FILE.safetensors[*COEF]` -> a Steering intervention."""
    from safetensors import SafetensorError, safe_open

    from tui_interp.engine.interventions import Steering
    from tui_interp.errors import InputError

    hook, sep, rest = spec.partition("=")
    if not sep or not hook or not rest:
        raise InputError(f"--steer {spec!r}: expected HOOK=FILE.safetensors[*COEF]")
    path, _, coef_text = rest.partition("*")
    try:
        coefficient = float(coef_text) if coef_text else 1.0
    except ValueError:
        raise InputError(f"--steer {spec!r}: the coefficient after * must be a number") from None
    lm.model.match_hooks(hook)
    try:
        with safe_open(path, framework="pt") as f:
            keys = list(f.keys())
            if len(keys) != 1:
                raise InputError(f"{path}: a steering file holds exactly one tensor, found {len(keys)}")
            vector = f.get_tensor(keys[0])
    except (SafetensorError, OSError) as e:
        raise InputError(f"{path}: cannot read steering vector: {e}") from e
    return Steering(hook, vector.flatten() if vector.dim() > 1 and vector.shape[0] == 1 else vector, coefficient)


@app.command()
def verify(
    model: ModelArg,
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="Prompt to compare on (repeatable; default: seeded random tokens).")] = None,
    tolerance: Annotated[Optional[float], typer.Option("--tolerance", help="Max |Δlogit| (default 1e-4 in float32, 5e-2 in half precision).")] = None,
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
        emit_json({"model": model_ref(lm.checkpoint), "device": str(lm.device), **report.to_json()})
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
            raise fail(f"logits differ from transformers by {report.max_abs_logit_diff:.2e} > {report.tolerance:.0e}", EXIT_CHECK_FAILED)
        raise typer.Exit(EXIT_CHECK_FAILED)
