"""Saving activation caches as safetensors files a script can open."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from tui_interp.errors import InputError
from tui_interp.fileio import atomic_write


def save_cache(
    path: Path,
    lm: Any,
    tokens: list[int],
    logits: torch.Tensor,
    cache: dict[str, torch.Tensor],
    pattern: str = "*",
    *,
    interventions: list[str] | None = None,
) -> dict[str, Any]:
    """Write the activations matching `pattern` (batch dim 1, shapes as in DESIGN.md) plus `logits`.

    The file's metadata records the model, its fingerprint and the tokens, as JSON strings.
    Written atomically (fileio.atomic_write): a failed write leaves nothing half-done.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise InputError(f"{path}: the cache file must end in .safetensors")
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    chosen = {n: t for n, t in cache.items() if fnmatch.fnmatchcase(n, pattern)}
    chosen["logits"] = logits.detach()
    for name, t in chosen.items():
        t = t.contiguous().cpu()
        # hook points that pass one tensor on (resid_post of L is resid_pre of L+1) share
        # storage; safetensors refuses shared tensors, so the second one gets its own copy
        if t.untyped_storage().data_ptr() in seen:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        tensors[name] = t
    metadata = {
        "format": "tui-interp.cache/1",
        "model": lm.checkpoint.name,
        "fingerprint": lm.checkpoint.fingerprint,
        "tokens": json.dumps(tokens),
        "dtype": str(lm.dtype).removeprefix("torch."),
        "interventions": json.dumps(interventions or []),
    }
    if not path.parent.is_dir():
        raise InputError(f"{path}: cannot write the cache: directory {path.parent} does not exist")
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata), error=InputError)
    return {"path": str(path), "n_tensors": len(tensors), "hooks": sorted(tensors)}
