"""Theory commands: `compare` checks a theory against the model, with counterexamples; `table`
lists the model's answer for every input of a theory's domain."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

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
    drive,
    emit_json,
    err_console,
    user_errors,
)
from tui_interp.cli.model_cmds import BosOpt, ModelArg, load
from tui_interp.errors import InputError


@app.command()
def compare(
    model: ModelArg,
    theory: Annotated[Path, typer.Argument(help="Theory file (*.theory).", show_default=False)],
    min_agreement: Annotated[
        float | None,
        typer.Option("--min-agreement", min=0.0, max=1.0, help="Exit 1 when agreement is below this (0..1)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Enumerate domains up to this size; sample this many inputs from larger ones.")] = 200_000,
    seed: SeedOpt = 0,
    show: Annotated[int, typer.Option("--show", min=0, help="How many counterexamples to show.")] = 10,
    search: Annotated[bool, typer.Option("--search/--no-search", help="Hunt for more counterexamples near failures (sampled domains).")] = True,
    search_budget: Annotated[
        int | None,
        typer.Option("--search-budget", min=1, help="Most inputs the search evaluates (default: a quarter of the sample, at least 1,000)."),
    ] = None,
    search_seconds: Annotated[float, typer.Option("--search-seconds", min=0.0, help="Time budget of the search.")] = 30.0,
    claim_sample: Annotated[
        int | None,
        typer.Option("--claim-sample", min=1, help="Measure claims on a seeded uniform sample of this many inputs (default: all of them)."),
    ] = None,
    max_work: MaxWorkOpt = 500_000_000,
    labels: Annotated[Path | None, typer.Option("--labels", help="Label file for `claim label` (default: the model's).")] = None,
    record_evidence: Annotated[
        bool,
        typer.Option("--record-evidence", help="Write each checked claim into the labels of the components it is about."),
    ] = False,
    bos: BosOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Check a theory against the model over its whole input domain; exit 1 when a claim fails or agreement is below --min-agreement."""
    with user_errors():
        from tui_interp.engine.compare import CompareResult, iter_compare
        from tui_interp.labels import LabelStore
        from tui_interp.theory import load_theory

        th = load_theory(theory)
        lm = load(model, device, dtype)
        store = LabelStore.for_checkpoint(lm.checkpoint, labels)
        events = iter_compare(lm, th, limit=limit, seed=seed, search=search, search_budget=search_budget, search_seconds=search_seconds,
                              show=show, bos=bos, labels=store, claim_limit=claim_sample, max_work=max_work)
        result = drive(events, CompareResult, quiet=json)
        recorded = 0
        if record_evidence and result.claims:
            from tui_interp.engine.claims import record_evidence as record

            recorded = record(result.claims, store, command=f"tui-interp compare {model} {theory}")
    below = min_agreement is not None and result.agreement < min_agreement
    failed = below or result.failed_claims > 0
    if json:
        emit_json({**result.to_json(show), "evidence_recorded": recorded})
    else:
        _render(result, show, min_agreement)
        if recorded:
            console.print(f"recorded claim evidence in {recorded} label(s) of {escape(str(store.path))}")
    if failed:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _render(result, show: int, min_agreement: float | None) -> None:  # noqa: ANN001 -- CompareResult
    from tui_interp.model.tokenizer import display_text
    from tui_interp.theory.render import format_input

    verdict = ""
    problems = []
    if min_agreement is not None and result.agreement < min_agreement:
        problems.append(f"needs {min_agreement:.2%}")
    if result.failed_claims:
        problems.append(f"{result.failed_claims} claim{'s' if result.failed_claims > 1 else ''} failed")
    if problems:
        verdict = f"  [red]FAIL[/] ({', '.join(problems)})"
    elif min_agreement is not None or result.claims:
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
        table = Table(title=f"claims (measured on {escape(result.claim_inputs)})")
        for col in ("claim", "status", "baseline", "measured", "threshold"):
            table.add_column(col)
        style = {"holds": "green", "fails": "red", "unchecked": "yellow"}
        for c in result.claims:
            measured = "-" if c.value is None else f"{c.value:.3f}"
            baseline = "-" if c.baseline is None else f"{c.baseline:.3f}"
            status = {"holds": "holds", "fails": "FAIL", "unchecked": "UNCHECKED"}[c.status]
            table.add_row(escape(c.text), f"[{style[c.status]}]{status}[/]", baseline, measured, escape(c.threshold or c.detail))
        console.print(table)
    for hint in result.hints:
        console.print(f"[yellow]hint:[/] {escape(hint)}")
    if result.searched:
        console.print(escape(f"search: {result.search}; {result.found_by_search:,} more counterexamples"))
    elif result.search and not result.enumerated:
        console.print(escape(f"search: {result.search}"))
    if not result.counterexamples:
        console.print("no counterexamples")
        return
    where = "domain" if result.enumerated else "sample"
    table = Table(title=f"counterexamples ({result.n_failures:,} in the {where}; most confident wrong answer first)")
    for col in ("input", "prompt", "expected", "got", "p(got)", "p(expected)"):
        table.add_column(col)
    for o in result.counterexamples[:show]:
        p_got = "-" if o.p_got is None else f"{o.p_got:.3f}"
        table.add_row(escape(format_input(o.input)), escape(display_text(o.prompt)), escape(display_text(o.expected)),
                      escape(display_text(o.got or "")), p_got, f"{o.p_expected:.3f}" + (f" ({o.found_by})" if o.found_by != "sample" else ""))
    console.print(table)


class TableFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


@app.command()
def table(
    model: ModelArg,
    theory: Annotated[Path, typer.Argument(help="Theory file (*.theory); a question (no expect) works too.", show_default=False)],
    format: Annotated[
        TableFormat,
        typer.Option("--format", help="jsonl: one JSON object per row; csv: a header of the input names, then one row per input."),
    ] = TableFormat.jsonl,
    out: Annotated[Path | None, typer.Option("--out", help="Write the table to this file (default: stdout).", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Enumerate domains up to this size; sample this many inputs from larger ones.")] = 200_000,
    seed: SeedOpt = 0,
    answer_tokens: Annotated[
        int | None,
        typer.Option("--answer-tokens", min=1, help="Tokens per answer for a question's inputs with no answer in a split file.", show_default=False),
    ] = None,
    max_work: MaxWorkOpt = 500_000_000,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """The model's greedy answer for every input of the theory's domain (or sample), streamed:
    input, prompt, got, p_got, expected, splits. Progress on stderr; --json means --format jsonl."""
    with user_errors():
        from tui_interp.engine.table import iter_table
        from tui_interp.fileio import atomic_write
        from tui_interp.theory import load_theory

        th = load_theory(theory)
        lm = load(model, device, dtype)
        events = iter_table(lm, th, limit=limit, seed=seed, answer_tokens=answer_tokens, max_work=max_work)
        fmt = TableFormat.jsonl if json else format
        if out is None:
            _write_table(events, th, fmt, sys.stdout)
        else:
            atomic_write(out, lambda tmp: _write_table_file(events, th, fmt, tmp), error=InputError)


def _write_table_file(events, theory, fmt: TableFormat, path: Path) -> None:  # noqa: ANN001 -- engine iterator, Theory
    with open(path, "w", encoding="utf-8", newline="") as f:
        _write_table(events, theory, fmt, f)


def _write_table(events, theory, fmt: TableFormat, stream) -> None:  # noqa: ANN001 -- engine iterator, Theory, text stream
    import csv
    import json as jsonlib

    from tui_interp.engine.compare import Progress as CompareProgress
    from tui_interp.engine.table import TableInfo

    writer = None
    bar = _TableProgress()
    try:
        for event in events:
            if isinstance(event, TableInfo):
                bar.start(event)
            elif isinstance(event, CompareProgress):
                bar.update(event)
            elif fmt is TableFormat.jsonl:
                for row in event:
                    stream.write(jsonlib.dumps(row.to_json(), ensure_ascii=False) + "\n")
            else:
                if writer is None:
                    writer = csv.writer(stream)
                    writer.writerow([*theory.input_names, "prompt", "got", "p_got", "expected", "splits", "answer"])
                for row in event:
                    doc = row.to_json()
                    cells = [v if isinstance(v, str) else jsonlib.dumps(v) for v in doc["input"].values()]
                    writer.writerow([*cells, row.prompt, row.got, f"{row.p_got:.6g}", row.expected if row.expected is not None else "",
                                     ";".join(row.splits), row.answer if row.answer is not None else ""])
            stream.flush()
    finally:
        bar.stop()


class _TableProgress:
    """Progress of a table on stderr when it is a terminal (nothing otherwise)."""

    def __init__(self) -> None:
        self.bar = None
        self.task = None

    def start(self, info) -> None:  # noqa: ANN001 -- TableInfo
        if not err_console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        err_console.print(escape(f"answers of {info.selection}; answer length: {info.answer_tokens}"), style="dim")
        self.bar = Progress(TextColumn("answers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task("answers", total=info.n_inputs)

    def update(self, progress) -> None:  # noqa: ANN001 -- Progress
        if self.bar is not None:
            self.bar.update(self.task, completed=progress.done)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
