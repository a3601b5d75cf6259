"""Write a trained sample model as a HuggingFace checkpoint with its card, theory and head labels.

`write_sample_model` is what `tui-interp train` calls once training is done: the checkpoint
(model.safetensors, config.json, tokenizer.json), the model card (README.md), the task's theory
file and, for tasks whose heads matter (`Task.label_heads`), labels.json naming the clear
previous-token and induction heads, written through the LabelStore with their scores as
evidence. `train_command` spells out the command that reproduces a run.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from tui_interp.components import Component
from tui_interp.engine.suggest import INDUCTION_MIN_SCORE, MIN_SCORE, HeadScores, standard_head_scores
from tui_interp.fileio import atomic_write
from tui_interp.labels import Label, LabelFile, LabelStore, ModelRef
from tui_interp.labels.records import utc_now
from tui_interp.model.checkpoint import open_checkpoint
from tui_interp.model.export import save_checkpoint, state_dict_for
from tui_interp.model.loader import DTYPES, load_model
from tui_interp.tasks.base import Task
from tui_interp.tasks.card import model_card
from tui_interp.tasks.trainer import TrainConfig, TrainResult

PREV_TOKEN_METRIC = "mean attention to the previous token"
TRAIN_FILE = "train.jsonl"
TRAIN_SPLIT = f'split train from "{TRAIN_FILE}"    # the examples it was trained on, with their answers\n'
INDUCTION_METRIC = "mean attention to the token after the earlier occurrence of the current token"


def train_command(task: str, out: Path, cfg: TrainConfig, options: dict[str, Any], dtype: str, threads: int | None) -> str:
    """The full command that reproduces a run, every setting spelled out."""
    args = ["tui-interp", "train", task, "--out", str(out), "--seed", str(cfg.seed), "--steps", str(cfg.steps),
            "--lr", f"{cfg.lr:g}", "--weight-decay", f"{cfg.weight_decay:g}",
            "--batch-size", str(cfg.batch_size or 0), "--eval-every", str(cfg.eval_every)]
    if cfg.stop_at_test_acc is None and cfg.stop_at_train_acc is None:
        args.append("--no-early-stop")
    if cfg.stop_at_test_acc is not None:
        args += ["--stop-at-test-acc", f"{cfg.stop_at_test_acc:g}"]
    if cfg.stop_at_train_acc is not None:
        args += ["--stop-at-train-acc", f"{cfg.stop_at_train_acc:g}"]
    for key, value in options.items():
        if key == "train_frac":
            args += ["--train-frac", f"{value:g}"]
        else:
            args += ["--task-option", f"{key}={json.dumps(value)}"]
    if dtype != "float32":
        args += ["--dtype", dtype]
    if threads:
        args += ["--threads", str(threads)]
    return shlex.join(args)


def write_sample_model(task: Task, result: TrainResult, out: Path, *, command: str, dtype: str, force: bool) -> dict[str, Any]:
    """Save the checkpoint with card and theory, then label heads where the task calls for it.

    Returns what was written, as plain data (the `train --json` document)."""
    torch_dtype = DTYPES[dtype]
    name = out.resolve().name
    size = sum(t.numel() * t.element_size() for t in state_dict_for(result.model, task.arch, dtype=torch_dtype).values())
    theory = task.theory()
    card_args: dict[str, Any] = dict(
        name=name,
        command=command,
        size_bytes=size,
        weights_dtype=dtype,
        theory_file=theory[0] if theory else None,
        model_path=str(out),
        extra_fields=task.card_fields(),
    )
    files = {"README.md": model_card(result, **card_args)}
    rows = task.train_rows(result.data) if theory else None
    if theory:
        files[theory[0]] = theory[1]
        if rows:
            files[TRAIN_FILE] = "".join(json.dumps(r) + "\n" for r in rows)
            files[theory[0]] = theory[1] + TRAIN_SPLIT
            name_q = theory[0].rsplit(".", 1)[0] + ".question"
            files[name_q] = question(theory[1], task.name)
    save_checkpoint(result.model, out, tokenizer_json=task.tokenizer_json(), model_type=task.arch, dtype=torch_dtype,
                    files=files, overwrite=force)
    ckpt = open_checkpoint(out)
    written = sorted(files) + ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    labels: tuple[Label, ...] = ()
    if task.label_heads:
        scores = standard_head_scores(load_model(out, device="cpu", dtype="float32"))
        labels = head_labels(scores, command=f"tui-interp suggest {shlex.quote(str(out))} --json")
        if labels:
            store = LabelStore(out / "labels.json", ModelRef(name=name, fingerprint=ckpt.fingerprint), config=ckpt.config)
            store.edit(lambda current: LabelFile(model=current.model, labels=tuple(sorted(labels, key=lambda lab: lab.component))))
            written.append("labels.json")
            notes = heads_note(scores, labels)
            atomic_write(out / "README.md", model_card(result, **card_args, labels_file="labels.json", notes=notes))
    return {
        "task": task.name,
        "out": str(out),
        "name": name,
        "seed": result.config.seed,
        "steps": result.steps,
        "stopped": result.stopped,
        "train_accuracy": result.train_acc,
        "test_accuracy": result.test_acc,
        "train_loss": result.train_loss,
        "test_loss": result.test_loss,
        "seconds": round(result.seconds, 3),
        "n_params": ckpt.n_params,
        "size_bytes": size,
        "dtype": dtype,
        "fingerprint": ckpt.fingerprint,
        "files": sorted(written),
        "labels": [f"{lab.component}: {lab.name}" for lab in labels],
        "command": command,
    }


def question(theory_text: str, task: str) -> str:
    """The task's theory as a question: its inputs and prompt, no `expect`, and the train split
    with its answers. What `recover` and `audit` read."""
    lines = [
        f"# What does the model answer? A question about the {task} model: no `expect`;",
        "# `tui-interp recover` proposes one, `tui-interp audit` reads only the train answers.",
        f'theory "{task} (question)"',
    ]
    lines += [line for line in theory_text.splitlines() if line.startswith(("input ", "where ", "prompt "))]
    return "\n".join(lines) + "\n" + TRAIN_SPLIT


def head_labels(scores: HeadScores, *, command: str) -> tuple[Label, ...]:
    """Labels for every head whose previous-token or induction score passes its threshold
    (engine.suggest's thresholds), with the score as evidence."""
    stamp = utc_now()
    out = []
    n_layers, n_heads = scores.prev_token.shape
    for layer in range(n_layers):
        for head in range(n_heads):
            p = round(float(scores.prev_token[layer, head]), 4)
            i = round(float(scores.induction[layer, head]), 4)
            if p >= MIN_SCORE and p >= i:
                name, tags, metric, value = "previous-token head", ("previous-token", "attention"), PREV_TOKEN_METRIC, p
                note = (
                    f"Attends from each position to the one just before it ({p:.0%} of its attention on "
                    "average), writing the previous token into the residual stream, where a later "
                    "induction head's keys can read it."
                )
            elif i >= INDUCTION_MIN_SCORE:
                name, tags, metric, value = "induction head", ("induction", "attention"), INDUCTION_METRIC, i
                note = (
                    "In a repeated sequence, attends from each token to the token that followed its "
                    f"earlier occurrence ({i:.0%} of its attention on average) and copies it: "
                    "[A][B] ... [A] -> [B]."
                )
            else:
                continue
            evidence = {"kind": "attention", "metric": metric, "value": value, "probe": scores.probe, "command": command}
            out.append(Label(component=Component("head", layer, head), name=name, note=note, tags=tags, evidence=(evidence,), created=stamp, updated=stamp))
    return tuple(out)


def heads_note(scores: HeadScores, labels: tuple[Label, ...]) -> str:
    """A card section: the labelled heads, then every head's two scores."""
    labelled = {str(lab.component): lab.name for lab in labels}
    lines = [
        "## Heads",
        "",
        f"Attention measured on {scores.probe}. Heads whose score passes the threshold are "
        "labelled in `labels.json`.",
        "",
        "| head | previous-token score | induction score | label |",
        "| --- | ---: | ---: | --- |",
    ]
    for h in scores.to_json()["heads"]:
        lines.append(f"| {h['component']} | {h['prev_token']:.3f} | {h['induction']:.3f} | {labelled.get(h['component'], '')} |")
    return "\n".join(lines)
