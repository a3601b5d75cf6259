"""Dialogs: each a ModalScreen[T] that dismisses with its answer (None when cancelled).

Every dialog shows its own keys on its own key bar (the workbench's keys do not act here), and
escape always closes it without doing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
from tui_interp.tui.widgets.grid import bar
from tui_interp.tui.widgets.keybar import KeyBar
from tui_interp.tui.widgets.theory_panel import recover_headline

if TYPE_CHECKING:
    from tui_interp.engine.recover import Candidate, RecoverResult


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
        yield KeyBar(extra=(("enter", "Save"),))

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
    "mean": "replace its output by its mean over the reference inputs",
    "resample": "replace its output by its output on one reference input",
}
CHANGE_REFERENCE = "reference"  # what AblateDialog returns when the user wants another reference


class AblateDialog(ModalScreen[str | None]):
    """Choose how to ablate a component: z, m, r, or enter on the highlighted mode; c changes
    the reference inputs that mean and resample use (shown)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("z", "choose('zero')", "Zero"),
        Binding("m", "choose('mean')", "Mean"),
        Binding("r", "choose('resample')", "Resample"),
        Binding("c", "choose('reference')", "Reference"),
    ]

    def __init__(self, component: str, reference: str = "") -> None:
        super().__init__()
        self.component = component
        self.reference = reference

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(f"Ablate {self.component}", style="bold"), classes="dialog-title")
            yield OptionList(
                *[Option(Text.assemble((f"{m[0]}  {m:<9}", "bold"), MODE_HELP[m]), id=m) for m in ABLATION_MODES],
                id="modes",
            )
            yield Static(Text.assemble(("Reference: ", "bold"), display_text(self.reference or "random token sequences"),
                                       (" (c changes it)", "dim")), id="reference")
        yield KeyBar(extra=(("enter", "Ablate"),))

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


class ReferenceDialog(ModalScreen[tuple[str, str | None] | None]):
    """What mean and resample ablation average over or draw from: random token sequences, the
    theory's inputs, or the prompts of a file. Returns (kind, prompts file or None)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("r", "choose('random')", "Random", show=False),
        Binding("t", "choose('theory')", "Theory", show=False),
        Binding("f", "choose('prompts')", "File", show=False),
    ]

    def __init__(self, current: str, path: str = "") -> None:
        super().__init__()
        self.current = current
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text("Reference inputs for mean and resample ablation", style="bold"), classes="dialog-title")
            yield Static(Text.assemble(("now: ", "dim"), display_text(self.current)))
            yield OptionList(
                Option(Text.assemble(("r  random  ", "bold"), "64 random token sequences of the prompt's length (seeded)"), id="random"),
                Option(Text.assemble(("t  theory  ", "bold"), "64 inputs of the theory in the side panel (seeded)"), id="theory"),
                Option(Text.assemble(("f  file    ", "bold"), "the prompts of a file: one per line, or JSONL"), id="prompts"),
                id="kinds",
            )
            yield Input(self.path, placeholder="prompts file (for f), then enter", id="reference-path", compact=True)
        yield KeyBar(extra=(("r t f", "Random, theory, file"), ("enter", "Choose")))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_choose(event.option.id or "random")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss(("prompts", event.value.strip()))

    def action_choose(self, kind: str) -> None:
        if kind == "prompts":
            path = self.query_one("#reference-path", Input)
            if path.value.strip() and path.has_focus:
                self.dismiss(("prompts", path.value.strip()))
            else:
                path.focus()
            return
        self.dismiss((kind, None))

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class PatchInput:
    corrupt: str
    target: str
    other: str


class PatchDialog(ModalScreen[PatchInput | None]):
    """The corrupted prompt (same length in tokens as the clean one) and the metric's tokens."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, clean: str, n_tokens: int, last: PatchInput | None = None) -> None:
        super().__init__()
        self.clean = clean
        self.n_tokens = n_tokens
        self.last = last

    def compose(self) -> ComposeResult:
        last = self.last
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text("Activation patching", style="bold"), classes="dialog-title")
            yield Static(Text.assemble(("clean: ", "bold"), clip(token_label(self.clean), 44), (f"  ({self.n_tokens} tokens)", "dim")))
            yield Label("Corrupted prompt (same number of tokens)")
            yield Input(last.corrupt if last else self.clean, id="patch-corrupt", compact=True)
            yield Label("Target token (empty: the clean top; #12 for an id)")
            yield Input(last.target if last else "", id="patch-target", compact=True)
            yield Label("Other token (empty: the corrupted top)")
            yield Input(last.other if last else "", id="patch-other", compact=True)
        yield KeyBar(extra=(("enter", "Run patching"), ("tab", "Next field")))

    def on_mount(self) -> None:
        self.query_one("#patch-corrupt", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    def action_run(self) -> None:
        corrupt = self.query_one("#patch-corrupt", Input).value
        if not corrupt.strip():
            self.query_one("#patch-corrupt", Input).focus()
            return
        self.dismiss(PatchInput(corrupt, self.query_one("#patch-target", Input).value.strip(),
                                self.query_one("#patch-other", Input).value.strip()))

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
        yield KeyBar(extra=(("enter", "Go to the component"),))

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


class SuggestDialog(ModalScreen[None]):
    """Suggested head labels with their scores; enter accepts the highlighted one (one key) and
    the dialog stays open for the next; escape closes it."""

    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, suggestions: tuple[Any, ...], labels: dict[str, ComponentLabel],
                 accept: Callable[[Any], None] | None = None) -> None:
        super().__init__()
        self.suggestions = suggestions
        self.labels = labels
        self.accept = accept
        self.accepted: list[Any] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog dialog-wide"):
            yield Static(Text("Suggested head labels", style="bold"), classes="dialog-title")
            if self.suggestions:
                yield DataTable(id="suggest-table", cursor_type="row", zebra_stripes=True)
            else:
                yield Static(Text("No head matches a known pattern (previous token, induction, first token, "
                                  "self, attends to an input) with a score of 0.5 or more."))
        yield KeyBar(extra=(("enter", "Accept (stays open for the next)"),) if self.suggestions else ())

    def on_mount(self) -> None:
        if not self.suggestions:
            return
        table: DataTable[str | Text] = self.query_one(DataTable)
        table.add_column("head")
        table.add_column("suggestion")
        table.add_column("score")
        table.add_column("current label", key="current")
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
        self._accept(int(str(event.row_key.value)))

    def _accept(self, i: int) -> None:
        s = self.suggestions[i]
        if s in self.accepted:
            return
        self.accepted.append(s)
        if self.accept is not None:
            self.accept(s)
        table = self.query_one(DataTable)
        table.update_cell(str(i), "current", Text("✓ " + clip(display_text(s.name), 22), style="bold"))
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

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
        yield KeyBar(extra=(("enter", "Save"),))

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        value = self.query_one(Input).value.strip()
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
        yield KeyBar()

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

    BINDINGS = [Binding("escape,question_mark,q,f1", "close", "Close")]

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
        yield KeyBar()

    def action_close(self) -> None:
        self.dismiss(None)


