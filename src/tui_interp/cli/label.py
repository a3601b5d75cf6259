"""`tui-interp label add|list|rm|export`: name what components do. Thin: parse, call the store, render.

Label text is shown through `rich.text.Text` (never parsed as markup) after `visible()`
turns control characters into escapes, so a name like "[bold]" or "\\x1b[2J" prints as written.
Paths and error messages go through `visible()` too: a file name that is not UTF-8 or holds
control characters prints as escapes, and an error is always one line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tui_interp.cli.common import JsonOpt, console, emit_json, err_console, fail, guarded
from tui_interp.errors import TuiInterpError

if TYPE_CHECKING:
    from tui_interp.labels import Label, LabelSnapshot, LabelStore
    from tui_interp.labels.store import CheckpointInfo

label_app = typer.Typer(
    help="Name what components do. Labels are saved beside the model (labels.json), "
    "or in your data directory when the model's directory is read-only, or in --labels FILE.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ModelArg = Annotated[Path, typer.Argument(help="Model directory (HuggingFace layout) or a .safetensors file.", show_default=False)]
ComponentArg = Annotated[
    str,
    typer.Argument(help="Component id: embed, pos_embed, L3, L3.attn, L3.H5, L3.mlp, L3.N1023, ln_final, unembed.", show_default=False),
]
LabelsOpt = Annotated[
    Path | None,
    typer.Option("--labels", help="Label file to use instead of the default location.", show_default=False),
]


class ExportFormat(str, Enum):
    md = "md"
    markdown = "markdown"
    json = "json"


T = TypeVar("T")


def one_line_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Core errors as one printable line (exit 2): paths and quoted input in them are made visible.

    `guarded` prints the message as it is; a message naming a file whose name is not UTF-8
    could not be printed at all, and a newline or escape in it would break the one line.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except TuiInterpError as e:
            raise fail(_shown(str(e))) from None

    return wrapper


def open_checkpoint(path: Path) -> CheckpointInfo:
    """Open a checkpoint's headers (name, fingerprint, config); no weights are read."""
    from tui_interp.model.checkpoint import open_checkpoint as open_headers

    return open_headers(path)


def _store(model: Path, labels: Path | None) -> LabelStore:
    from tui_interp.labels import LabelStore

    return LabelStore.for_checkpoint(open_checkpoint(model), labels)


@label_app.command("add")
@guarded
@one_line_errors
def add(
    model: ModelArg,
    component: ComponentArg,
    name: Annotated[str, typer.Argument(help="What the component does, in one line.", show_default=False)],
    note: Annotated[str | None, typer.Option("--note", help="Longer text: how you found it, caveats.", show_default=False)] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).", show_default=False)] = None,
    evidence: Annotated[
        list[str] | None,
        typer.Option(
            "--evidence",
            help='Evidence as a JSON object or array of objects (repeatable), e.g. '
            '\'{"kind": "ablation", "metric": "loss", "value": 2.3, "command": "tui-interp ablate ..."}\'.',
            show_default=False,
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the note, tags and evidence of an existing label instead of adding to them.")
    ] = False,
    labels: LabelsOpt = None,
    json: JsonOpt = False,
) -> None:
    """Label a component, or update its label.

    An existing label keeps its note unless --note is given, and gains the new tags and
    evidence; --replace overwrites note, tags and evidence instead.
    """
    from tui_interp.labels import parse_evidence

    items = [item for text in evidence or [] for item in parse_evidence(text)]
    store = _store(model, labels)
    change = store.add(component, name, note=note, tags=tag or [], evidence=items, replace_all=replace)
    if json:
        emit_json({**_header(store, change.snapshot), "action": change.action, "label": change.label.to_dict()})
        return
    _print_warnings(change.warnings)
    line = Text(f"{change.action.capitalize()} ")
    line.append(str(change.label.component), style="bold")
    line.append(": ")
    line.append(_shown(change.label.name))
    line.append(f"  ({_shown(str(store.path))})", style="dim")
    console.print(line, soft_wrap=True)


