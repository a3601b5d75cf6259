"""One exception family. Each error carries a message a person can act on.

The core raises these; only the faces (CLI, TUI) turn them into exit codes or notifications.
"""

from __future__ import annotations


class TuiInterpError(Exception):
    """Base of every error the user should see as one line (exit code 2 in the CLI)."""


class CheckpointError(TuiInterpError):
    """A checkpoint directory or safetensors file is missing, corrupt, or does not match its config."""


class ConfigError(TuiInterpError):
    """A model config is missing, invalid, or describes an unsupported architecture."""


class TokenizerError(TuiInterpError):
    """The tokenizer is missing or cannot encode/decode what was asked."""


class DeviceError(TuiInterpError):
    """A device or dtype was asked for that this machine cannot provide."""


class HookError(TuiInterpError):
    """A hook name or glob matches nothing, or a hook returned a tensor of the wrong shape."""


class InputError(TuiInterpError):
    """A prompt, token list or other run input is invalid (too long, out of vocabulary...)."""


class ComponentError(TuiInterpError):
    """A component id (`L3.H5`, `L2.mlp`, ...) is malformed or does not exist in the model."""


class LabelStoreError(TuiInterpError):
    """A label file is corrupt, foreign, or cannot be written safely."""


class TheoryError(TuiInterpError):
    """A theory file is malformed or ill-typed. Carries a 1-based line and column span; without
    a line (the file as a whole: missing, unreadable, not a file) the message has no position."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        col: int = 1,
        end_col: int | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.line = line if line is not None else 1
        self.col = col
        self.end_col = end_col if end_col is not None else col + 1
        self.path = path
        where = f"{path}:" if path else ""
        position = f"{line}:{col}: " if line is not None else ""
        super().__init__(f"{where}{position}{message}")
