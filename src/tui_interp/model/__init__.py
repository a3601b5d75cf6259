"""Model core: checkpoints, configs, the one Transformer, tokenizer."""

from tui_interp.model.checkpoint import Checkpoint, open_checkpoint
from tui_interp.model.config import ModelConfig
from tui_interp.model.loader import LoadedModel, load_model, resolve_device, resolve_dtype

__all__ = ["Checkpoint", "LoadedModel", "ModelConfig", "load_model", "open_checkpoint", "resolve_device", "resolve_dtype"]
