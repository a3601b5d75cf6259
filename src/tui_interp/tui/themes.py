"""Colour themes as data files (themes/*.json), loaded into Textual's theme system.

A theme file:

    {"format": "tui-interp.theme/1", "name": "dark", "dark": true,
     "primary": "#5FA8D3", "background": "#16181D", ..., "variables": {"heatmap-hot": "#E8A65D"}}

Keys are those of `textual.theme.Theme`; colours are anything Textual parses (`#RRGGBB`,
`rgb(...)`, `ansi_blue` in themes with `"ansi": true`). The app's own variables
(`heatmap-cold`, `heatmap-hot`: the attention heatmap's ramp) fall back to the theme's background
and accent when a file leaves them out. A bad file is skipped with a message; it never stops the app.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

FORMAT = "tui-interp.theme/1"
DEFAULT_THEME = "dark"
COLOUR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground", "background", "surface", "panel", "boost")
OTHER_KEYS = {"format", "name", "description", "dark", "ansi", "luminosity_spread", "text_alpha", "variables"}


@dataclass(frozen=True)
class LoadedThemes:
    themes: tuple[Theme, ...]
    problems: tuple[str, ...]


def _colour(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key}: expected a colour string, got {value!r}")
    text = value.strip()
    colour_text = text.split()[0] if text.endswith("%") else text  # "#FFFF00 50%" is allowed in variables
    try:
        Color.parse(colour_text)
    except ColorParseError as e:
        raise ValueError(f"{key}: {text!r} is not a colour") from e
    return text


def parse_theme(doc: object, source: str = "") -> Theme:
    """A Theme from a decoded theme document; ValueError naming the problem otherwise."""
    if not isinstance(doc, dict):
        raise ValueError("a theme file holds one JSON object")
    if doc.get("format") != FORMAT:
        raise ValueError(f"not a theme file (\"format\" must be {FORMAT!r})")
    unknown = sorted(set(doc) - OTHER_KEYS - set(COLOUR_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(unknown)}")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip() or any(ch.isspace() for ch in name):
        raise ValueError("\"name\" must be a non-empty word such as \"dark\"")
    ansi = bool(doc.get("ansi", False))
    if "primary" not in doc:
        raise ValueError("\"primary\" colour is required")
    colours = {k: _colour(doc[k], k) for k in COLOUR_KEYS if k in doc}
    variables = doc.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError("\"variables\" must be an object of name: colour")
    clean_vars: dict[str, str] = {}
    for key, value in variables.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"variables: {key!r} must map to a string")
        if key.endswith("-text-style"):
            clean_vars[key] = value
        else:
            clean_vars[key] = _colour(value, f"variables.{key}")
    extra = {}
    for key in ("luminosity_spread", "text_alpha"):
        if key in doc:
            value = doc[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"{key}: expected a number from 0 to 1")
            extra[key] = float(value)
    dark = doc.get("dark", True)
    if not isinstance(dark, bool):
        raise ValueError("\"dark\" must be true or false")
    return Theme(name=name, dark=dark, ansi=ansi, variables=clean_vars, **colours, **extra)  # type: ignore[arg-type]


def load_themes(directory: Path | None) -> LoadedThemes:
    """Every *.json theme in `directory`, sorted by name; problems are reported, not raised."""
    if directory is None:
        return LoadedThemes((), ("no themes/ directory found: using Textual's built-in themes",))
    themes: list[Theme] = []
    problems: list[str] = []
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            themes.append(parse_theme(doc, str(path)))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as e:
            problems.append(f"theme {path.name}: {e}")
    return LoadedThemes(tuple(themes), tuple(problems))
