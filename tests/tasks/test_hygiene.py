"""tasks/ and model/export stay free of the faces (textual, typer, rich) and of transformers."""

from __future__ import annotations

import json
import subprocess
import sys


def test_tasks_and_export_import_no_faces() -> None:
    code = (
        "import tui_interp.tasks, tui_interp.tasks.sample, tui_interp.tasks.card, tui_interp.model.export\n"
        "import sys, json; print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    top = {m.split(".")[0] for m in json.loads(out.strip().splitlines()[-1])}
    assert top & {"textual", "typer", "rich", "transformers"} == set()
    assert "torch" in top and "tokenizers" in top  # the check itself sees imports
