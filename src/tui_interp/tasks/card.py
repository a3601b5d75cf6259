"""Model cards (README.md) for trained sample models.

The card opens with a front-matter block of flat `key: value` lines, each value a JSON
scalar, so tests and scripts read the numbers without a YAML parser; the body says what the
task is, how the split was made, how accurate the model is and how to reproduce it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tui_interp.tasks.trainer import Evaluation, TrainResult

MAX_HISTORY_ROWS = 14


def front_matter(fields: Mapping[str, Any]) -> str:
    lines = ["---"]
    for key, value in fields.items():
        lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def parse_front_matter(text: str) -> dict[str, Any]:
    """The front-matter fields of a card written by `model_card` ({} when it has none)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    out: dict[str, Any] = {}
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, sep, value = line.partition(":")
        if not sep:
            continue
        try:
            out[key.strip()] = json.loads(value.strip())
        except json.JSONDecodeError:
            out[key.strip()] = value.strip()
    return out


def _pick_history(history: list[Evaluation]) -> list[Evaluation]:
    """At most MAX_HISTORY_ROWS evaluations, evenly spread, always the first and last."""
    if len(history) <= MAX_HISTORY_ROWS:
        return history
    step = (len(history) - 1) / (MAX_HISTORY_ROWS - 1)
    picked = sorted({round(i * step) for i in range(MAX_HISTORY_ROWS)})
    return [history[i] for i in picked]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def model_card(
    result: TrainResult,
    *,
    name: str,
    command: str,
    size_bytes: int,
    weights_dtype: str,
    theory_file: str | None = None,
    labels_file: str | None = None,
    notes: str = "",
    model_path: str | None = None,
    extra_fields: Mapping[str, Any] | None = None,
) -> str:
    """The README.md of a trained model directory."""
    task, cfg, mc = result.task, result.config, result.model.cfg
    n_params = sum(p.numel() for p in result.model.parameters())
    fields: dict[str, Any] = {
        "license": "mit",
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["tui-interp", "interpretability", task.name],
        "task": task.name,
        "task_options": dict(task.options),
        "seed": cfg.seed,
        "steps": result.steps,
        "train_accuracy": round(result.train_acc, 6),
        "test_accuracy": round(result.test_acc, 6),
        "train_loss": round(result.train_loss, 6),
        "test_loss": round(result.test_loss, 6),
        "n_params": n_params,
        "size_bytes": size_bytes,
        "weights_dtype": weights_dtype,
        "model_type": task.arch,
        **(extra_fields or {}),
    }
    arch = (
        f"{mc.n_layers} layer{'s' if mc.n_layers != 1 else ''}, d_model {mc.d_model}, {mc.n_heads} heads of "
        f"{mc.d_head}, d_mlp {mc.d_mlp}, {mc.act_fn}, {mc.norm}, {mc.positional} positions, context {mc.n_ctx}, "
        f"vocabulary {mc.vocab_size}"
    )
    wd = f"weight decay {cfg.weight_decay:g}" + (" (matrices and embeddings; not biases or norms)" if cfg.weight_decay else "")
    batch = "full batch" if cfg.batch_size is None or cfg.batch_size >= len(result.data.train) else f"batch {cfg.batch_size}"
    lines = [
        front_matter(fields),
        f"# {name}",
        "",
        task.describe(),
        "",
        "## Results",
        "",
        "| split | examples | accuracy | loss |",
        "| --- | ---: | ---: | ---: |",
        f"| train | {len(result.data.train_measured):,} | {_pct(result.train_acc)} | {result.train_loss:.4f} |",
        f"| test (held out) | {len(result.data.test):,} | {_pct(result.test_acc)} | {result.test_loss:.4f} |",
        "",
        f"Accuracy: {task.accuracy_note()}. Measured by running the saved model after training "
        "(the tests re-measure it).",
        "",
    ]
    if notes:
        lines += [notes.strip(), ""]
    lines += [
        "## Data and split",
        "",
        f"{result.data.description}. Seed {cfg.seed}.",
        "",
        "## Model",
        "",
        f"HuggingFace `{task.arch}` ({arch}); {n_params:,} parameters, stored as {weights_dtype} "
        f"({_size(size_bytes)}). Loads in `tui-interp` and in `transformers` "
        "(`AutoModelForCausalLM.from_pretrained`).",
        "",
        "## Training",
        "",
        f"AdamW, lr {cfg.lr:g} ({cfg.schedule} after {cfg.warmup_steps} warm-up steps), betas {cfg.betas[0]:g}/{cfg.betas[1]:g}, "
        f"{wd}, {batch}, init N(0, {cfg.init_std:g}²)"
        + (f", gradient clipping {cfg.grad_clip:g}" if cfg.grad_clip else "")
        + f". Ran {result.steps:,} of {cfg.steps:,} steps (stopped: {result.stopped}) in "
        f"{result.seconds / 60:.1f} min on CPU.",
        "",
        "Reproduce (same machine and thread count give the same weights):",
        "",
        "```",
        command,
        "```",
        "",
    ]
    if result.history:
        lines += [
            "Accuracy during training:",
            "",
            "| step | train acc | test acc | test loss |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for ev in _pick_history(result.history):
            lines.append(f"| {ev.step:,} | {_pct(ev.train_acc)} | {_pct(ev.test_acc)} | {ev.test_loss:.4f} |")
        if cfg.eval_limit:
            lines.append("")
            lines.append(f"(during training, accuracy was measured on the first {cfg.eval_limit:,} examples of each split)")
        lines.append("")
    files = ["`config.json`, `model.safetensors`, `tokenizer.json`: the model in HuggingFace layout"]
    if theory_file:
        where = (model_path or name).rstrip("/")
        files.append(f"`{theory_file}`: the task as a theory file (`tui-interp compare {where} {where}/{theory_file}`)")
    if labels_file:
        files.append(f"`{labels_file}`: labelled components, with the measurements behind each label")
    lines += ["## Files", ""] + [f"- {f}" for f in files] + [""]
    return "\n".join(lines)
