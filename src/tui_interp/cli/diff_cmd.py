"""`diff`: which components behave differently between two checkpoints of one architecture. Thin:
parse, call engine.diff, render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tui_interp.cli import app
from tui_interp.cli.common import DeviceOpt, DtypeChoice, DtypeOpt, JsonOpt, MaxWorkOpt, SeedOpt, console, drive, emit_json, user_errors, warn_non_finite
from tui_interp.cli.model_cmds import ModelArg

if TYPE_CHECKING:
    from tui_interp.engine.diff import DiffResult


@app.command("diff")
def diff_command(
    model_a: ModelArg,
    model_b: ModelArg,
    theory: Annotated[
        Path | None, typer.Option("--theory", help="Inputs from this theory's domain; agreement with its expect (a question works too).", show_default=False)
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help="Inputs from this file, one prompt per line; the behaviour is the next-token loss.", show_default=False)
    ] = None,
    neurons: Annotated[bool, typer.Option("--neurons", help="Also score every MLP neuron.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Enumerate theory domains up to this size; sample this many inputs from larger ones.")] = 200_000,
    seed: SeedOpt = 0,
    random_inputs: Annotated[int, typer.Option("--random", min=1, help="Without --theory or --prompts: this many seeded random token sequences.")] = 256,
    length: Annotated[
        int | None, typer.Option("--length", min=1, help="Length of the random sequences (default: 16, or the context less one).", show_default=False)
    ] = None,
    answer_tokens: Annotated[int, typer.Option("--answer-tokens", min=1, help="Answer length for a question's inputs.")] = 1,
    ablation_inputs: Annotated[
        int, typer.Option("--ablation-inputs", min=1, help="Inputs the ablation effects are measured on (a seeded sample beyond).")
    ] = 512,
    ablate_top: Annotated[
        int, typer.Option("--ablate-top", min=0, help="Measure ablation effects for this many of the most changed components (0: none).")
    ] = 64,
    show: Annotated[int, typer.Option("--show", min=0, help="How many disagreeing inputs to show.")] = 10,
    top: Annotated[int, typer.Option("--top", min=1, help="How many components to list (text output; --json lists all).")] = 20,
    stream: Annotated[bool, typer.Option("--stream", help="Keep one block of each model in memory at a time.")] = False,
    max_work: MaxWorkOpt = 500_000_000,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Which components behave differently between two checkpoints of one architecture (weights,
    activations, effects), and the inputs on which the two models answer differently."""
    with user_errors():
        from tui_interp.engine.diff import DiffResult, check_compatible, iter_diff
        from tui_interp.engine.tokens import read_prompts
        from tui_interp.errors import InputError
        from tui_interp.model.checkpoint import open_checkpoint
        from tui_interp.model.loader import load_model
        from tui_interp.theory import load_theory

        if theory is not None and prompts is not None:
            raise InputError("give --theory or --prompts, not both")
        ckpt_a, ckpt_b = open_checkpoint(model_a), open_checkpoint(model_b)
        check_compatible(ckpt_a, ckpt_b)
        th = load_theory(theory) if theory is not None else None
        texts = read_prompts(prompts) if prompts is not None else None

        def load(ckpt):  # noqa: ANN001, ANN202 -- Checkpoint -> LoadedModel
            return load_model(ckpt, device=device, dtype=dtype.value, stream=stream)

        events = iter_diff(ckpt_a, ckpt_b, theory=th, prompts=texts, neurons=neurons, limit=limit, seed=seed, n_random=random_inputs,
                           length=length, answer_tokens=answer_tokens, ablation_inputs=ablation_inputs, ablate_top=ablate_top,
                           max_work=max_work, load=load)
        result = drive(events, DiffResult, quiet=json)
    if json:
        emit_json(result.to_json(show))
    else:
        _render(result, show, top)


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def _render(result: DiffResult, show: int, top: int) -> None:
    from tui_interp.engine.diff import SCORE_FORMULA, describe_input
    from tui_interp.model.tokenizer import display_text

    warn_non_finite(result.to_json(0))
    a, b = result.model_a["name"], result.model_b["name"]
    console.print(f"[bold]{escape(a)}[/] (A) vs [bold]{escape(b)}[/] (B) on {escape(result.inputs)}")
    if result.agreement_a is not None:
        console.print(f"agreement with the theory: A {result.agreement_a:.2%}, B {result.agreement_b:.2%}")
    console.print(f"loss of the answers: A {result.loss_a:.4f}, B {result.loss_b:.4f} nats per token")
    changed = len(result.changed)
    console.print(f"{changed:,} of {len(result.components):,} components changed; "
                  f"{result.n_disagreements:,} of {result.n_inputs:,} inputs answered differently")
    if result.unmapped:
        console.print("[yellow]changed parameters no component owns:[/] " + escape(", ".join(result.unmapped)))
    table = Table(title=f"components, highest score first ({min(top, len(result.components))} of {len(result.components):,})")
    for col in ("component", "score", "ΔW", "Δact", "Δout", "DLA A", "DLA B", "abl A", "abl B"):
        table.add_column(col, justify="left" if col == "component" else "right", no_wrap=True)
    for c in result.components[:top]:
        table.add_row(str(c.component), _num(c.score), _num(c.weight_change), _num(c.activation_change), _num(c.output_change),
                      _num(c.effect_a), _num(c.effect_b), _num(c.ablation_a), _num(c.ablation_b))
    console.print(table)
    console.print(escape("ΔW: weight change, Δact: activation change (B's component on A's inputs), Δout: output change in context, "
                         "DLA: direct logit attribution to the answer, abl: cost of mean-ablating it"), style="dim")
    console.print(escape(SCORE_FORMULA), style="dim")
    console.print(escape(f"ablation: {result.ablation_inputs}"), style="dim")
    if not result.disagreements or show == 0:
        if not result.disagreements:
            console.print("A and B give the same answer on every input")
        return
    table = Table(title=f"inputs answered differently ({min(show, result.n_disagreements):,} of {result.n_disagreements:,}; both confident first)")
    cols = ["input", "A", "p(A)", "B", "p(B)"] + (["expected"] if result.agreement_a is not None else [])
    for col in cols:
        table.add_column(col)
    for d in result.disagreements[:show]:
        row = [escape(display_text(describe_input(d))), escape(display_text(d.answer_a)), f"{d.p_a:.3f}",
               escape(display_text(d.answer_b)), f"{d.p_b:.3f}"]
        if result.agreement_a is not None:
            row.append(escape(display_text(d.expected or "")))
        table.add_row(*row)
    console.print(table)
