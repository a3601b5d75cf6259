"""Labels: what each component does, stored durably beside the model.

Plain data (`records`), the file format (`fileformat`), a store whose writes lock, re-read,
merge, write a temp file, fsync and rename (`store`), safe display (`display`) and exports
(`export`). Core package: imports no textual, typer or rich, and no torch.
"""

from tui_interp.display import encodable, visible
from tui_interp.labels.export import describe_evidence, markdown_cell, to_json, to_markdown
from tui_interp.labels.fileformat import dump_label_file, parse_label_file
from tui_interp.labels.records import (
    FORMAT,
    InvalidLabelError,
    Label,
    LabelFile,
    LabelNotFoundError,
    ModelRef,
    parse_evidence,
)
from tui_interp.labels.store import (
    LabelChange,
    LabelLocation,
    LabelSnapshot,
    LabelStore,
    beside_model_path,
    default_location,
    user_labels_path,
)

__all__ = [
    "FORMAT",
    "InvalidLabelError",
    "Label",
    "LabelChange",
    "LabelFile",
    "LabelLocation",
    "LabelNotFoundError",
    "LabelSnapshot",
    "LabelStore",
    "ModelRef",
    "beside_model_path",
    "default_location",
    "describe_evidence",
    "encodable",
    "dump_label_file",
    "markdown_cell",
    "parse_evidence",
    "parse_label_file",
    "to_json",
    "to_markdown",
    "user_labels_path",
    "visible",
]
