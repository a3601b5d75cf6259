"""tui-interp: a terminal workbench for understanding transformer models."""

__version__ = "0.1.0"
