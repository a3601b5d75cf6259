"""Messages: results come up from workers and widgets; attributes go down from the screen.

Workers post these on the main screen. Progress messages define `can_replace` so that a
backlog collapses to the newest one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

from tui_interp.engine.workbench import DLAView, Header, LabelsView, LensView, Neuron, PatchView, StepView, TheoryInfo
from tui_interp.theory import Diagnostic

if TYPE_CHECKING:
    from tui_interp.engine.audit import AuditResult
    from tui_interp.engine.compare import CompareResult, Progress
    from tui_interp.engine.diff import DiffProgress, DiffResult
    from tui_interp.engine.recover import RecoverResult, SearchProgress


class HeaderReady(Message):
    """The checkpoint's headers were read (weights not yet)."""

    def __init__(self, header: Header) -> None:
        super().__init__()
        self.header = header


class ModelLoaded(Message):
    def __init__(self, header: Header) -> None:
        super().__init__()
        self.header = header


class OpenFailed(Message):
    """The model could not be opened or loaded; the app stays up and says why."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class StepReady(Message):
    def __init__(self, view: StepView) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StepReady)  # a view is the whole state: only the newest is drawn


class NeuronsReady(Message):
    """The top neurons of one layer's MLP on the prompt of forward pass `run`."""

    def __init__(self, layer: int, neurons: tuple[Neuron, ...], run: int) -> None:
        super().__init__()
        self.layer = layer
        self.neurons = neurons
        self.run = run


class LensReady(Message):
    def __init__(self, lens: LensView) -> None:
        super().__init__()
        self.lens = lens


class PatchReady(Message):
    def __init__(self, patch: PatchView | None, error: str = "") -> None:
        super().__init__()
        self.patch = patch
        self.error = error


class ReferenceSet(Message):
    """The ablation reference changed; `description` says what it is now."""

    def __init__(self, description: str, view: StepView | None) -> None:
        super().__init__()
        self.description = description
        self.view = view


class LabelsReady(Message):
    def __init__(self, labels: LabelsView, saved: str | None = None) -> None:
        super().__init__()
        self.labels = labels
        self.saved = saved  # the component just labelled, if any


class TheoryText(Message):
    """The theory file's text was read; `example` is a prompt it would ask the model."""

    def __init__(self, text: str, example: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.example = example


class DiagnosticsReady(Message):
    def __init__(self, text: str, diagnostics: list[Diagnostic], info: TheoryInfo | None = None) -> None:
        super().__init__()
        self.text = text
        self.diagnostics = diagnostics
        self.info = info


class CompareProgress(Message):
    def __init__(self, info: Progress) -> None:
        super().__init__()
        self.info = info

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, CompareProgress)


class CompareDone(Message):
    def __init__(self, result: CompareResult | None, note: str = "") -> None:
        super().__init__()
        self.result = result  # None: cancelled or failed (`note` says which)
        self.note = note


class RecoverProgress(Message):
    """The recovery's answers (Progress) or its search (SearchProgress: tried, best so far)."""

    def __init__(self, info: Progress | SearchProgress) -> None:
        super().__init__()
        self.info = info

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RecoverProgress)


class RecoverDone(Message):
    def __init__(self, result: RecoverResult | None, note: str = "") -> None:
        super().__init__()
        self.result = result  # None: cancelled or failed (`note` says which)
        self.note = note


class AuditProgress(Message):
    """The audit's phase: "loading" (a second model's weights), "rule", "answers", "signals", "done"."""

    def __init__(self, info: Progress) -> None:
        super().__init__()
        self.info = info

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AuditProgress)


class AuditDone(Message):
    def __init__(self, result: AuditResult | None, note: str = "") -> None:
        super().__init__()
        self.result = result  # None: cancelled or failed (`note` says which)
        self.note = note


class OtherOpened(Message):
    """Model B of a diff: its headers were read (`loaded`: its weights too) and its labels."""

    def __init__(self, header: Header, labels: LabelsView | None = None, *, loaded: bool = False) -> None:
        super().__init__()
        self.header = header
        self.labels = labels
        self.loaded = loaded


class OtherFailed(Message):
    """Model B could not be opened or loaded, or is not comparable with A."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class OtherStepReady(Message):
    """Model B at A's prompt and step."""

    def __init__(self, view: StepView) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, OtherStepReady)


class DiffProgressed(Message):
    def __init__(self, info: DiffProgress) -> None:
        super().__init__()
        self.info = info

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DiffProgressed)


class DiffDone(Message):
    def __init__(self, result: DiffResult | None, note: str = "") -> None:
        super().__init__()
        self.result = result  # None: cancelled or failed (`note` says which)
        self.note = note


class AttributionReady(Message):
    def __init__(self, view: DLAView) -> None:
        super().__init__()
        self.view = view


class SuggestionsReady(Message):
    """Suggested head labels, best first."""

    def __init__(self, suggestions: tuple[Any, ...]) -> None:
        super().__init__()
        self.suggestions = suggestions


class CoreError(Message):
    """A core call failed with a user-facing message."""

    def __init__(self, message: str, *, title: str = "Error") -> None:
        super().__init__()
        self.message = message
        self.title = title


# ---- from widgets


class ComponentFocused(Message):
    """The cursor in the component tree moved to a component."""

    def __init__(self, component: str, *, jump: bool) -> None:
        super().__init__()
        self.component = component
        self.jump = jump  # True when the user pressed enter: take the step view there


class NeuronsWanted(Message):
    """An MLP node of the component tree was opened: list its top neurons."""

    def __init__(self, layer: int) -> None:
        super().__init__()
        self.layer = layer


class StepChosen(Message):
    """A step was clicked in the step bar."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index


class InterventionRemoved(Message):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index


class CounterexampleChosen(Message):
    def __init__(self, prompt: str) -> None:
        super().__init__()
        self.prompt = prompt


class TheoryEdited(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class CompareRequested(Message):
    pass
