"""Component ids: the names users type, label and see (`embed`, `L3.H5`, `L2.mlp`, ...).

One grammar for the whole project (labels, engine, TUI). Ids are zero-based:

    embed  pos_embed  L3  L3.attn  L3.H5  L3.mlp  L3.N1023  ln_final  unembed

Two typed values travel with them, parsed once and never re-parsed from strings:
`Step` (one step of the forward pass: embed, L3.attn, L3.mlp, unembed) and `Site` (the hook
point a component writes, with the head or neuron index into it).

`parse_component` checks syntax only; `validate_component` checks an id against a model's
shape; `resolve_components` expands ids, globs (`L*.H*`, `L2.*`) and comma-separated lists.
Components sort in forward-pass order: embed, pos_embed, L0, L0.attn, L0.H0.., L0.mlp,
L0.N0.., L1, ..., ln_final, unembed.

This module is core: it imports no face (textual, typer, rich) and no torch.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from tui_interp.errors import ComponentError

if TYPE_CHECKING:
    from tui_interp.model.config import ModelConfig

KINDS = ("embed", "pos_embed", "block", "attn", "head", "mlp", "neuron", "ln_final", "unembed")
GLOBAL_KINDS = ("embed", "pos_embed", "ln_final", "unembed")  # no layer, no index
LAYER_KINDS = ("block", "attn", "mlp")  # a layer, no index
INDEXED_KINDS = ("head", "neuron")  # a layer and an index
GLOB_CHARS = frozenset("*?[")

GRAMMAR = "embed, pos_embed, L<layer>, L<layer>.attn, L<layer>.H<head>, L<layer>.mlp, L<layer>.N<neuron>, ln_final or unembed"

# Position of each kind in the forward pass: (stage, rank within a layer).
_STAGE = {"embed": 0, "pos_embed": 1, "ln_final": 3, "unembed": 4}
_LAYER_RANK = {"block": 0, "attn": 1, "head": 2, "mlp": 3, "neuron": 4}
_SUFFIX = {"attn": ".attn", "mlp": ".mlp", "head": ".H", "neuron": ".N"}

_NUMBER = r"(?:0|[1-9][0-9]*)"
_MAX_DIGITS = 9  # no model has a billion layers, heads or neurons; longer numbers are refused before int()
_LAYER_ID = re.compile(rf"L(?P<layer>{_NUMBER})(?:\.(?:(?P<part>attn|mlp)|H(?P<head>{_NUMBER})|N(?P<neuron>{_NUMBER})))?")
_LOOSE_LAYER_ID = re.compile(r"l0*([0-9]+)(?:\.(?:(attn|mlp)|h0*([0-9]+)|n0*([0-9]+)))?")


@dataclass(frozen=True)
class Component:
    """One component of a decoder-only transformer.

    `kind` is one of KINDS; `layer` is set for block, attn, head, mlp and neuron;
    `index` is the head or neuron number. `str(c)` is the canonical id, and components
    order as the forward pass runs (not alphabetically).
    """

    kind: str
    layer: int | None = None
    index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ComponentError(f"unknown component kind {self.kind!r} (expected one of: {', '.join(KINDS)})")
        needs_layer = self.kind not in GLOBAL_KINDS
        needs_index = self.kind in INDEXED_KINDS
        _check_number(self.kind, "layer", self.layer, required=needs_layer)
        _check_number(self.kind, "index", self.index, required=needs_index)

    def __str__(self) -> str:
        if self.kind in GLOBAL_KINDS:
            return self.kind
        block = f"L{self.layer}"
        if self.kind == "block":
            return block
        suffix = _SUFFIX[self.kind]
        return f"{block}{suffix}" if self.index is None else f"{block}{suffix}{self.index}"

    @functools.cached_property
    def sort_key(self) -> tuple[int, int, int, int]:
        """A key that orders components as the forward pass runs (unique per component)."""
        if self.kind in GLOBAL_KINDS:
            return (_STAGE[self.kind], -1, -1, -1)
        layer = cast(int, self.layer)  # set for every layer kind (checked in __post_init__)
        index = -1 if self.index is None else self.index
        return (2, layer, _LAYER_RANK[self.kind], index)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Component):
            return NotImplemented
        return self.sort_key < other.sort_key

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Component):
            return NotImplemented
        return self.sort_key <= other.sort_key

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Component):
            return NotImplemented
        return self.sort_key > other.sort_key

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Component):
            return NotImplemented
        return self.sort_key >= other.sort_key

    @property
    def step(self) -> Step:
        """The step of the forward pass this component belongs to (a block: its attention step)."""
        if self.kind in ("embed", "pos_embed"):
            return Step("embed")
        if self.kind in ("ln_final", "unembed"):
            return Step("unembed")
        return Step("mlp" if self.kind in ("mlp", "neuron") else "attn", self.layer)

    @property
    def ablatable(self) -> bool:
        """Whether interventions can write this component (everything but ln_final and unembed)."""
        return self.kind not in ("ln_final", "unembed")

    def sites(self, config: ModelConfig) -> list[Site]:
        """Where this component's output lives, as hook points (checked against the model).

            embed / pos_embed   hook_embed / hook_pos_embed           [batch, pos, d_model]
            head L.Hh           blocks.L.attn.hook_z, index h        [batch, pos, head, d_head]
            attn L.attn         blocks.L.hook_attn_out               [batch, pos, d_model]
            mlp  L.mlp          blocks.L.hook_mlp_out                [batch, pos, d_model]
            neuron L.Nn         blocks.L.mlp.hook_post, index n      [batch, pos, d_mlp]
            block L             the attn and mlp outputs of layer L
        """
        validate_component(self, config)
        l = self.layer
        if self.kind == "embed":
            return [Site("hook_embed")]
        if self.kind == "pos_embed":
            return [Site("hook_pos_embed")]
        if self.kind == "head":
            return [Site(f"blocks.{l}.attn.hook_z", self.index, l)]
        if self.kind == "attn":
            return [Site(f"blocks.{l}.hook_attn_out", None, l)]
        if self.kind == "mlp":
            return [Site(f"blocks.{l}.hook_mlp_out", None, l)]
        if self.kind == "neuron":
            return [Site(f"blocks.{l}.mlp.hook_post", self.index, l)]
        if self.kind == "block":
            out = [Site(f"blocks.{l}.hook_attn_out", None, l)]
            if config.d_mlp:
                out.append(Site(f"blocks.{l}.hook_mlp_out", None, l))
            return out
        raise ComponentError(f"{self}: cannot intervene on {self.kind} (choose embed, a head, attn, mlp, neuron or block)")


@dataclass(frozen=True)
class Site:
    """A hook point a component writes, and the head or neuron `index` into it.

    The index is always dimension 2 of the activation: hook_z is [batch, pos, head, d_head],
    hook_post is [batch, pos, d_mlp]. `layer` is the block the hook lives in (None for the
    embeddings). `engine.interventions.write_site` is the one function that writes a site.
    """

    hook: str
    index: int | None = None
    layer: int | None = None


INTERVENTION_MODES = ("zero", "mean", "resample", "patch")  # what engine.interventions writes at a site
ABLATION_MODES = ("zero", "mean", "resample")

STEP_KINDS = ("embed", "attn", "mlp", "unembed")
STEP_GRAMMAR = "embed, L<layer>.attn, L<layer>.mlp or unembed, or a step number"
_STEP_ID = re.compile(rf"L(?P<layer>{_NUMBER})\.(?P<half>attn|mlp)")


@dataclass(frozen=True)
class Step:
    """One step of the forward pass: `embed`, then `L{l}.attn` and `L{l}.mlp` per layer, then
    `unembed` (2 * n_layers + 2 steps, numbered from 0)."""

    kind: str
    layer: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in STEP_KINDS:
            raise ComponentError(f"unknown step kind {self.kind!r} (expected one of: {', '.join(STEP_KINDS)})")
        _check_number(f"{self.kind} step", "layer", self.layer, required=self.kind in ("attn", "mlp"))

    def __str__(self) -> str:
        return self.kind if self.layer is None else f"L{self.layer}.{self.kind}"

    def index(self, n_layers: int) -> int:
        """The step's number in a model with `n_layers` layers."""
        if self.kind == "embed":
            return 0
        if self.kind == "unembed":
            return 2 * n_layers + 1
        if cast(int, self.layer) >= n_layers:
            raise ComponentError(f"step {self}: the model has {_count(n_layers, 'layer', 'layers')}")
        return 1 + 2 * cast(int, self.layer) + (self.kind == "mlp")

    @classmethod
    def at(cls, index: int, n_layers: int) -> Step:
        """The step numbered `index` (0-based) in a model with `n_layers` layers."""
        last = 2 * n_layers + 1
        if not 0 <= index <= last:
            raise ComponentError(f"step {index} is past the end (steps 0..{last})")
        if index == 0:
            return cls("embed")
        if index == last:
            return cls("unembed")
        return cls("attn" if index % 2 else "mlp", (index - 1) // 2)


def all_steps(n_layers: int) -> list[Step]:
    """Every step of the forward pass, in order."""
    return [Step.at(i, n_layers) for i in range(2 * n_layers + 2)]


def parse_step(text: str, n_layers: int) -> Step:
    """A step by name (`L2.mlp`) or by number (`5`), checked against the model's layers."""
    stripped = text.strip() if isinstance(text, str) else ""
    if stripped in ("embed", "unembed"):
        return Step(stripped)
    if stripped.isascii() and stripped.isdigit():
        if len(stripped) > 6:
            raise ComponentError(f"step {stripped[:12]}...: past the end (steps 0..{2 * n_layers + 1})")
        return Step.at(int(stripped), n_layers)
    match = _STEP_ID.fullmatch(stripped)
    if match is None:
        raise ComponentError(f"unknown step {stripped[:40]!r} (expected {STEP_GRAMMAR})")
    if len(match["layer"]) > 6:
        raise ComponentError(f"step {stripped[:12]}...: the model has {_count(n_layers, 'layer', 'layers')}")
    step = Step(match["half"], int(match["layer"]))
    step.index(n_layers)  # range check
    return step


def _check_number(kind: str, what: str, value: Any, *, required: bool) -> None:
    """Check that a layer or index is a non-negative int when required, and absent otherwise."""
    if not required:
        if value is not None:
            raise ComponentError(f"a {kind} component has no {what} (got {value!r})")
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ComponentError(f"a {kind} component needs a non-negative integer {what}, got {value!r}")


def is_glob(text: str) -> bool:
    """Whether `text` is a glob pattern (contains *, ? or [) rather than one id."""
    return any(ch in GLOB_CHARS for ch in text)


def parse_component(text: str) -> Component:
    """Parse one component id (syntax only; see `validate_component` for the model's shape).

    Raises ComponentError with the accepted forms, and a suggestion for near misses
    such as `l3.h5` or `L03`.
    """
    if not isinstance(text, str):
        raise ComponentError(f"a component id must be a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ComponentError("empty component id (expected " + GRAMMAR + ")")
    if is_glob(stripped):
        raise ComponentError(f"{stripped!r} is a pattern; give a single component id here")
    found = _parse_exact(stripped)
    if found is not None:
        return found
    suggestion = _suggest(stripped)
    hint = f"; did you mean {suggestion!r}?" if suggestion else f" (expected {GRAMMAR})"
    shown = stripped if len(stripped) <= 40 else stripped[:40] + "..."
    raise ComponentError(f"unknown component id {shown!r}{hint}")


def _parse_exact(text: str) -> Component | None:
    """Parse the canonical spelling, or return None."""
    if text in GLOBAL_KINDS:
        return Component(text)
    match = _LAYER_ID.fullmatch(text)
    if match is None:
        return None
    if any(len(g) > _MAX_DIGITS for g in match.groups() if g and g[0].isdigit()):
        raise ComponentError(f"component id {text[:24]}...: a layer, head or neuron number of over {_MAX_DIGITS} digits")
    layer = int(match["layer"])
    if match["part"]:
        return Component(match["part"], layer)
    if match["head"] is not None:
        return Component("head", layer, int(match["head"]))
    if match["neuron"] is not None:
        return Component("neuron", layer, int(match["neuron"]))
    return Component("block", layer)


def _suggest(text: str) -> str | None:
    """The canonical id a near miss (wrong case, leading zeros, stray spaces) stands for."""
    loose = text.lower().replace(" ", "")
    loose = {"pos_embed": "pos_embed", "posembed": "pos_embed", "lnfinal": "ln_final", "ln_f": "ln_final"}.get(loose, loose)
    if loose in GLOBAL_KINDS:
        return loose
    match = _LOOSE_LAYER_ID.fullmatch(loose)
    if match is None:
        return None
    layer, part, head, neuron = match.groups()
    if any(len(g) > _MAX_DIGITS for g in (layer, head, neuron) if g):
        return None
    if part:
        return f"L{int(layer)}.{part}"
    if head is not None:
        return f"L{int(layer)}.H{int(head)}"
    if neuron is not None:
        return f"L{int(layer)}.N{int(neuron)}"
    return f"L{int(layer)}"


def describe_shape(config: ModelConfig) -> str:
    """The component ranges of a model in words, for error messages."""
    parts = [_count(config.n_layers, "layer", "layers") + f" (L0..L{config.n_layers - 1})"]
    parts.append(_count(config.n_heads, "head", "heads") + f" per layer (H0..H{config.n_heads - 1})")
    if config.d_mlp > 0:
        parts.append(_count(config.d_mlp, "MLP neuron", "MLP neurons") + f" per layer (N0..N{config.d_mlp - 1})")
    else:
        parts.append("no MLPs")
    return ", ".join(parts)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def validate_component(c: Component, config: ModelConfig) -> Component:
    """Return `c` if the model described by `config` has it, else raise ComponentError.

    Example message: ``L9.H2: model has 2 layers (L0..L1)``.
    """
    if c.kind == "pos_embed" and config.positional != "learned":
        raise ComponentError(f"{c}: model has no learned positional embedding (it uses {config.positional} positions)")
    if c.kind in GLOBAL_KINDS:
        return c
    if cast(int, c.layer) >= config.n_layers:  # set for every layer kind (checked in __post_init__)
        raise ComponentError(f"{c}: model has {_count(config.n_layers, 'layer', 'layers')} (L0..L{config.n_layers - 1})")
    if c.kind in ("mlp", "neuron") and config.d_mlp == 0:
        raise ComponentError(f"{c}: model has no MLPs")
    if c.kind == "head" and c.index is not None and c.index >= config.n_heads:
        raise ComponentError(
            f"{c}: model has {_count(config.n_heads, 'head', 'heads')} per layer (H0..H{config.n_heads - 1})"
        )
    if c.kind == "neuron" and c.index is not None and c.index >= config.d_mlp:
        raise ComponentError(
            f"{c}: model has {_count(config.d_mlp, 'MLP neuron', 'MLP neurons')} per layer (N0..N{config.d_mlp - 1})"
        )
    return c


def _iter_components(config: ModelConfig, *, neurons: bool) -> Iterator[Component]:
    """Every component of the model, in forward-pass order."""
    yield Component("embed")
    if config.positional == "learned":
        yield Component("pos_embed")
    for layer in range(config.n_layers):
        yield Component("block", layer)
        yield Component("attn", layer)
        for head in range(config.n_heads):
            yield Component("head", layer, head)
        if config.d_mlp > 0:
            yield Component("mlp", layer)
            if neurons:
                for neuron in range(config.d_mlp):
                    yield Component("neuron", layer, neuron)
    yield Component("ln_final")
    yield Component("unembed")


def all_components(config: ModelConfig, *, neurons: bool = False) -> list[Component]:
    """Every component of the model in forward-pass order; MLP neurons only when asked."""
    return list(_iter_components(config, neurons=neurons))


def resolve_components(pattern: str, config: ModelConfig) -> list[Component]:
    """Expand an id, a glob or a comma-separated list of them into components.

    Globs match canonical ids with fnmatch (case-sensitive): `L*.H*`, `L2.*`, `*`.
    They reach MLP neurons only when the pattern says `.N` explicitly (`L0.N*`), so `*`
    does not expand to millions of neurons. The result is deduplicated and in forward-pass
    order. A part that names no component of this model raises ComponentError.
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise ComponentError("empty component pattern (expected an id such as L0.H1, a glob such as L*.H*, or a comma-separated list)")
    found: set[Component] = set()
    for part in pattern.split(","):
        part = part.strip()
        if not part:
            raise ComponentError(f"empty item in component list {pattern!r}")
        found.update(_resolve_part(part, config))
    return sorted(found)


def _resolve_part(part: str, config: ModelConfig) -> list[Component]:
    """Resolve one item of a component list: a single id or a glob."""
    if not is_glob(part):
        return [validate_component(parse_component(part), config)]
    match = _compile_glob(part)
    matched = [c for c in _iter_components(config, neurons=False) if match(str(c))]
    if ".N" in part and config.d_mlp > 0:
        matched.extend(_match_neurons(match, config))
    if not matched:
        raise ComponentError(f"{part!r} matches no component of this model ({describe_shape(config)})")
    return matched


def _compile_glob(pattern: str) -> Callable[[str], Any]:
    """A case-sensitive fnmatch predicate over component ids."""
    return re.compile(fnmatch.translate(pattern)).match


def _match_neurons(match: Callable[[str], Any], config: ModelConfig) -> Iterator[Component]:
    """MLP neurons whose id matches, building Component objects only for matches."""
    for layer in range(config.n_layers):
        for neuron in range(config.d_mlp):
            if match(f"L{layer}.N{neuron}"):
                yield Component("neuron", layer, neuron)
