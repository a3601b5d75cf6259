"""What every command shares: consoles, error-to-exit-code mapping, JSON output, common options.

Commands are thin: parse, call the core, render. Errors become exit codes only here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tui_interp.errors import TuiInterpError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

T = TypeVar("T")


class DtypeChoice(str, Enum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


# Device accepts cuda:N too, so it is a plain string validated by the core.
DeviceOpt = Annotated[
    str,
    typer.Option("--device", help="auto | cpu | cuda | cuda:N (auto: cuda when present, else cpu)."),
]
DtypeOpt = Annotated[
    DtypeChoice,
    typer.Option("--dtype", help="auto: float32 on CPU, the checkpoint's dtype on CUDA."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print a one-line error on stderr and return the Exit to raise."""
    err_console.print(escape(f"error: {message}"), style="red", soft_wrap=True)
    return typer.Exit(code=code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn core errors into a one-line message and exit code 2; no traceback."""
    try:
        yield
    except TuiInterpError as e:
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", code=130) from None


def emit_json(document: Any) -> None:
    """Write one JSON document to stdout (and nothing else)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default))
    sys.stdout.write("\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator form of user_errors for command functions."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with user_errors():
            return fn(*args, **kwargs)

    return wrapper
