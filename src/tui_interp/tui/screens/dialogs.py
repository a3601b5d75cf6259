"""Dialogs: each a ModalScreen[T] that dismisses with its answer (None when cancelled)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui_interp.components import ABLATION_MODES
from tui_interp.engine.workbench import DLAView
from tui_interp.labels import Label as ComponentLabel
from tui_interp.model.tokenizer import display_text
from tui_interp.tui.text import clip, token_label
from tui_interp.tui.widgets.step_view import bar


@dataclass(frozen=True)
class LabelInput:
    component: str
    name: str
    note: str
    tags: tuple[str, ...]
    remove: bool = False


def split_tags(text: str) -> tuple[str, ...]:
    seen: list[str] = []
    for part in text.split(","):
        tag = part.strip()
        if tag and tag not in seen:
            seen.append(tag)
    return tuple(seen)


class LabelDialog(ModalScreen[LabelInput | None]):
    """Name, note and tags of one component's label. Enter saves; escape cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save label", priority=True),
        Binding("ctrl+d", "remove", "Remove label", priority=True),  # before the inputs' delete-right
    ]

    def __init__(self, component: str, existing: ComponentLabel | None) -> None:
        super().__init__()
        self.component = component
        self.existing = existing

    def compose(self) -> ComposeResult:
        e = self.existing
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(f"Label {self.component}", style="bold"), classes="dialog-title")
            yield Label("Name (what it does)")
            yield Input(e.name if e else "", placeholder="e.g. previous-token head", id="label-name", compact=True)
            yield Label("Note")
            yield Input(e.note if e else "", placeholder="evidence, caveats…", id="label-note", compact=True)
            yield Label("Tags (comma-separated)")
            yield Input(", ".join(e.tags) if e else "", placeholder="e.g. induction, verified", id="label-tags", compact=True)
            yield Static("", id="label-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                if e is not None:
                    yield Button("Remove ^d", id="remove", variant="error", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#label-name", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"save": self.action_save, "remove": self.action_remove, "cancel": self.action_cancel}[event.button.id or "cancel"]()

    def action_save(self) -> None:
        name = self.query_one("#label-name", Input).value.strip()
        if not name:
            self.query_one("#label-error", Static).update("A label needs a name.")
            self.query_one("#label-name", Input).focus()
            return
        note = self.query_one("#label-note", Input).value
        tags = split_tags(self.query_one("#label-tags", Input).value)
        self.dismiss(LabelInput(self.component, name, note, tags))

    def action_remove(self) -> None:
        if self.existing is not None:
            self.dismiss(LabelInput(self.component, self.existing.name, "", (), remove=True))

    def action_cancel(self) -> None:
        self.dismiss(None)


MODE_HELP = {
    "zero": "set its output to zero",
    "mean": "replace its output by its mean over 64 random prompts",
    "resample": "replace its output by its output on one random prompt",
}


class AblateDialog(ModalScreen[str | None]):
    """Choose how to ablate a component: z, m, r, or enter on the highlighted mode."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("z", "choose('zero')", "Zero"),
        Binding("m", "choose('mean')", "Mean"),
        Binding("r", "choose('resample')", "Resample"),
    ]

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(f"Ablate {self.component}", style="bold"), classes="dialog-title")
            yield OptionList(
                *[Option(Text.assemble((f"{m[0]}  {m:<9}", "bold"), MODE_HELP[m]), id=m) for m in ABLATION_MODES],
                id="modes",
            )
            yield Static(Text("z / m / r or enter · esc cancels", style="dim"))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_choose(self, mode: str) -> None:
        self.dismiss(mode)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DLADialog(ModalScreen[str | None]):
    """Direct logit attribution of the prediction; enter on a row selects that component."""

    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, view: DLAView, labels: dict[str, ComponentLabel]) -> None:
        super().__init__()
        self.view = view
        self.labels = labels

    def compose(self) -> ComposeResult:
        v = self.view
        title = Text.assemble(
            ("Direct logit attribution to ", "bold"),
            (clip(token_label(v.target.text), 16), "bold reverse"),
            f"  logit {v.logit:.3f} = Σ below + bias {v.bias:.3f}",
        )
        if v.interventions:
            title.append(f"\nwith {', '.join(v.interventions)}", style="dim")
        with Vertical(id="dialog", classes="dialog dialog-wide"):
            yield Static(title, classes="dialog-title")
            table: DataTable[str | Text] = DataTable(id="dla-table", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static(Text("enter selects the component · esc closes", style="dim"))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("component", "effect", "", "label")
        top = max((abs(value) for _, value in self.view.rows), default=0.0)
        for component, value in self.view.rows:
            label = self.labels.get(component)
            sign = "+" if value >= 0 else "−"
            table.add_row(
                component,
                f"{sign}{abs(value):.3f}",
                Text(bar(abs(value), top), style="bold" if value >= 0 else "dim"),
                Text(clip(display_text(label.name), 30)) if label else "",
                key=component,
            )
        table.focus()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(event.row_key.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SuggestDialog(ModalScreen[Any]):
    """Suggested head labels with their scores; enter accepts the highlighted one (one key)."""

    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, suggestions: tuple[Any, ...], labels: dict[str, ComponentLabel]) -> None:
        super().__init__()
        self.suggestions = suggestions
        self.labels = labels

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog dialog-wide"):
            yield Static(Text("Suggested head labels", style="bold"), classes="dialog-title")
            if self.suggestions:
                yield DataTable(id="suggest-table", cursor_type="row", zebra_stripes=True)
                yield Static(Text("enter labels the head with the suggestion · esc closes", style="dim"))
            else:
                yield Static(Text("No head matches a known pattern (previous token, induction, first token, "
                                  "self, attends to an input) with a score of 0.5 or more."))

    def on_mount(self) -> None:
        if not self.suggestions:
            return
        table: DataTable[str | Text] = self.query_one(DataTable)
        table.add_columns("head", "suggestion", "score", "current label")
        for i, s in enumerate(self.suggestions):
            label = self.labels.get(s.component)
            table.add_row(
                s.component,
                Text(clip(display_text(s.name), 28)),
                f"{s.score:.2f}",
                Text(clip(display_text(label.name), 24)) if label else "",
                key=str(i),
            )
        table.focus()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(self.suggestions[int(str(event.row_key.value))])

    def action_cancel(self) -> None:
        self.dismiss(None)


class SaveAsDialog(ModalScreen[str | None]):
    """A file name to save the theory to."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, suggestion: str) -> None:
        super().__init__()
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text("Save theory as", style="bold"), classes="dialog-title")
            yield Input(self.suggestion, id="save-path", compact=True)
            yield Static(Text("enter saves · esc cancels", style="dim"))

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        if value:
            self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; y or enter says yes, n or escape no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(self.question))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error", compact=True)
                yield Button("No (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class KeysDialog(ModalScreen[None]):
    """Every key of the workbench, with what it does. ? or escape closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _ in self.rows), default=4)
        text = Text()
        for i, (keys, what) in enumerate(self.rows):
            if i:
                text.append("\n")
            if not keys:
                text.append(what, style="bold underline")
                continue
            text.append(keys.rjust(width) + "  ", style="bold")
            text.append(what)
        with Vertical(id="dialog", classes="dialog dialog-keys"):
            yield Static(Text("Keys", style="bold"), classes="dialog-title")
            with VerticalScroll(id="keys-scroll"):
                yield Static(text, id="keys-text")
            yield Static(Text("? or esc closes · ctrl+p finds any action by name", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
