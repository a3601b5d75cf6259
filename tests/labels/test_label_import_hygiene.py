"""The core never imports the faces: labels/ and components.py load without textual, typer, rich or torch."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("textual", "typer", "rich", "torch", "click")


def imported_after(statement: str) -> list[str]:
    """Top-level module names present in a fresh interpreter after running `statement`."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_labels_and_components_import_no_face_and_no_torch() -> None:
    modules = imported_after(
        "import tui_interp.components, tui_interp.labels, tui_interp.labels.store, "
        "tui_interp.labels.records, tui_interp.labels.fileformat, tui_interp.labels.export, tui_interp.display"
    )
    assert "tui_interp" in modules
    assert [m for m in FORBIDDEN if m in modules] == []


def test_using_the_store_imports_no_face_either() -> None:
    modules = imported_after(
        "import tempfile, pathlib\n"
        "from tui_interp.labels import LabelStore, ModelRef, to_markdown\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "s = LabelStore(d / 'labels.json', ModelRef('m', 'f'))\n"
        "s.add('L0.H1', '[bold]x'); to_markdown(s.read().file)"
    )
    assert [m for m in FORBIDDEN if m in modules] == []
