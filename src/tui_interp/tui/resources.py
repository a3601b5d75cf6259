"""Finding the files that ship beside the package: themes/ and sample_models/.

Both live at the repository root (see shared/DESIGN.md). They are found by walking up from
this package's directory, so an editable install, a checkout run with PYTHONPATH=src, and the
tests all find them; `TUI_INTERP_HOME` points somewhere else (e.g. an unpacked release).

UI-free: imported by the CLI before textual is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tui_interp.errors import CheckpointError

DEFAULT_MODEL = "modadd-grokked"
DEFAULT_THEORY = "modadd.theory"
HOME_ENV = "TUI_INTERP_HOME"


def _roots() -> list[Path]:
    roots = []
    env = os.environ.get(HOME_ENV)
    if env:
        roots.append(Path(env).expanduser())
    here = Path(__file__).resolve().parent
    roots.extend(here.parents)
    roots.append(Path(sys.prefix) / "share" / "tui-interp")  # a non-editable install's data files
    return roots


def find_dir(name: str) -> Path | None:
    """The first `name/` directory in $TUI_INTERP_HOME or above this package, else None."""
    for root in _roots():
        candidate = root / name
        if candidate.is_dir():
            return candidate
    return None


def themes_dir() -> Path | None:
    return find_dir("themes")


def default_model() -> tuple[Path, Path | None]:
    """The bundled default sample model and its theory file (None if the theory is absent).

    Raises CheckpointError, saying where it looked, when the sample model is not there.
    """
    models = find_dir("sample_models")
    if models is not None and (models / DEFAULT_MODEL / "config.json").is_file():
        model = models / DEFAULT_MODEL
        theory = model / DEFAULT_THEORY
        return model, theory if theory.is_file() else None
    where = f"{models}" if models is not None else f"any sample_models/ above {Path(__file__).resolve().parent}"
    raise CheckpointError(
        f"the default sample model {DEFAULT_MODEL!r} is not in {where}; train it with "
        f"`tui-interp train modadd --out sample_models/{DEFAULT_MODEL}`, set {HOME_ENV} to the "
        "directory that holds sample_models/, or open a model: `tui-interp open DIR`"
    )
