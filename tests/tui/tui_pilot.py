"""Driving the app from Pilot tests."""

from __future__ import annotations

import threading
from typing import Any

from textual.pilot import Pilot

MARKUP_TOKEN = "[b]x"
ESCAPE_TOKEN = "\x1b[31mred"
# 97 words: the tiny models' vocabulary size
WORDS = ["<unk>", "<s>", "</s>", MARKUP_TOKEN, ESCAPE_TOKEN, "="] + [f"w{i}" for i in range(91)]

THEORY = '''theory "next word"
input a: int in 0..9
prompt "w{a} w{a + 1}"
expect "w" + str(a + 2)
slice "even": a % 2 == 0
'''


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for every worker, then for the messages they posted to be handled."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def submit_prompt(pilot: Pilot[Any], text: str) -> None:
    screen = pilot.app.screen
    prompt = screen.query_one("#prompt")
    prompt.value = text
    prompt.focus()
    await pilot.press("enter")
    await settle(pilot)


async def press(pilot: Pilot[Any], *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def hold_loading(monkeypatch: Any) -> threading.Event:
    """Make Workbench.load wait until the returned event is set (at most 10 s): the screen is up,
    the weights are not."""
    from tui_interp.engine.workbench import Workbench

    release = threading.Event()
    real_load = Workbench.load

    def slow_load(self: Workbench) -> Any:
        assert release.wait(10)
        return real_load(self)

    monkeypatch.setattr(Workbench, "load", slow_load)
    return release
