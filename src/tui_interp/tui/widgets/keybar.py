"""The key bar at the bottom of every screen: the keys that act *now*, most important first.

Unlike Textual's Footer it is one line that always fits: keys are listed in order of priority
(the focused widget's own keys, then the screen's in the order they are declared, then the
app's) and the least important are left out when the terminal is narrow; the keys panel (`?`)
is always listed. While a text box has focus, keys that would be typed into it are not shown
(they type), so every key on the bar does what it says. A screen may word a key for the moment
with `key_description(action) -> str | None` ("" leaves it off the bar; None: its description).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.widget import Widget
from textual.widgets import Input, TextArea

if TYPE_CHECKING:
    from textual.binding import Binding
    from textual.dom import DOMNode

KEY_NAMES = {
    "right": "→", "left": "←", "up": "↑", "down": "↓", "right_square_bracket": "]", "left_square_bracket": "[",
    "question_mark": "?", "slash": "/", "escape": "esc", "comma": ",", "full_stop": ".", "less_than_sign": "<",
    "greater_than_sign": ">", "enter": "enter", "delete": "del",
}
NOT_TYPED = {"escape", "enter", "tab", "shift+tab", "up", "down", "left", "right", "home", "end", "pageup",
             "pagedown", "delete", "backspace", "insert"}
PINNED = ("show_keys",)  # always on the bar, at its end
_FKEY = re.compile(r"f\d+$")


def key_text(key: str) -> str:
    """A key as the bar and the keys panel write it: ctrl+r -> ^r, question_mark -> ?."""
    if key in KEY_NAMES:
        return KEY_NAMES[key]
    return key.replace("ctrl+", "^")


def is_typed(key: str) -> bool:
    """Would this key type a character into a text box (a letter, digit, punctuation, space)?"""
    return "+" not in key and key not in NOT_TYPED and not _FKEY.match(key)


def is_typing(widget: object) -> bool:
    """Is this widget a text box, where printable keys type?"""
    return isinstance(widget, (Input, TextArea))


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $panel; color: $foreground; }
    KeyBar > .keybar--key { text-style: bold; color: $accent; }
    KeyBar > .keybar--off { text-style: dim; }
    """
    COMPONENT_CLASSES = {"keybar--key", "keybar--off"}

    _spans: list[tuple[int, int, str, DOMNode]] = []  # (first cell, end cell, action, node) as drawn

    def __init__(self, *, extra: tuple[tuple[str, str], ...] = (), **kwargs: object) -> None:
        """`extra`: (key, what it does) listed first, for keys a focused widget handles itself
        (enter in a table or a text box), which no binding of the screen describes."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.extra = extra

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: object) -> None:
        self.refresh()

    def entries(self) -> list[tuple[str, str, bool, str, DOMNode]]:
        """(key as shown, description, enabled, action, node) in priority order, one per action."""
        screen = self.screen
        typing = is_typing(screen.focused)
        ranked: list[tuple[int, int, str, str, bool, str, DOMNode]] = []
        seen: set[tuple[int, str]] = set()
        for order, (key, active) in enumerate(screen.active_bindings.items()):
            binding: Binding = active.binding
            node = active.node
            if not binding.show and binding.action not in PINNED:
                continue
            if typing and is_typed(key):
                continue
            ident = (id(node), binding.action)
            if ident in seen:
                continue
            seen.add(ident)
            describe = getattr(node, "key_description", None)
            said = describe(binding.action) if callable(describe) else None
            if said == "":
                continue  # the screen says: not worth the room at the moment (the key still works)
            text = said or binding.description
            rank = 1 if node is screen else 2 if node is self.app else 0  # the focused widget's own keys first
            ranked.append((rank, order, key_text(key), text, active.enabled, binding.action, node))
        ranked.sort(key=lambda r: (r[0], r[1]))
        extra = [(key, what, True, "", screen) for key, what in self.extra]
        return extra + [(k, d, e, a, n) for _, _, k, d, e, a, n in ranked]

    def render(self) -> Text:
        width = self.size.width
        entries = self.entries()
        pinned = [e for e in entries if e[3] in PINNED]
        rest = [e for e in entries if e[3] not in PINNED]

        def cost(items: list[tuple[str, str, bool, str, DOMNode]], sep: int) -> int:
            return sum(len(k) + 1 + len(d) for k, d, *_ in items) + sep * max(0, len(items) - 1) + 1

        sep = 2
        while rest and cost(rest + pinned, sep) > width:
            rest.pop()  # the least important goes first
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        off_style = self.get_component_rich_style("keybar--off", partial=True)
        text = Text(" ", no_wrap=True, overflow="ellipsis")
        self._spans = []
        for i, (key, desc, enabled, action, node) in enumerate(rest + pinned):
            if i:
                text.append(" " * sep)
            start = text.cell_len
            text.append(key, style=key_style if enabled else off_style)
            text.append(" " + desc, style="" if enabled else off_style)
            self._spans.append((start, text.cell_len, action, node))
        return text

    async def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        for start, end, action, node in self._spans:
            if start <= offset.x < end and action:
                await self.app.run_action(action, node)
                return
