"""themes/*.json load into Textual's theme system, switch at run time, and bad files are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.color import Color
from tui_pilot import press, settle, submit_prompt

from tui_interp.tui.resources import themes_dir
from tui_interp.tui.themes import FORMAT, load_themes, parse_theme
from tui_interp.tui.widgets.heatmap import AttentionHeatmap

REQUIRED = {"dark", "light", "high-contrast", "ansi-16"}


def test_shipped_themes_load() -> None:
    loaded = load_themes(themes_dir())
    assert loaded.problems == ()
    names = {t.name for t in loaded.themes}
    assert names >= REQUIRED
    by_name = {t.name: t for t in loaded.themes}
    assert by_name["light"].dark is False and by_name["dark"].dark is True
    assert by_name["ansi-16"].ansi  # only the terminal's 16 colours
    hc = by_name["high-contrast"]
    fg, bg = Color.parse(hc.foreground), Color.parse(hc.background)
    assert fg.brightness - bg.brightness > 0.95


def _doc(**changes: object) -> dict:
    doc = {"format": FORMAT, "name": "t", "primary": "#112233"}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "one JSON object"),
        (_doc(format="other"), "not a theme file"),
        (_doc(primary=None), "primary"),
        (_doc(primary="not-a-colour"), "not a colour"),
        (_doc(name="two words"), "name"),
        (_doc(colour="#fff"), "unknown key"),
        (_doc(variables={"heatmap-hot": 3}), "variables"),
        (_doc(luminosity_spread=7), "luminosity_spread"),
        (_doc(dark="yes"), "dark"),
    ],
)
def test_bad_theme_documents(doc: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_theme(doc)


def test_bad_file_is_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps(_doc(name="good")))
    (tmp_path / "broken.json").write_text("{")
    loaded = load_themes(tmp_path)
    assert [t.name for t in loaded.themes] == ["good"]
    assert len(loaded.problems) == 1 and "broken.json" in loaded.problems[0]


async def test_theme_switches_at_run_time(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "dark"
        assert REQUIRED <= set(app.available_themes)
        await submit_prompt(pilot, "w1 w2 w3")
        await press(pilot, "n")
        heatmap = app.screen.query_one(AttentionHeatmap)
        dark_ramp = heatmap._ramp()
        app.theme = "light"
        await pilot.pause()
        assert app.theme_variables["heatmap-hot"].upper() == "#0550AE"
        assert heatmap._ramp() != dark_ramp
        app.theme = "ansi-16"
        await pilot.pause()
        assert heatmap._ramp() is None  # ANSI colours cannot be blended: shades only
        assert "░" in heatmap.text() or "▒" in heatmap.text()
        # the palette offers the theme switcher
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any("theme" in t.lower() for t in titles)


async def test_unknown_theme_name_is_a_notification(make_app) -> None:
    app = make_app(theme="no-such-theme")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "dark"
        assert any("no theme named" in str(n.message) for n in app._notifications)
