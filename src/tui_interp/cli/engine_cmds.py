"""Engine commands: step, ablate, patch, lens. Thin: parse, call the engine, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tui_interp.cli import app
from tui_interp.cli.common import DeviceOpt, DtypeChoice, DtypeOpt, JsonOpt, PromptOpt, SeedOpt, TokensOpt, console, emit_json, user_errors
from tui_interp.cli.model_cmds import BosOpt, ModelArg, load

TopKOpt = Annotated[int, typer.Option("--top-k", min=1, help="How many predictions to show.")]
StreamOpt = Annotated[bool, typer.Option("--stream", help="Keep one block's weights on the device at a time (models bigger than memory).")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="Target token (text, or #ID); default: the clean run's top prediction.")]
OtherOpt = Annotated[str | None, typer.Option("--other", help="Second token: measure the logit difference target - other.")]


def _fmt_scores(rows: list[dict[str, Any]]) -> str:
    return "  ".join(f"{escape(repr(r['text']))} {r['prob']:.2f}" for r in rows)


@app.command()
def step(
    model: ModelArg,
    prompt: PromptOpt = None,
    tokens: TokensOpt = None,
    to: Annotated[str | None, typer.Option("--to", help="Step to stop at: an index or a name (embed, L0.attn, L0.mlp, ..., unembed).")] = None,
    top_k: TopKOpt = 3,
    bos: BosOpt = None,
    stream: StreamOpt = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Step through the forward pass to a step and show the state there."""
    with user_errors():
        from tui_interp.engine.stepper import step_report
        from tui_interp.engine.tokens import encode_prompt

        lm = load(model, device, dtype, stream)
        ids, _ = encode_prompt(lm, prompt, tokens, bos)
        report = step_report(lm, ids, to, k=top_k)
        doc = report.to_json()
        state = report
    if json:
        emit_json(doc)
        return
    bar = " ".join(f"[reverse]{escape(s)}[/]" if i == state.index else f"[dim]{escape(s)}[/]" for i, s in enumerate(doc["steps"]))
    console.print(f"step {state.index}/{len(doc['steps']) - 1}: {bar}")
    table = Table(title=f"after {escape(str(state.step))}: logit lens per position")
    for col in ("pos", "token", "|resid|", "top predictions"):
        table.add_column(col)
    for p, (tok, norm, row) in enumerate(zip(doc["tokens"], doc["resid_norms"], doc["lens"], strict=True)):
        table.add_row(str(p), escape(repr(tok["text"])), f"{norm:.1f}", _fmt_scores(row))
    console.print(table)
    if "top_neurons" in doc:
        console.print("top neurons at the last position: " + ", ".join(f"{n['neuron']} {n['activation']:.2f}" for n in doc["top_neurons"]))
    if "attention" in doc:
        console.print("attention from the last position (head: top key):")
        for head, pattern in doc["attention"].items():
            last = pattern[-1]
            k = max(range(len(last)), key=lambda i: last[i])
            console.print(f"  {head}: {k} {escape(repr(doc['tokens'][k]['text']))} ({last[k]:.2f})")


