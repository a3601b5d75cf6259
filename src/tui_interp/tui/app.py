"""The Textual app: themes, the main screen, and the command palette. Thin on purpose.

`create_app` is the one factory; the CLI and the tests both call it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.screen import Screen

from tui_interp.engine.workbench import Workbench
from tui_interp.tui.resources import themes_dir
from tui_interp.tui.screens.main import MainScreen
from tui_interp.tui.text import plain
from tui_interp.tui.themes import DEFAULT_THEME, load_themes

if TYPE_CHECKING:
    from tui_interp.model.checkpoint import Checkpoint


class InterpApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tui-interp"

    def __init__(self, workbench: Workbench, *, theme: str | None = None, peer: Workbench | None = None,
                 other: Workbench | None = None) -> None:
        super().__init__()
        self.workbench = workbench
        self.peer = peer  # audited beside the workbench's model
        self.other = other  # model B of a diff
        self._problems: list[str] = []
        loaded = load_themes(themes_dir())
        for t in loaded.themes:
            self.register_theme(t)
        self._problems.extend(loaded.problems)
        wanted = theme or DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
        elif theme is not None:
            self._problems.append(f"no theme named {theme!r}; themes: {', '.join(sorted(self.available_themes))}")
        if self.theme != wanted and DEFAULT_THEME in self.available_themes and theme is not None:
            self.theme = DEFAULT_THEME

    def on_mount(self) -> None:
        self.push_screen(MainScreen(self.workbench, peer=self.peer, other=self.other))
        for problem in self._problems:
            self.notify(plain(problem), title="Themes", severity="warning", timeout=10)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if isinstance(screen, MainScreen):
            for action, title, help_text in screen.commands():
                yield SystemCommand(title, help_text, partial(screen.run_action, action))
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):  # ours: asks about unsaved changes; shows every key
                yield command


def create_app(
    model_path: str | os.PathLike[str] | Checkpoint,
    theory_path: str | os.PathLike[str] | None = None,
    labels_path: str | os.PathLike[str] | None = None,
    theme: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    compare_with: str | os.PathLike[str] | Checkpoint | None = None,
    diff_with: str | os.PathLike[str] | Checkpoint | None = None,
) -> InterpApp:
    """The app on one model. Nothing is read here: the app opens the model once it is on screen
    (pass an already opened Checkpoint to have the header on the very first frame).

    `compare_with`: a second model for the generalisation audit (loaded when the audit runs);
    `diff_with`: model B of a diff, stepped beside the first (its own labels, its weights
    loaded by the app)."""
    workbench = Workbench(model_path, theory_path=theory_path, labels_path=labels_path, device=device, dtype=dtype)
    peer = Workbench(compare_with, device=device, dtype=dtype) if compare_with is not None else None
    other = Workbench(diff_with, device=device, dtype=dtype) if diff_with is not None else None
    return InterpApp(workbench, theme=theme, peer=peer, other=other)
