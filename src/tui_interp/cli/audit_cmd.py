"""`tui-interp audit MODEL [MODEL...] QUESTION`: which model generalises, from the train split alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tui_interp.cli import app
from tui_interp.cli.common import DeviceOpt, DtypeChoice, DtypeOpt, JsonOpt, SeedOpt, console, drive, emit_json, user_errors
from tui_interp.cli.model_cmds import load


@app.command()
def audit(
    paths: Annotated[
        list[Path],
        typer.Argument(help="One or more model directories, then the question (a theory with `split train from FILE` whose rows carry answers).",
                       show_default=False),
    ],
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, help="Inputs the models answer: the domain when it has at most this many, else a seeded sample."),
    ] = 20_000,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Say which models generalise beyond their train set, with the evidence: no answer outside the train split is used."""
    with user_errors():
        from tui_interp.engine.audit import AuditResult, iter_audit
        from tui_interp.errors import InputError
        from tui_interp.theory import load_theory

        if len(paths) < 2:
            raise InputError("give one or more models and then the question file")
        *models, question = paths
        theory = load_theory(question)
        loaded = [(str(m), load(m, device, dtype)) for m in models]
        result = drive(iter_audit(loaded, theory, limit=limit, seed=seed), AuditResult, quiet=json)
    if json:
        emit_json(result.to_json())
        return
    console.print(escape(f"train: {result.train}; the models answered {result.inputs}"))
    if result.rule is not None:
        console.print(escape(f"the train answers' simplest rule: expect {result.rule}  (size {result.rule_size})"))
    else:
        console.print("no rule of the theory language fits the train answers (within the search budget)")
    if result.symmetries:
        console.print(escape(f"symmetries in the train answers: {', '.join(result.symmetries)}"))
    for m in result.models:
        verdict = "[green]generalises[/]" if m.generalises else "[red]does not generalise[/]"
        basis = {"rule": "by the rule", "symmetry": "by the symmetries",
                 "score": "by the score alone: no rule or symmetry in the train answers, a weak basis"}[m.basis]
        table = Table(title=f"{escape(m.model)}: {verdict} {basis} (score {m.score:.2f}; train agreement {m.train_agreement:.1%})",
                      title_justify="left")
        for col in ("signal", "value", "what it says"):
            table.add_column(col)
        for e in m.evidence:
            value = "-" if e.value is None else f"{e.value:.3g}"
            table.add_row(escape(e.signal), value, escape(e.note))
        console.print(table)
    console.print("ranking (most likely to generalise first): " + escape(", ".join(result.ranking)))
