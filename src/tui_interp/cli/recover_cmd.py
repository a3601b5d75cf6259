"""`tui-interp recover MODEL QUESTION`: propose the `expect` a model computes (engine/recover.py).

Thin: run the engine's iter_recover with a progress line on stderr (answers, then the search's
expressions tried and best so far), render the candidates. Exit 0 when the best candidate
reaches --min-agreement (explained), 1 when not, 2 on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    MaxWorkOpt,
    SeedOpt,
    console,
    emit_json,
    err_console,
    user_errors,
)
from tui_interp.cli.model_cmds import ModelArg, load

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tui_interp.engine.recover import RecoverResult


@app.command()
def recover(
    model: ModelArg,
    question: Annotated[
        Path,
        typer.Argument(help="Theory file with inputs and prompt (splits optional), no `expect`; a full theory's expect is ignored.",
                       show_default=False),
    ],
    top: Annotated[int, typer.Option("--top", min=1, help="How many candidates to show.")] = 5,
    max_size: Annotated[int, typer.Option("--max-size", min=1, max=50, help="Largest expression size searched (nodes: `(a + b) % 113` is 5).")] = 7,
    budget: Annotated[float, typer.Option("--budget", min=0.001, help="Seconds the search may take (the model's answers come first).")] = 30.0,
    min_agreement: Annotated[
        float, typer.Option("--min-agreement", min=0.0, max=1.0, help="Explained (exit 0) when the best candidate agrees this much (0..1).")
    ] = 0.95,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Enumerate domains up to this size.")] = 20_000,
    sample: Annotated[int, typer.Option("--sample", min=1, help="Inputs drawn (seeded, uniform) from a domain larger than --limit.")] = 1_000,
    seed: SeedOpt = 0,
    answer_tokens: Annotated[
        int | None,
        typer.Option("--answer-tokens", min=1, help="Tokens per answer for inputs with no answer in a split file.", show_default=False),
    ] = None,
    save: Annotated[Path | None, typer.Option("--save", help="Write the best candidate as a theory file here.", show_default=False)] = None,
    max_work: MaxWorkOpt = 500_000_000,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Search the theory language for the `expect` the model computes on the question's inputs:
    candidates ranked by agreement with the model's answers, then by size. Exit 0 when the best
    reaches --min-agreement, 1 when it does not (a model that fits its train split yet is not
    explained may have memorised it)."""
    with user_errors():
        from tui_interp.engine.recover import iter_recover
        from tui_interp.errors import InputError
        from tui_interp.fileio import atomic_write
        from tui_interp.theory import load_theory

        th = load_theory(question)
        lm = load(model, device, dtype)
        events = iter_recover(lm, th, limit=limit, sample=sample, seed=seed, answer_tokens=answer_tokens, top=top, max_size=max_size,
                              seconds=budget, min_agreement=min_agreement, max_work=max_work)
        result = _drive(events, quiet=json)
        if save is not None and result.theory is not None:
            atomic_write(save, result.theory, error=InputError)
    if json:
        emit_json(result.to_json())
    else:
        _render(result, save)
    if not result.explained:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _drive(events: Iterable[Any], *, quiet: bool) -> RecoverResult:
    """Run the engine to its result; on a terminal, a progress line on stderr: the answers, then
    the search (expressions tried, the size being tried, the best so far)."""
    from tui_interp.engine.compare import Progress as AnswerProgress
    from tui_interp.engine.recover import RecoverResult, SearchProgress
    from tui_interp.errors import TuiInterpError

    result = None
    if quiet or not err_console.is_terminal:
        for event in events:
            if isinstance(event, RecoverResult):
                result = event
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=True) as bar:
            task = bar.add_task("answers", total=None)
            for event in events:
                if isinstance(event, RecoverResult):
                    result = event
                elif isinstance(event, AnswerProgress):
                    bar.update(task, description="answers", completed=event.done, total=event.total)
                elif isinstance(event, SearchProgress):
                    best = "" if event.best is None else f"; best {event.best} ({event.best_agreement or 0:.1%})"
                    text = f"search size {event.size}/{event.max_size}: {event.tried:,} tried ({event.rate:,.0f}/s){best}"
                    bar.update(task, description=escape(text), completed=event.tried, total=None)
    if result is None:
        raise TuiInterpError("internal: the recovery ended without a result")
    return result


def _render(result: RecoverResult, save: Path | None) -> None:
    best = result.best
    head = f"[bold]{escape(result.question)}[/] on {escape(result.model_name)}: "
    if best is None:
        console.print(head + "[red]NOT EXPLAINED[/]: no expression of the language was found for these answers")
    elif result.explained:
        console.print(head + f"[green]explained[/] by [bold]{escape(best.expect)}[/] (size {best.size}), agreement "
                      f"[bold]{best.agreement:.2%}[/] over {escape(result.table)}")
    else:
        console.print(head + f"[red]NOT EXPLAINED[/]: the best candidate, [bold]{escape(best.expect)}[/], agrees on "
                      f"[bold]{best.agreement:.2%}[/] of {escape(result.table)} (needs {result.min_agreement:.2%})")
    console.print(escape(f"searched {result.searched:,} expressions ({result.distinct:,} distinct) in {result.search_seconds:.1f} s "
                         f"(answers {result.table_seconds:.1f} s, checking the candidates {result.check_seconds:.1f} s); "
                         f"stopped: {result.stop_note}"))
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if result.candidates:
        table = Table(title="candidates (best first: agreement, then size)")
        for col in ("#", "expect", "agreement", "size", "per slice"):
            table.add_column(col, justify="right" if col in ("#", "agreement", "size") else "left")
        for i, c in enumerate(result.candidates, 1):
            slices = ", ".join(f"{s.name} {'-' if s.agreement is None else f'{s.agreement:.2%}'} ({s.n:,})" for s in c.slices)
            table.add_row(str(i), escape(c.expect), f"{c.agreement:.2%}", str(c.size), escape(slices))
        console.print(table)
    if best is not None and not result.explained:
        fit = [s for s in best.slices if not s.name.startswith("not ") and s.agreement is not None and s.agreement >= result.min_agreement]
        for s in fit:
            console.print(escape(f"the best candidate fits split {s.name!r} ({s.agreement:.2%}) but not the rest: "
                                 "evidence that the model memorised it rather than computing a rule"))
    if result.theory is not None:
        console.print("\nthe best candidate as a theory" + (f" (saved to {escape(str(save))})" if save is not None else "") + ":")
        console.print(result.theory, markup=False, highlight=False, emoji=False, soft_wrap=True, end="")
