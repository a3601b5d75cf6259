"""Model core: checkpoints, configs, the one Transformer, tokenizer.

Names are imported lazily so that header-only work (`inspect`, labels) never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui_interp.model.checkpoint import Checkpoint, open_checkpoint
    from tui_interp.model.config import ModelConfig
    from tui_interp.model.loader import LoadedModel, load_model, resolve_device, resolve_dtype

_WHERE = {
    "Checkpoint": "checkpoint",
    "open_checkpoint": "checkpoint",
    "ModelConfig": "config",
    "LoadedModel": "loader",
    "load_model": "loader",
    "resolve_device": "loader",
    "resolve_dtype": "loader",
}

__all__ = ["Checkpoint", "LoadedModel", "ModelConfig", "load_model", "open_checkpoint", "resolve_device", "resolve_dtype"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"tui_interp.model.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'tui_interp.model' has no attribute {name!r}")