@app.command()
def ablate(
    model: ModelArg,
    component: Annotated[list[str], typer.Option("--component", "-c", help="Component id or glob (repeatable), e.g. L0.H3, L1.mlp, L0.*, L1.N7.")],
    prompt: PromptOpt = None,
    tokens: TokensOpt = None,
    mode: Annotated[str, typer.Option("--mode", help="zero | mean | resample (mean/resample over --reference prompts, else seeded random tokens).")] = "zero",
    reference: Annotated[list[str] | None, typer.Option("--reference", help="Reference prompt for mean/resample (repeatable).")] = None,
    target: TargetOpt = None,
    other: OtherOpt = None,
    top_k: TopKOpt = 5,
    seed: SeedOpt = 0,
    bos: BosOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Ablate components and show the effect on the prediction and the target's logit."""
    with user_errors():
        from tui_interp.engine.ablation import ablation_effect
        from tui_interp.engine.interventions import parse_interventions, reference_batch
        from tui_interp.engine.tokens import encode_prompt

        lm = load(model, device, dtype)
        ids, _ = encode_prompt(lm, prompt, tokens, bos)
        ivs = parse_interventions(component, lm.config, default_mode=mode)
        ref = reference_batch(lm, len(ids), prompts=reference, seed=seed) if mode in ("mean", "resample") else None
        result = ablation_effect(lm, ids, ivs, target=target, other=other, reference=ref, seed=seed, k=top_k)
        doc = result.to_json(lm, ids)
    if json:
        emit_json(doc)
        return
    what = "logit" if result.other is None else f"logit - logit({escape(repr(doc['other']['text']))})"
    console.print(f"ablated {escape(', '.join(doc['interventions']))}" + (f" (reference: {escape(result.reference)})" if result.reference else ""))
    console.print(f"target {escape(repr(doc['target']['text']))}: {what} {result.clean_metric:.3f} -> {result.ablated_metric:.3f} "
                  f"(Δ {doc['metric_change']:+.3f}), p {result.target.prob:.3f} -> {result.target_ablated.prob:.3f}")
    console.print("clean:   " + _fmt_scores(doc["clean"]["top_k"]))
    console.print("ablated: " + _fmt_scores(doc["ablated"]["top_k"]))


@app.command()
def patch(
    model: ModelArg,
    clean: Annotated[str, typer.Option("--clean", help="The clean prompt.")],
    corrupt: Annotated[str, typer.Option("--corrupt", help="The corrupted prompt (same number of tokens).")],
    target: TargetOpt = None,
    other: Annotated[str | None, typer.Option("--other", help="Second token for the logit difference (default: the corrupted run's top prediction).")] = None,
    components: Annotated[str, typer.Option("--components", help="Components to patch (glob or comma list).")] = "L*.H*,L*.mlp",
    per_position: Annotated[bool, typer.Option("--per-position", help="Patch each (component, position) separately.")] = False,
    bos: BosOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Activation patching: how much of the clean behaviour each component restores in the corrupted run."""
    with user_errors():
        from tui_interp.engine.patching import patch_prompts
        from tui_interp.engine.tokens import encode_prompt

        lm = load(model, device, dtype)
        clean_ids, _ = encode_prompt(lm, clean, None, bos)
        corrupt_ids, _ = encode_prompt(lm, corrupt, None, bos)
        report = patch_prompts(lm, clean_ids, corrupt_ids, target=target, other=other,
                               components=components, per_position=per_position)
        result = report.result
        doc = report.to_json()
    if json:
        emit_json(doc)
        return
    console.print(f"metric: {doc['metric']}; clean {result.clean:.3f}, corrupt {result.corrupt:.3f}; effect = (patched - corrupt) / (clean - corrupt)")
    table = Table()
    table.add_column("component")
    if per_position:
        for p, tokrow in enumerate(doc["clean_tokens"]):
            table.add_column(f"{p}:{escape(tokrow['text'][:6])}", justify="right")
    else:
        table.add_column("effect", justify="right")
    for row in doc["results"]:
        values = row["effect"] if per_position else [row["effect"]]
        table.add_row(row["component"], *["nan" if v is None else f"{v:+.2f}" for v in values])
    console.print(table)


@app.command()
def lens(
    model: ModelArg,
    prompt: PromptOpt = None,
    tokens: TokensOpt = None,
    top_k: TopKOpt = 3,
    target: Annotated[str | None, typer.Option("--target", help="Also attribute this token's logit to every component (direct logit attribution).")] = None,
    other: OtherOpt = None,
    bos: BosOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Logit lens at every layer and position; with --target, direct logit attribution per component."""
    with user_errors():
        from tui_interp.engine.lens import lens_report
        from tui_interp.engine.tokens import encode_prompt, parse_target

        lm = load(model, device, dtype)
        ids, _ = encode_prompt(lm, prompt, tokens, bos)
        tgt = parse_target(lm, target) if target is not None else None
        oth = parse_target(lm, other) if other else None
        doc = lens_report(lm, ids, k=top_k, target=tgt, other=oth).to_json()
        rows = doc["lens"]
    if json:
        emit_json(doc)
        return
    table = Table(title="logit lens (top-1 per layer and position)")
    table.add_column("after")
    for tok in doc["tokens"]:
        table.add_column(escape(repr(tok["text"])))
    for i, r in enumerate(rows[0]):
        table.add_row(r["after"], *[escape(repr(rows[p][i]["top"][0]["text"])) for p in range(len(ids))])
    console.print(table)
    if "attribution" in doc:
        a = doc["attribution"]
        console.print(f"direct logit attribution to {escape(repr(a['target']['text']))} at position {a['position']} "
                      f"(final-norm scale {a['final_norm_scale']:.3f} held fixed): sum {a['sum']:.3f} = logit {a['logit']:.3f}")
        ranked = sorted(a["contributions"].items(), key=lambda kv: -abs(kv[1]))[:12]
        dla = Table()
        dla.add_column("component")
        dla.add_column("direct effect", justify="right")
        for name, v in ranked:
            dla.add_row(name, f"{v:+.3f}")
        dla.add_row("[dim]biases[/]", f"{a['bias']:+.3f}")
        console.print(dla)


@app.command()
def suggest(
    model: ModelArg,
    theory: Annotated[Path | None, typer.Option("--theory", help="Measure on this theory's prompts (and suggest 'attends to <input>').")] = None,
    min_score: Annotated[
        float | None,
        typer.Option("--min-score", min=0.0, max=1.0, help="Suggest every pattern scoring at least this (default: 0.5; 0.4 for induction heads)."),
    ] = None,
    accept: Annotated[bool, typer.Option("--accept", help="Write the best suggestion of each unlabelled head to the label file.")] = False,
    labels: Annotated[Path | None, typer.Option("--labels", help="Label file (default: the model's).")] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Suggest labels for attention heads by matching their patterns to known ones (--json: every head's score for every pattern)."""
    with user_errors():
        from tui_interp.engine.suggest import accept_suggestions, head_pattern_scores, suggest_head_labels
        from tui_interp.engine.tokens import model_json
        from tui_interp.labels import LabelStore
        from tui_interp.theory import load_theory

        th = load_theory(theory) if theory is not None else None
        lm = load(model, device, dtype)
        scores = head_pattern_scores(lm, th, seed=seed)
        found = suggest_head_labels(lm, th, min_score=min_score, scores=scores)
        written: list[str] = []
        if accept:
            command = f"tui-interp suggest {model}" + (f" --theory {theory}" if theory else "")
            written = accept_suggestions(found, LabelStore.for_checkpoint(lm.checkpoint, labels), command=command)
        doc = {
            "model": model_json(lm),
            "suggestions": [s.to_json() for s in found],
            "scores": [s.to_json() for s in scores],
            "accepted": written,
        }
    if json:
        emit_json(doc)
        return
    table = Table(title="suggested head labels (best first)")
    for col in ("head", "suggestion", "score", "measured as"):
        table.add_column(col)
    for s in found:
        table.add_row(s.component, escape(s.name), f"{s.score:.2f}", escape(s.metric))
    console.print(table if found else "no head matches a known pattern above the threshold")
    if found:
        console.print(escape(f"measured on {found[0].inputs}"), style="dim")
    if written:
        console.print(f"labelled {', '.join(written)}")