def splits_text(candidate: Candidate) -> str:
    """Per-split agreement, short: "train 100% · not train 51%" (99.6% where 100% would round it up)."""
    parts = []
    for sl in candidate.slices:
        a = sl.agreement
        if a is None:
            value = "empty"
        else:
            value = f"{a:.0%}"
            if value in ("0%", "100%") and 0 < a < 1:
                value = f"{a:.1%}"
        parts.append(f"{clip(display_text(sl.name), 12)} {value}")
    return " · ".join(parts)


class RecoverDialog(ModalScreen[str | None]):
    """The recovered candidates, best first; enter fills the theory's expect line with the
    highlighted one (then the check and the comparison run); escape keeps the theory as it is."""

    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, result: RecoverResult) -> None:
        super().__init__()
        self.result = result

    def compose(self) -> ComposeResult:
        r = self.result
        with Vertical(id="dialog", classes="dialog dialog-list"):
            yield Static(Text.assemble(("Recovered expect", "bold"), (f"  {r.searched:,} expressions tried", "dim")),
                         classes="dialog-title")
            yield Static(recover_headline(r), id="recover-headline")
            if r.candidates:
                yield DataTable(id="recover-table", cursor_type="row", zebra_stripes=True)
            notes = [r.stop_note, *r.notes]
            yield Static(Text("\n".join(display_text(n) for n in notes if n), style="dim"), id="recover-notes")
        yield KeyBar(extra=(("enter", "Fill the expect line and compare"),) if r.candidates else ())

    def on_mount(self) -> None:
        if not self.result.candidates:
            return
        table: DataTable[str | Text] = self.query_one(DataTable)
        table.add_columns("expect", "agreement", "size", "per split")
        for i, c in enumerate(self.result.candidates):
            table.add_row(Text(clip(display_text(c.expect), 40)), f"{c.agreement:.2%}", str(c.size),
                          Text(splits_text(c)), key=str(i))
        table.focus()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(self.result.candidates[int(str(event.row_key.value))].expect)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PathDialog(ModalScreen[str | None]):
    """A path to a model (a directory or a .safetensors file)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, help_text: str, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.help_text = help_text
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Static(Text(self.help_text, style="dim"))
            yield Input(self.value, placeholder="path/to/model", id="model-path", compact=True)
        yield KeyBar(extra=(("enter", "Open"),))

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