@label_app.command("list")
@guarded
@one_line_errors
def list_labels(model: ModelArg, labels: LabelsOpt = None, json: JsonOpt = False) -> None:
    """Show the labels of a model, in forward-pass order."""
    store = _store(model, labels)
    snapshot = store.read()
    if json:
        emit_json({**_header(store, snapshot), "labels": [label.to_dict() for label in snapshot.labels]})
        return
    _print_warnings(snapshot.warnings)
    if not snapshot.labels:
        console.print(Text(_shown(f"No labels yet for {store.model.name}; they will be saved in {store.path}")), soft_wrap=True)
        return
    console.print(_table(snapshot))


@label_app.command("rm")
@guarded
@one_line_errors
def remove(model: ModelArg, component: ComponentArg, labels: LabelsOpt = None, json: JsonOpt = False) -> None:
    """Remove a component's label.

    Works for components this model does not have too (labels made for another model).
    """
    store = _store(model, labels)
    change = store.remove(component)
    if json:
        emit_json({**_header(store, change.snapshot), "action": "removed", "label": change.label.to_dict()})
        return
    _print_warnings(change.warnings)
    line = Text("Removed ")
    line.append(str(change.label.component), style="bold")
    line.append(": ")
    line.append(_shown(change.label.name))
    console.print(line, soft_wrap=True)


@label_app.command("export")
@guarded
@one_line_errors
def export(
    model: ModelArg,
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", help="md (or markdown): a Markdown table to paste into a write-up; json: the label file."),
    ] = ExportFormat.md,
    labels: LabelsOpt = None,
    json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Print the labels as a Markdown table or as the label file's JSON.

    The export goes to stdout, warnings to stderr.
    """
    import sys

    from tui_interp.labels import to_json, to_markdown

    store = _store(model, labels)
    snapshot = store.read()
    _print_warnings(snapshot.warnings)
    as_json = json or fmt is ExportFormat.json
    sys.stdout.write(to_json(snapshot.file) if as_json else to_markdown(snapshot.file))
    sys.stdout.flush()


# ---------------------------------------------------------------- rendering


def _header(store: LabelStore, snapshot: LabelSnapshot) -> dict[str, Any]:
    """What every --json document of this group starts with."""
    from tui_interp.labels import encodable

    return {
        "labels_path": encodable(store.path),
        "model": {"name": store.model.name, "fingerprint": store.model.fingerprint},
        "bound_to": snapshot.bound_to.to_dict(),
        "exists": snapshot.exists,
        "warnings": [encodable(warning) for warning in snapshot.warnings],
    }


def _shown(text: str, *, keep_newlines: bool = False) -> str:
    from tui_interp.labels import visible

    return visible(text, keep_newlines=keep_newlines)


def _table(snapshot: LabelSnapshot) -> Table:
    """Labels in forward-pass order; long text folds rather than being cut off."""
    table = Table(title=Text(_shown(f"{len(snapshot.labels)} labels · {snapshot.path}")), title_justify="left")
    table.add_column("Component", no_wrap=True, style="bold")
    table.add_column("Name", overflow="fold", ratio=3)
    table.add_column("Tags", overflow="fold", ratio=1)
    table.add_column("Note", overflow="fold", ratio=4)
    table.add_column("Evidence", justify="right", no_wrap=True)
    for label in snapshot.labels:
        table.add_row(*_cells(label))
    return table


def _cells(label: Label) -> tuple[Text, ...]:
    return (
        Text(str(label.component)),
        Text(_shown(label.name)),
        Text(_shown(", ".join(label.tags))),
        Text(_shown(label.note, keep_newlines=True)),
        Text(str(len(label.evidence)) if label.evidence else ""),
    )


def _print_warnings(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        err_console.print(escape(_shown(f"warning: {warning}")), style="yellow", soft_wrap=True)
