"""`tui-interp compare MODEL THEORY`: check a theory against the model, with counterexamples."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
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
    err_console,
    fail,
    user_errors,
)
from tui_interp.cli.model_cmds import BosOpt, ModelArg


@app.command()
def compare(
    model: ModelArg,
    theory: Annotated[Path, typer.Argument(help="Theory file (*.theory).", show_default=False)],
    min_agreement: Annotated[float | None, typer.Option("--min-agreement", min=0.0, max=1.0, help="Exit 1 when agreement is below this (0..1).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Enumerate domains up to this size; sample this many inputs from larger ones.")] = 200_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling and the counterexample search.")] = 0,
    show: Annotated[int, typer.Option("--show", min=0, help="How many counterexamples to show.")] = 10,
    search: Annotated[bool, typer.Option("--search/--no-search", help="Hunt for more counterexamples near failures (sampled domains).")] = True,
    labels: Annotated[Path | None, typer.Option("--labels", help="Label file for `claim label` (default: the model's).")] = None,
    record_evidence: Annotated[bool, typer.Option("--record-evidence", help="Write each checked claim into the labels of the components it is about.")] = False,
    bos: BosOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Check a theory against the model over its whole input domain; exit 1 below --min-agreement."""
    with user_errors():
        from tui_interp.engine.compare import CompareResult, iter_compare
        from tui_interp.labels import LabelStore
        from tui_interp.model.loader import load_model
        from tui_interp.theory import load_theory

        th = load_theory(theory)
        lm = load_model(model, device=device, dtype=dtype.value)
        store = LabelStore.for_checkpoint(lm.checkpoint, labels)
        events = iter_compare(lm, th, limit=limit, seed=seed, search=search, bos=bos, labels=store)
        result: CompareResult | None = None
        if json or not sys.stderr.isatty():
            for event in events:
                if isinstance(event, CompareResult):
                    result = event
        else:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err_console, transient=True) as bar:
                task = bar.add_task("comparing", total=None)
                for event in events:
                    if isinstance(event, CompareResult):
                        result = event
                    else:
                        bar.update(task, description=event.phase, completed=event.done, total=event.total)
        if result is None:
            raise fail("internal: the comparison ended without a result")
        recorded = 0
        if record_evidence and result.claims:
            from tui_interp.engine.claims import record_evidence as record

            recorded = record(result.claims, store, command=f"tui-interp compare {model} {theory}")
    failed = min_agreement is not None and (result.agreement < min_agreement or result.failed_claims > 0)
    if json:
        emit_json({**result.to_json(show), "evidence_recorded": recorded})
    else:
        _render(result, show, min_agreement)
        if recorded:
            console.print(f"recorded claim evidence in {recorded} label(s) of {escape(str(store.path))}")
    if failed:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _render(result, show: int, min_agreement: float | None) -> None:  # noqa: ANN001 -- CompareResult
    verdict = ""
    if min_agreement is not None:
        if result.agreement < min_agreement:
            verdict = f"  [red]FAIL[/] (needs {min_agreement:.2%})"
        elif result.failed_claims:
            verdict = f"  [red]FAIL[/] ({result.failed_claims} claim{'s' if result.failed_claims > 1 else ''} failed)"
        else:
            verdict = "  [green]PASS[/]"
    console.print(f"[bold]{escape(result.theory)}[/] on {escape(result.model_name)}: "
                  f"agreement [bold]{result.agreement:.2%}[/] over {escape(result.selection)}{verdict}")
    if result.slices:
        table = Table(title="per slice")
        table.add_column("slice")
        table.add_column("inputs", justify="right")
        table.add_column("agreement", justify="right")
        for s in result.slices:
            table.add_row(escape(s.name), f"{s.n:,}", "-" if s.agreement is None else f"{s.agreement:.2%}")
        console.print(table)
    if result.claims:
        table = Table(title="claims")
        for col in ("claim", "status", "measured", "threshold"):
            table.add_column(col)
        style = {"holds": "green", "fails": "red", "unchecked": "yellow"}
        for c in result.claims:
            measured = "-" if c.value is None else f"{c.value:.3f}"
            table.add_row(escape(c.text), f"[{style[c.status]}]{c.status}[/]", measured, escape(c.threshold or c.detail))
        console.print(table)
    if result.searched:
        console.print(f"search: {result.found_by_search} more counterexamples in {result.searched:,} inputs near failures")
    if not result.counterexamples:
        console.print("no counterexamples")
        return
    table = Table(title=f"counterexamples ({result.n_failures:,} in the {'domain' if result.enumerated else 'sample'}; most confident first)")
    for col in ("input", "prompt", "expected", "got", "p(expected)"):
        table.add_column(col)
    for o in result.counterexamples[:show]:
        from tui_interp.model.tokenizer import display_text
        from tui_interp.theory import format_input

        table.add_row(escape(format_input(o.input)), escape(display_text(o.prompt)), escape(display_text(o.expected)),
                      escape(display_text(o.got or "")), f"{o.p_expected:.3f}" + (" (search)" if o.found_by == "search" else ""))
    console.print(table)
