"""Algorithmic tasks and a small trainer: the sample models are made here.

Each task generates its data with a train/test split fixed by a seed, names the model shape
it trains and the tokenizer its checkpoints ship with. `train` runs AdamW on it and reports
progress through a callback. Nothing here imports textual, typer or rich.
"""

from __future__ import annotations

from tui_interp.errors import InputError
from tui_interp.tasks.base import IGNORE, Split, Task, TaskData, TrainDefaults
from tui_interp.tasks.charlm import CharLM
from tui_interp.tasks.induction import Induction
from tui_interp.tasks.modadd import ModularAddition
from tui_interp.tasks.parity import Parity
from tui_interp.tasks.sorting import Sorting
from tui_interp.tasks.trainer import Evaluation, Progress, TrainConfig, TrainResult, evaluate, train, with_defaults

TASKS: dict[str, type[Task]] = {
    ModularAddition.name: ModularAddition,
    Parity.name: Parity,
    Sorting.name: Sorting,
    Induction.name: Induction,
    CharLM.name: CharLM,
}


def get_task(name: str, **options: object) -> Task:
    """A task by name, with options (e.g. train_frac=0.3); None-valued options are dropped."""
    cls = TASKS.get(name)
    if cls is None:
        raise InputError(f"unknown task {name!r} (tasks: {', '.join(TASKS)})")
    return cls(options={k: v for k, v in options.items() if v is not None})


__all__ = [
    "IGNORE",
    "TASKS",
    "CharLM",
    "Evaluation",
    "Induction",
    "ModularAddition",
    "Parity",
    "Progress",
    "Sorting",
    "Split",
    "Task",
    "TaskData",
    "TrainConfig",
    "TrainDefaults",
    "TrainResult",
    "evaluate",
    "get_task",
    "train",
    "with_defaults",
]
