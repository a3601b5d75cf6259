"""What every command shares: consoles, error-to-exit-code mapping, JSON output, common options.

Commands are thin: parse, call the core, render. Errors become exit codes only here.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from tui_interp.errors import TuiInterpError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2

# emoji off: `:smile:` in a path or a token must print as typed
console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)

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


MaxWorkOpt = Annotated[
    int,
    typer.Option("--max-work", min=1, help="Refuse to start when evaluating the theory would take more steps than this (estimated first)."),
]
PromptOpt = Annotated[str | None, typer.Option("--prompt", "-p", help="Text to run.")]
TokensOpt = Annotated[str | None, typer.Option("--tokens", help="Token ids to run, e.g. 1,2,3.")]
AblateOpt = Annotated[
    list[str] | None,
    typer.Option("--ablate", help="Ablate a component (at every position): C[:zero|mean|resample] (repeatable; C an id or glob)."),
]
SteerOpt = Annotated[
    list[str] | None,
    typer.Option("--steer", help="Add a vector to a hook: HOOK=FILE.safetensors[*COEF] (the file holds one tensor; repeatable)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1, help="Seed for everything drawn at random (sampling, reference sets).")]


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print a one-line error on stderr (no markup, no emoji: the text may be the user's) and
    return the Exit to raise."""
    from tui_interp.display import visible

    line = visible(" ".join(str(message).split()))
    err_console.print(f"error: {line}", style="red", soft_wrap=True, markup=False, emoji=False, highlight=False)
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


NON_FINITE_WARNING = "non-finite numbers (NaN or infinity) in the results were written as null: the model's weights or activations overflow"


def finite(document: Any) -> tuple[Any, bool]:
    """The document with NaN and infinities replaced by None, and whether any was."""
    found = False

    def walk(x: Any) -> Any:
        nonlocal found
        if isinstance(x, float):
            if math.isfinite(x):
                return x
            found = True
            return None
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if hasattr(x, "tolist"):
            return walk(x.tolist())
        return x

    return walk(document), found


def emit_json(document: Any, *, lines: bool = False) -> None:
    """Write one JSON document to stdout (and nothing else); `lines`: on one line (JSONL).
    Non-finite numbers become null and the document (an object) gains a "warnings" entry."""
    clean, found = finite(document)
    if found and isinstance(clean, dict):
        clean.setdefault("warnings", []).append(NON_FINITE_WARNING)
    sys.stdout.write(json.dumps(clean, indent=None if lines else 2, ensure_ascii=False, allow_nan=False, default=_json_default))
    sys.stdout.write("\n")
    sys.stdout.flush()


def warn_non_finite(document: Any) -> None:
    """In text mode: say so on stderr when the results hold NaN or infinities."""
    if finite(document)[1]:
        err_console.print(f"warning: {NON_FINITE_WARNING.replace('written as null', 'shown as nan/inf')}", style="yellow",
                          markup=False, emoji=False)


def drive(events: Iterable[Any], result_type: type[T], *, quiet: bool = False) -> T:
    """Run an engine iterator of progress events to its result, with a progress bar on stderr
    when it is a terminal (and not `quiet`)."""
    result: T | None = None
    if quiet or not err_console.is_terminal:
        for event in events:
            if isinstance(event, result_type):
                result = event
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=True) as bar:
            task = bar.add_task("starting", total=None)
            for event in events:
                if isinstance(event, result_type):
                    result = event
                else:
                    bar.update(task, description=str(getattr(event, "phase", "")), completed=getattr(event, "done", 0),
                               total=getattr(event, "total", None))
    if result is None:
        raise TuiInterpError("internal: the run ended without a result")
    return result


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
