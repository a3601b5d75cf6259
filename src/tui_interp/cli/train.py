"""`tui-interp train TASK --out DIR`: train a sample model and write it as a HuggingFace checkpoint.

Thin: builds the task and training config, calls `tasks.train` (rendering progress with rich)
and `tasks.sample.write_sample_model` (weights, tokenizer, model card, theory file, head labels).
"""

from __future__ import annotations

import json as jsonlib
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tui_interp.cli import app
from tui_interp.cli.common import JsonOpt, console, emit_json, err_console, user_errors

if TYPE_CHECKING:
    from tui_interp.tasks import Task, TrainConfig, TrainResult


class TaskChoice(str, Enum):
    modadd = "modadd"
    parity = "parity"
    sorting = "sorting"
    induction = "induction"
    charlm = "charlm"


class WeightsDtype(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


def _parse_options(items: list[str]) -> dict[str, Any]:
    from tui_interp.errors import InputError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InputError(f"--task-option {item!r}: expected KEY=VALUE, e.g. n_bits=12")
        try:
            out[key] = jsonlib.loads(value)
        except jsonlib.JSONDecodeError:
            out[key] = value
    return out


@app.command("train")
def train_cmd(
    task: Annotated[TaskChoice, typer.Argument(help="What to train: modadd, parity, sorting, induction or charlm.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the model to (HuggingFace layout).", show_default=False)],
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1, help="Seed for the split, the initial weights and the batch order.")] = 0,
    steps: Annotated[int | None, typer.Option("--steps", help="Optimiser steps (default: the task's).", show_default=False)] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="AdamW learning rate (default: the task's).", show_default=False)] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option("--weight-decay", help="AdamW weight decay on matrices and embeddings (default: the task's).", show_default=False),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Examples per step; 0 = the whole train split (default: the task's).", show_default=False),
    ] = None,
    train_frac: Annotated[
        float | None,
        typer.Option("--train-frac", help="Fraction of all examples used for training (modadd, parity).", show_default=False),
    ] = None,
    task_option: Annotated[
        list[str] | None,
        typer.Option("--task-option", help="Task option KEY=VALUE, repeatable (e.g. n_bits=12).", show_default=False),
    ] = None,
    stop_at_test_acc: Annotated[
        float | None,
        typer.Option("--stop-at-test-acc", help="Stop at the first evaluation whose held-out accuracy reaches this.", show_default=False),
    ] = None,
    stop_at_train_acc: Annotated[
        float | None,
        typer.Option("--stop-at-train-acc", help="Stop at the first evaluation whose train accuracy reaches this.", show_default=False),
    ] = None,
    no_early_stop: Annotated[bool, typer.Option("--no-early-stop", help="Run every step: ignore the task's default stopping rule.")] = False,
    eval_every: Annotated[int | None, typer.Option("--eval-every", help="Measure accuracy every N steps (default: the task's).", show_default=False)] = None,
    dtype: Annotated[WeightsDtype, typer.Option("--dtype", help="dtype the weights are saved in (training is float32).")] = WeightsDtype.float32,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch (default: torch's choice).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists and is not empty.")] = False,
    json: JsonOpt = False,
) -> None:
    """Train a sample model from scratch and write it with its model card, theory and labels."""
    with user_errors():
        import dataclasses

        import torch

        from tui_interp.errors import InputError
        from tui_interp.tasks import get_task, with_defaults
        from tui_interp.tasks.sample import train_command, write_sample_model

        if threads is not None:
            if threads < 1:
                raise InputError(f"--threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
            raise InputError(f"{out}: exists and is not empty (pass --force to replace it)")
        options = _parse_options(task_option or [])
        if train_frac is not None:
            options["train_frac"] = train_frac
        the_task = get_task(task.value, **options)
        cfg = with_defaults(
            the_task,
            seed=seed,
            steps=steps,
            lr=lr,
            weight_decay=weight_decay,
            eval_every=eval_every,
            stop_at_test_acc=stop_at_test_acc,
            stop_at_train_acc=stop_at_train_acc,
        )
        if batch_size is not None:
            if batch_size < 0:
                raise InputError(f"--batch-size must be >= 0, got {batch_size}")
            cfg = dataclasses.replace(cfg, batch_size=batch_size or None)
        if no_early_stop:
            if stop_at_test_acc is not None or stop_at_train_acc is not None:
                raise InputError("--no-early-stop contradicts --stop-at-test-acc / --stop-at-train-acc")
            cfg = dataclasses.replace(cfg, stop_at_test_acc=None, stop_at_train_acc=None)
        elif stop_at_test_acc is not None or stop_at_train_acc is not None:
            # an explicit stopping rule replaces the task's default one
            cfg = dataclasses.replace(cfg, stop_at_test_acc=stop_at_test_acc, stop_at_train_acc=stop_at_train_acc)
        cfg.check()
        command = train_command(task.value, out, cfg, options, dtype.value, threads)
        result = _train_with_progress(the_task, cfg, show=err_console.is_terminal)
        if dtype is not WeightsDtype.float32:
            from tui_interp.tasks.trainer import round_weights

            result = round_weights(result, getattr(torch, dtype.value))
        doc = write_sample_model(the_task, result, out, command=command, dtype=dtype.value, force=force)
    if json:
        emit_json(doc)
        return
    _render(doc)


def _train_with_progress(task: Task, cfg: TrainConfig, *, show: bool) -> TrainResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from tui_interp.tasks import train

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  train {task.fields[train]}  test {task.fields[test]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, disable=not show, transient=False) as bar:
        job = bar.add_task(escape(f"train {task.name}"), total=cfg.steps, loss="-", train="-", test="-")
        last_acc: dict[str, str] = {}

        def report(p: Any) -> None:
            if p.train_acc is not None:
                last_acc["train"] = f"{p.train_acc:.1%}"
                last_acc["test"] = f"{p.test_acc:.1%}"
            bar.update(job, completed=p.step, loss=f"{p.loss:.4f}", **last_acc)

        return train(task, cfg, progress=report)


def _render(doc: dict[str, Any]) -> None:
    table = Table(title=escape(f"trained {doc['task']} -> {doc['out']}"), show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("steps", f"{doc['steps']:,} ({doc['stopped']})"),
        ("train accuracy", f"{doc['train_accuracy']:.2%}"),
        ("test accuracy", f"{doc['test_accuracy']:.2%}"),
        ("time", f"{doc['seconds']:.1f} s"),
        ("parameters", f"{doc['n_params']:,}"),
        ("size", f"{doc['size_bytes'] / 1e6:.2f} MB ({doc['dtype']})"),
        ("fingerprint", doc["fingerprint"]),
        ("files", ", ".join(doc["files"])),
    ]
    if doc["labels"]:
        rows.append(("labels", "; ".join(doc["labels"])))
    for key, value in rows:
        table.add_row(key, escape(str(value)))
    console.print(table)
