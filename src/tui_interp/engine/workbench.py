"""The workbench: one model, one prompt stepped through, its interventions, labels and theory.

What the TUI works on, and nothing of the TUI: every method is a plain blocking call that the
app runs in a thread worker, and every result is a frozen dataclass of numbers and *unescaped*
strings (or an engine result such as CompareResult) that the widgets render. One call uses the
model at a time (`ModelLock`); a comparison holds it one batch at a time and hands it over to
calls waiting in between, so a step asked for during a long comparison is served at once.

Opening is split in two so the first screen shows before any weight is read: `open()` reads
the checkpoint headers (milliseconds), `load()` reads the weights. This module imports torch
only inside the methods that need it, so the TUI starts without it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_interp.components import Step, all_components, parse_component, validate_component
from tui_interp.errors import InputError, TuiInterpError
from tui_interp.fileio import atomic_write, regular_file

if TYPE_CHECKING:
    import torch

    from tui_interp.engine.ablation import Effect
    from tui_interp.engine.audit import AuditResult
    from tui_interp.engine.compare import CompareResult, Progress
    from tui_interp.engine.diff import DiffProgress, DiffResult
    from tui_interp.engine.interventions import Intervention, Reference
    from tui_interp.engine.lens import TokenScore
    from tui_interp.engine.recover import RecoverResult, SearchProgress
    from tui_interp.engine.stepper import Stepper
    from tui_interp.engine.suggest import Suggestion
    from tui_interp.labels import Label, LabelStore
    from tui_interp.model.checkpoint import Checkpoint
    from tui_interp.model.config import ModelConfig
    from tui_interp.model.loader import LoadedModel
    from tui_interp.theory import Diagnostic

TOP_K = 5  # predictions shown per position
N_NEURONS = 8  # top MLP neurons shown at an MLP step (per position) and under each MLP in the tree
LENS_K = 3  # predictions per cell of the per-position lens
MAX_THEORY_BYTES = 1_000_000
MAX_REFERENCE_PROMPTS = 4096  # lines read from a prompts file for the ablation reference
REFERENCE_KINDS = ("random", "theory", "prompts")
RECOVER_SECONDS = 30.0  # the rule search's time budget (the answers are computed before it)
DIFF_LIMIT = 4096  # a theory's inputs the diff runs on: the domain up to this size, else a seeded sample


# ---------------------------------------------------------------------------------------------
# What the faces render


@dataclass(frozen=True)
class Header:
    """The model, as the header bar shows it. device/dtype are None until the weights are loaded."""

    name: str
    architecture: str
    n_layers: int
    n_heads: int
    d_model: int
    d_mlp: int
    vocab_size: int
    n_ctx: int
    n_params: int
    size_bytes: int
    stored_dtype: str
    fingerprint: str
    has_tokenizer: bool
    device: str | None = None
    dtype: str | None = None


@dataclass(frozen=True)
class AttentionPattern:
    layer: int
    head: int
    pattern: tuple[tuple[float, ...], ...]  # [query][key]


@dataclass(frozen=True)
class Neuron:
    component: str  # "L0.N17"
    activation: float


@dataclass(frozen=True)
class StepView:
    """Everything the step view shows for one step of one prompt."""

    index: int
    step: Step
    steps: tuple[str, ...]  # every step's name, for the step bar
    prompt: str
    tokens: tuple[str, ...]  # raw token texts (escape before display)
    token_ids: tuple[int, ...]
    resid_norms: tuple[float, ...]
    lens: tuple[tuple[TokenScore, ...], ...]  # [position][k] at this depth
    prediction: tuple[TokenScore, ...]  # the model's own next-token prediction (with interventions)
    position: int  # the last position (the one the prediction is for)
    attention: AttentionPattern | None = None
    neurons: tuple[Neuron, ...] = ()  # at an MLP step: the top neurons at the last position
    neurons_at: tuple[tuple[Neuron, ...], ...] = ()  # ... and at every position: [position][k]
    effect: Effect | None = None
    interventions: tuple[str, ...] = ()
    run: int = 0  # which forward pass this is a view of: changes with the prompt or the interventions

    @property
    def name(self) -> str:
        return str(self.step)


@dataclass(frozen=True)
class DLAView:
    """Direct logit attribution of the last position's prediction, largest magnitude first."""

    target: TokenScore
    logit: float
    bias: float
    rows: tuple[tuple[str, float], ...]  # (component id, direct effect)
    interventions: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelsView:
    labels: dict[str, Label] = field(default_factory=dict)
    path: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LensView:
    """The logit lens after the embedding and after every block, at every position of the prompt
    (the clean model: interventions are not applied)."""

    prompt: str
    tokens: tuple[str, ...]
    stages: tuple[str, ...]  # "embed", "L0", ..., one per row of the lens
    rows: tuple[tuple[tuple[TokenScore, ...], ...], ...]  # [position][stage] -> top-k


@dataclass(frozen=True)
class PatchView:
    """Activation patching from the clean prompt into the corrupted one, per component and position.

    `effect[c][p]` is the normalised metric with component c patched at position p: 0 is the
    corrupted run, 1 the clean run (None where the two runs' metrics are equal)."""

    clean_prompt: str
    corrupt_prompt: str
    clean_tokens: tuple[str, ...]
    corrupt_tokens: tuple[str, ...]
    components: tuple[str, ...]
    effect: tuple[tuple[float | None, ...], ...]  # [component][position]
    target: str  # raw token text
    other: str | None
    metric: str
    clean: float
    corrupt: float


@dataclass(frozen=True)
class SplitInfo:
    name: str
    size: int
    file: str  # the file's name (not its directory)
    has_answers: bool


@dataclass(frozen=True)
class TheoryInfo:
    """What the theory panel shows about a theory that parses: its name, splits, whether it is a question."""

    name: str
    is_question: bool
    splits: tuple[SplitInfo, ...] = ()


def read_theory_file(path: str | os.PathLike[str]) -> str:
    """A theory file's text. InputError (one line) when it is missing, not a regular file,
    unreadable, too large or not UTF-8: the CLI checks `--theory` with this before the app starts."""
    p = regular_file(Path(path), "theory file", error=InputError)
    try:
        data = p.read_bytes()[: MAX_THEORY_BYTES + 1]
    except OSError as e:
        raise InputError(f"{p}: cannot read the theory file: {e.strerror or e}") from e
    if len(data) > MAX_THEORY_BYTES:
        raise InputError(f"{p}: the theory file is larger than {MAX_THEORY_BYTES:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: the theory file is not UTF-8 text (byte {e.start})") from e


def read_prompts_file(path: str | os.PathLike[str]) -> list[str]:
    """Prompts, one per line (blank lines skipped); a JSONL line may be {"prompt": ...} or a string."""
    import json

    p = regular_file(Path(path).expanduser(), "prompts file", error=InputError)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read the prompts file: {e}") from e
    prompts: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if p.suffix == ".jsonl":
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{p}:{n}: not JSON ({e.msg})") from None
            doc = doc.get("prompt") if isinstance(doc, dict) else doc
            if not isinstance(doc, str):
                raise InputError(f"{p}:{n}: expected a string or an object with a \"prompt\" string")
            line = doc
        prompts.append(line)
        if len(prompts) > MAX_REFERENCE_PROMPTS:
            raise InputError(f"{p}: more than {MAX_REFERENCE_PROMPTS:,} prompts")
    if not prompts:
        raise InputError(f"{p}: no prompts in the file")
    return prompts


def component_tree(config: ModelConfig) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """The component tree the TUI shows: [(top id, [(child id, [grandchild ids])])].

    embed, (pos_embed), L0 -> (L0.attn -> L0.H0.., L0.mlp), ..., unembed.
    """
    tree: list[tuple[str, list[tuple[str, list[str]]]]] = []
    blocks: dict[int, list[tuple[str, list[str]]]] = {}
    for c in all_components(config):
        if c.kind in ("embed", "pos_embed", "unembed"):
            tree.append((str(c), []))
        elif c.kind == "block":
            blocks[c.layer] = []  # type: ignore[index]
            tree.append((str(c), blocks[c.layer]))  # type: ignore[index]
        elif c.kind in ("attn", "mlp"):
            blocks[c.layer].append((str(c), []))  # type: ignore[index]
        elif c.kind == "head":
            blocks[c.layer][-1][1].append(str(c))  # type: ignore[index]
    return tree


def step_of(component: str) -> Step:
    """The step a component belongs to (where selecting it takes the step view)."""
    return parse_component(component).step


def can_ablate(component: str | None) -> bool:
    if not component:
        return False
    try:
        return parse_component(component).ablatable
    except TuiInterpError:
        return False


# ---------------------------------------------------------------------------------------------


class ModelLock:
    """The model, used by one call at a time, handed over fairly between a long job and short calls.

    Short calls take it with `hold()`. A long job (a comparison) holds it one batch at a time
    and calls `let_waiters_in()` between batches: that returns once every call that was
    waiting has taken the lock, so the job cannot grab it again ahead of them.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._state = threading.Condition()
        self._waiting = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._state:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._state:
                self._waiting -= 1
                self._state.notify_all()
        try:
            yield
        finally:
            self._lock.release()

    def let_waiters_in(self, timeout: float = 2.0) -> None:
        """Wait (at most `timeout` s) until no call is waiting for the model."""
        with self._state:
            self._state.wait_for(lambda: self._waiting == 0, timeout)


class Workbench:
    """The faces' one handle on a model. Thread-safe: calls that touch the model take its lock."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | Checkpoint,
        *,
        theory_path: str | os.PathLike[str] | None = None,
        labels_path: str | os.PathLike[str] | None = None,
        device: str = "auto",
        dtype: str = "auto",
    ) -> None:
        from tui_interp.model.checkpoint import Checkpoint

        self.checkpoint: Checkpoint | None = model_path if isinstance(model_path, Checkpoint) else None
        self.model_path = Path(self.checkpoint.path if self.checkpoint else model_path)  # type: ignore[arg-type]
        self.theory_path = Path(theory_path) if theory_path is not None else None
        self.labels_path = Path(labels_path) if labels_path is not None else None
        self.device = device
        self.dtype = dtype
        self.lm: LoadedModel | None = None
        self.store: LabelStore | None = None
        self.prompt = ""
        self.lock = ModelLock()
        self._clean: Stepper | None = None  # the prompt without interventions
        self._live: Stepper | None = None  # with the interventions (the clean one when there are none)
        self._interventions: list[Intervention] = []  # prepared
        self._heads: dict[int, int] = {}  # layer -> the head last focused in it
        self._reference: Reference | None = None
        self._reference_choice: tuple[str, str | None, Any] = ("random", None, None)  # kind, file/theory name, prompts or theory
        self._lens: dict[int, tuple[tuple[TokenScore, ...], ...]] = {}  # step -> logit lens (of _live)
        self._run = 0  # counts the forward passes (_live) this workbench has had

    # ---- opening

    @property
    def loaded(self) -> bool:
        return self.lm is not None

    @property
    def has_prompt(self) -> bool:
        return self._live is not None

    def open(self) -> Header:
        """Read the checkpoint's headers (no weights) and bind the label store to it."""
        from tui_interp.labels import LabelStore
        from tui_interp.model.checkpoint import open_checkpoint

        if self.checkpoint is None:
            self.checkpoint = open_checkpoint(self.model_path)
        if self.store is None:
            self.store = LabelStore.for_checkpoint(self.checkpoint, self.labels_path)
        return self.header()

    def header(self) -> Header:
        ckpt = self._need_checkpoint()
        cfg = ckpt.config
        device = dtype = None
        if self.lm is not None:
            device = str(self.lm.device)
            dtype = str(self.lm.dtype).removeprefix("torch.")
        return Header(
            name=ckpt.name,
            architecture=cfg.architecture,
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            d_model=cfg.d_model,
            d_mlp=cfg.d_mlp,
            vocab_size=cfg.vocab_size,
            n_ctx=cfg.n_ctx,
            n_params=ckpt.n_params,
            size_bytes=ckpt.size_bytes,
            stored_dtype=ckpt.dtype,
            fingerprint=ckpt.fingerprint,
            has_tokenizer=ckpt.tokenizer_path is not None,
            device=device,
            dtype=dtype,
        )

    def load(self) -> Header:
        """Read the weights onto the device (slow: run in a worker)."""
        from tui_interp.model.loader import load_model

        ckpt = self._need_checkpoint()
        with self.lock.hold():
            if self.lm is None:
                self.lm = load_model(ckpt, device=self.device, dtype=self.dtype)
        return self.header()

    @property
    def config(self) -> ModelConfig:
        return self._need_checkpoint().config

    def components(self) -> list[tuple[str, list[tuple[str, list[str]]]]]:
        return component_tree(self.config)

    # ---- labels

    def read_labels(self) -> LabelsView:
        snap = self._need_store().read()
        return LabelsView({str(l.component): l for l in snap.labels}, str(snap.path), tuple(snap.warnings))

    def save_label(self, component: str, name: str, *, note: str = "", tags: Sequence[str] = ()) -> LabelsView:
        """Label a component (replacing its name, note and tags); written to disk at once."""
        change = self._need_store().add(component, name, note=note, tags=tags, replace_all=True)
        snap = change.snapshot
        return LabelsView({str(l.component): l for l in snap.labels}, str(snap.path), tuple(change.warnings))

    def suggest_labels(self, theory_text: str | None = None) -> tuple[Suggestion, ...]:
        """Head labels suggested from attention patterns (on the theory's prompts when it parses)."""
        from tui_interp.engine.suggest import suggest_head_labels

        theory = self._parse_quietly(theory_text)
        with self.lock.hold():
            found = suggest_head_labels(self._need_model(), theory)
        return tuple(found)

    def accept_suggestion(self, suggestion: Suggestion) -> LabelsView:
        """Label the suggestion's head with its name, tagged `suggested`, the score as evidence."""
        evidence = suggestion.evidence(f"tui-interp suggest {self._need_checkpoint().path}")
        change = self._need_store().add(suggestion.component, suggestion.name, tags=["suggested"], evidence=[evidence])
        snap = change.snapshot
        return LabelsView({str(l.component): l for l in snap.labels}, str(snap.path), tuple(change.warnings))

    def remove_label(self, component: str) -> LabelsView:
        snap = self._need_store().remove(component).snapshot
        return LabelsView({str(l.component): l for l in snap.labels}, str(snap.path), tuple(snap.warnings))

    # ---- prompt and steps

    def encode(self, text: str) -> list[int]:
        """Prompt text -> token ids; without a tokenizer, the text is a list of ids ("1, 2, 3")."""
        from tui_interp.model.tokenizer import parse_token_ids

        lm = self._need_model()
        if lm.tokenizer is None:
            try:
                return parse_token_ids(text)
            except InputError as e:
                raise InputError(f"this model has no tokenizer.json: type token ids, e.g. 1, 2, 3 ({e})") from None
        return lm.tokenizer.encode(text)

    def set_prompt(self, text: str, *, focus: str | None = None) -> StepView:
        """Tokenise and run `text`; the view shows step 0 (embed). Interventions are kept."""
        import torch

        from tui_interp.engine.stepper import Stepper

        if not text.strip():
            raise InputError("type a prompt first")
        lm = self._need_model()
        ids = self.encode(text)
        if not ids:
            raise InputError("the prompt has no tokens")
        with self.lock.hold():
            tokens = torch.tensor([ids], dtype=torch.long, device=lm.device)  # [1, pos]
            clean = Stepper(lm.model, tokens)
            clean.run_to_end()
            live = clean
            interventions = self._interventions
            if interventions:
                interventions = self._prepare(interventions, tokens)
                live = Stepper(lm.model, tokens)
                live.set_interventions(interventions)
                live.run_to_end()
            self._clean, self._live, self._interventions = clean, live, list(interventions)
            self._lens.clear()
            self._run += 1
            self.prompt = text
            clean.goto(0)
            live.goto(0)
            return self._view(focus)

    @property
    def index(self) -> int | None:
        """The step on view (None before a prompt)."""
        return self._live.index if self._live is not None else None

    def move(self, delta: int | None = None, *, to: int | str | Step | None = None, focus: str | None = None) -> StepView:
        """Step by `delta` (clamped to the pass) or go to a step by index, name or Step."""
        return self.walk([delta or 0] if to is None else [to], focus=focus)

    def walk(self, moves: Sequence[int | str | Step], *, focus: str | None = None) -> StepView:
        """Several moves computed as one: each an int (a step forward or back, clamped to the
        pass, as if pressed one at a time) or a step to go to (index as str, name or Step).
        Three presses of `n` are `walk([1, 1, 1])`: one view, three steps ahead."""
        with self.lock.hold():
            live = self._need_stepper()
            last = len(live.steps) - 1
            i = live.index
            for m in moves:
                if isinstance(m, int):
                    i = max(0, min(last, i + m))
                else:
                    i = live.resolve_step(m)
            live.goto(i)
            if self._clean is not live and self._clean is not None:
                self._clean.goto(i)
            return self._view(focus)

    def view(self, focus: str | None = None) -> StepView:
        with self.lock.hold():
            self._need_stepper()
            return self._view(focus)

    def _view(self, focus: str | None) -> StepView:
        live, lm = self._need_stepper(), self._need_model()
        cfg = lm.model.cfg
        state = live.state
        ids = [int(t) for t in live.tokens[0].tolist()]
        norms = tuple(float(x) for x in live.resid_norms().tolist())
        lens = self._lens_at(state.index)
        final = live.goto(len(live.steps) - 1).logits
        live.goto(state.index)
        prediction = self._top(final[0, -1])  # type: ignore[index]
        if focus:
            try:
                c = parse_component(focus)
            except TuiInterpError:
                c = None
            if c is not None and c.kind == "head":
                self._heads[c.layer] = c.index  # type: ignore[index]
        step = state.step
        attention = None
        neurons: tuple[Neuron, ...] = ()
        neurons_at: tuple[tuple[Neuron, ...], ...] = ()
        if step.kind == "attn":
            layer = step.layer
            head = self._heads.get(layer, 0)  # type: ignore[arg-type]
            pattern = live.attention(layer, head)  # type: ignore[arg-type]
            attention = AttentionPattern(layer, head, tuple(tuple(float(v) for v in row) for row in pattern.float().tolist()))  # type: ignore[arg-type]
        elif step.kind == "mlp" and cfg.d_mlp > 0:
            neurons_at = self._neurons_at(step.layer)  # type: ignore[arg-type]
            neurons = neurons_at[-1]
        return StepView(
            index=state.index,
            step=step,
            steps=tuple(str(s) for s in live.steps),
            prompt=self.prompt,
            tokens=tuple(lm.token_text(t) for t in ids),
            token_ids=tuple(ids),
            resid_norms=norms,
            lens=lens,
            prediction=prediction,
            position=len(ids) - 1,
            attention=attention,
            neurons=neurons,
            neurons_at=neurons_at,
            effect=self._effect(final) if self._interventions else None,  # type: ignore[arg-type]
            interventions=self.interventions,
            run=self._run,
        )

    def _mlp_post(self, layer: int) -> torch.Tensor | None:
        """The MLP activations of `layer` on the live run: [pos, d_mlp] (None without an MLP)."""
        live = self._need_stepper()
        current = live.index
        state = live.goto(Step("mlp", layer))
        live.goto(current)
        post = state.cache.get(f"blocks.{layer}.mlp.hook_post")
        return None if post is None else post[0].float()

    def _neurons_at(self, layer: int) -> tuple[tuple[Neuron, ...], ...]:
        """The top N_NEURONS neurons of `layer` at each position: [pos][k]."""
        import torch

        post = self._mlp_post(layer)
        if post is None:
            return ()
        values, ids = torch.topk(post, min(N_NEURONS, post.shape[-1]), dim=-1)  # [pos, k]
        return tuple(
            tuple(Neuron(f"L{layer}.N{n}", v) for n, v in zip(row_ids, row_values, strict=True))
            for row_ids, row_values in zip(ids.tolist(), values.tolist(), strict=True)
        )

    def top_neurons(self, layer: int, k: int = N_NEURONS) -> tuple[Neuron, ...]:
        """The k neurons of `layer` with the largest activation anywhere in the prompt (the
        component tree lists them under the MLP), largest first; () before a prompt."""
        import torch

        with self.lock.hold():
            if self._live is None:
                return ()
            validate_component(parse_component(f"L{layer}.mlp"), self.config)
            post = self._mlp_post(layer)
            if post is None:
                return ()
            peak = post.max(dim=0).values  # [d_mlp]
            values, ids = torch.topk(peak, min(k, peak.shape[0]))
            return tuple(Neuron(f"L{layer}.N{n}", v) for n, v in zip(ids.tolist(), values.tolist(), strict=True))

    def _lens_at(self, index: int) -> tuple[tuple[TokenScore, ...], ...]:
        """The logit lens after step `index` at every position (cached: it is most of a step's cost)."""
        lens = self._lens.get(index)
        if lens is None:
            live = self._need_stepper()
            current = live.index
            live.goto(index)
            lens = tuple(tuple(row) for row in live.lens(TOP_K, names=self._need_model().token_text))
            live.goto(current)
            self._lens[index] = lens
        return lens

    def prefetch(self, cancelled: Callable[[], bool] = lambda: False) -> int:
        """Compute the logit lens of every step ahead of time, one step per hold of the model,
        so that stepping costs only the drawing. Stops when cancelled or when the prompt or the
        interventions change. Returns how many steps it computed."""
        done = 0
        live = self._live
        if live is None:
            return 0
        order = list(range(live.index + 1, len(live.steps))) + list(range(0, live.index + 1))
        for index in order:
            if cancelled() or self._live is not live:
                break
            with self.lock.hold():
                if self._live is not live or index in self._lens:
                    continue
                self._lens_at(index)
                done += 1
            self.lock.let_waiters_in()
        return done

    def _effect(self, patched_logits: torch.Tensor) -> Effect:
        from tui_interp.engine.ablation import effect

        clean = self._need_clean()
        clean_logits = clean.goto(len(clean.steps) - 1).logits
        clean.goto(self._need_stepper().index)
        return effect(clean_logits[0, -1], patched_logits[0, -1], interventions=self._interventions, names=self.lm, k=TOP_K,  # type: ignore[index]
                      reference=self.reference_description if self._needs_reference() else None)

    def _top(self, logits: torch.Tensor) -> tuple[TokenScore, ...]:
        from tui_interp.engine.lens import top_k

        return tuple(top_k(logits, TOP_K, self._need_model().token_text))

    # ---- interventions

    @property
    def interventions(self) -> tuple[str, ...]:
        return tuple(str(iv) for iv in self._interventions)

    def ablate(self, component: str, mode: str = "zero", *, focus: str | None = None) -> StepView:
        """Add an ablation of `component` (replacing one already on it) and recompute from there."""
        from tui_interp.components import ABLATION_MODES
        from tui_interp.engine.interventions import Intervention

        if mode not in ABLATION_MODES:
            raise InputError(f"unknown ablation mode {mode!r} (choose {', '.join(ABLATION_MODES)})")
        cfg = self.config
        c = validate_component(parse_component(component), cfg)
        c.sites(cfg)  # raises a ComponentError for ln_final, unembed
        kept = [iv for iv in self._interventions if iv.component != c]
        return self._set_interventions([*kept, Intervention(c, mode)], focus)

    def remove_intervention(self, index: int, *, focus: str | None = None) -> StepView:
        if not 0 <= index < len(self._interventions):
            raise InputError(f"no intervention #{index + 1}")
        kept = [iv for i, iv in enumerate(self._interventions) if i != index]
        return self._set_interventions(kept, focus)

    def clear_interventions(self, *, focus: str | None = None) -> StepView:
        return self._set_interventions([], focus)

    def _set_interventions(self, interventions: list[Intervention], focus: str | None) -> StepView:
        from tui_interp.engine.stepper import Stepper

        with self.lock.hold():
            live, clean = self._need_stepper(), self._need_clean()
            index = live.index
            prepared = self._prepare(interventions, live.tokens)
            if prepared:
                new = Stepper(self._need_model().model, live.tokens) if live is clean else live
                new.set_interventions(prepared)
            else:
                new = clean
            new.run_to_end()
            new.goto(index)
            clean.goto(index)
            self._live, self._interventions = new, list(prepared)
            self._lens.clear()
            self._run += 1
            return self._view(focus)

    def _needs_reference(self) -> bool:
        return any(iv.mode in ("mean", "resample") for iv in self._interventions)

    @property
    def reference_description(self) -> str:
        """What mean and resample ablation average over or draw from, in words."""
        kind, name, _ = self._reference_choice
        if self._reference is not None:
            return self._reference.description
        if kind == "theory":
            return f"inputs of theory {name!r}"
        if kind == "prompts":
            return f"the prompts of {name}"
        return "random token sequences of the prompt's length"

    def set_reference(
        self,
        kind: str,
        *,
        theory_text: str | None = None,
        prompts_path: str | os.PathLike[str] | None = None,
        focus: str | None = None,
    ) -> tuple[str, StepView | None]:
        """Choose what mean and resample ablation use: "random" token sequences (seeded, of the
        prompt's length), the "theory"'s inputs (seeded sample), or the "prompts" of a file (one
        per line, or JSONL). Interventions in force are recomputed with it. Returns the
        reference in words and the new view (None before a prompt)."""
        from tui_interp.theory import parse_theory

        if kind not in REFERENCE_KINDS:
            raise InputError(f"unknown reference {kind!r} (choose {', '.join(REFERENCE_KINDS)})")
        choice: tuple[str, str | None, Any] = ("random", None, None)
        if kind == "theory":
            if not theory_text or not theory_text.strip():
                raise InputError("no theory to take inputs from: write or open one (t)")
            theory = parse_theory(theory_text, self._theory_file())
            choice = ("theory", theory.name, theory)
        elif kind == "prompts":
            if prompts_path is None or not str(prompts_path).strip():
                raise InputError("give a prompts file (one prompt per line, or JSONL)")
            prompts = read_prompts_file(prompts_path)
            if self.lm is not None:
                self.lm.need_tokenizer()
            choice = ("prompts", Path(prompts_path).name, prompts)
        with self.lock.hold():
            old = (self._reference_choice, self._reference)
            self._reference_choice, self._reference = choice, None
            if self.lm is not None and choice[0] != "random":  # random ones are drawn at the prompt's length, when needed
                try:
                    self._reference = self._build_reference(1)
                except TuiInterpError:
                    self._reference_choice, self._reference = old
                    raise
            view = None
            if self._live is not None:
                view = self._set_interventions(list(self._interventions), focus) if self._needs_reference() else self._view(focus)
            return self.reference_description, view

    def _build_reference(self, length: int) -> Reference:
        from tui_interp.engine.interventions import reference_batch

        kind, _, data = self._reference_choice
        lm = self._need_model()
        if kind == "theory":
            return reference_batch(lm, length, theory=data)
        if kind == "prompts":
            return reference_batch(lm, length, prompts=data)
        return reference_batch(lm, length)

    def _prepare(self, interventions: list[Intervention], tokens: torch.Tensor) -> list[Intervention]:
        """Fill in mean/resample values from the reference set (by default seeded random prompts
        of the prompt's length; see `set_reference`); resample values depend on the prompt, so
        they are redrawn for each."""
        from tui_interp.engine.interventions import Intervention, prepare

        if not any(iv.mode in ("mean", "resample") for iv in interventions):
            return interventions
        lm = self._need_model()
        length = tokens.shape[1]
        random = self._reference_choice[0] == "random"
        if self._reference is None or (random and self._reference.of_length(length) is None):
            self._reference = self._build_reference(length)
        if any(iv.mode == "resample" for iv in interventions) and self._reference.of_length(length) is None:
            raise InputError(
                f"resample draws a reference input of the prompt's length ({length} tokens), and "
                f"{self._reference.description} has none: choose another reference or use mean"
            )
        fresh = [Intervention(iv.component, iv.mode, iv.positions) if iv.mode in ("mean", "resample") else iv for iv in interventions]
        return prepare(fresh, lm.model, reference=self._reference, length=length)

    # ---- attribution

    def dla(self, target: int | None = None) -> DLAView:
        """Direct logit attribution of the last position's prediction (the top token by default)."""
        from tui_interp.engine.lens import direct_logit_attribution, score

        with self.lock.hold():
            live = self._need_stepper()
            index = live.index
            final = live.goto(len(live.steps) - 1)
            cache = live.full_cache()
            live.goto(index)
            row = final.logits[0, -1].float()  # type: ignore[index]
            if target is None:
                target = int(row.argmax())
            result = direct_logit_attribution(self._need_model().model, cache, target)
        rows = sorted(result.contributions.items(), key=lambda kv: -abs(kv[1]))
        return DLAView(score(row, target, self._need_model().token_text), result.logit, result.bias, tuple(rows), self.interventions)

    # ---- the per-position lens and activation patching

    def lens_table(self, k: int = LENS_K) -> LensView:
        """The logit lens after the embedding and every block at each position of the prompt."""
        from tui_interp.engine.lens import lens_report

        with self.lock.hold():
            live, lm = self._need_stepper(), self._need_model()
            ids = [int(t) for t in live.tokens[0].tolist()]
            report = lens_report(lm, ids, k=k)
        stages = tuple(r.label for r in report.rows[0]) if report.rows else ()
        rows = tuple(tuple(tuple(r.top) for r in row) for row in report.rows)
        return LensView(self.prompt, tuple(lm.token_text(i) for i in ids), stages, rows)

    def patch(
        self,
        corrupt: str,
        *,
        clean: str | None = None,
        target: str | None = None,
        other: str | None = None,
        components: str = "L*.H*,L*.mlp",
    ) -> PatchView:
        """Patch each component at each position from the clean prompt (default: the prompt on
        view) into the corrupted one. Target: a token (or #id), default the clean run's top
        token; other: default the corrupted run's top token when it differs."""
        from tui_interp.engine.patching import patch_prompts

        clean_text = self.prompt if clean is None else clean
        if not clean_text.strip():
            raise InputError("type a prompt first: it is the clean prompt")
        if not corrupt.strip():
            raise InputError("give a corrupted prompt of the same length in tokens")
        lm = self._need_model()
        clean_ids, corrupt_ids = self.encode(clean_text), self.encode(corrupt)
        with self.lock.hold():
            report = patch_prompts(lm, clean_ids, corrupt_ids, target=target or None, other=other or None,
                                   components=components, per_position=True)
        r = report.result
        effect = tuple(tuple(None if v != v else float(v) for v in row) for row in r.effect.tolist())
        return PatchView(
            clean_prompt=clean_text,
            corrupt_prompt=corrupt,
            clean_tokens=tuple(lm.token_text(i) for i in clean_ids),
            corrupt_tokens=tuple(lm.token_text(i) for i in corrupt_ids),
            components=tuple(r.components),
            effect=effect,
            target=lm.token_text(r.target),
            other=None if r.other is None else lm.token_text(r.other),
            metric=report.metric,
            clean=r.clean,
            corrupt=r.corrupt,
        )

    # ---- theory

    def read_theory(self) -> str:
        """The theory file's text ('' when no file was given or it does not exist yet: a new theory)."""
        if self.theory_path is None or not self.theory_path.exists():
            return ""
        return read_theory_file(self.theory_path)

    def save_theory(self, text: str, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the theory to `path` (or the file it was opened from), atomically."""
        target = Path(path) if path is not None else self.theory_path
        if target is None:
            raise InputError("no theory file yet: give a file name to save to")
        target = target.expanduser()
        atomic_write(target, text, error=InputError)
        self.theory_path = target
        return target

    def _theory_file(self) -> str | None:
        return str(self.theory_path) if self.theory_path is not None else None

    def _parse_quietly(self, text: str | None) -> Any:
        """The theory if `text` parses, else None (an unfinished theory in the editor)."""
        from tui_interp.theory import parse_theory

        if not text or not text.strip():
            return None
        try:
            return parse_theory(text, self._theory_file())
        except TuiInterpError:
            return None

    def example_prompt(self, text: str) -> str | None:
        """A prompt the theory would ask the model (one input from its domain), or None."""
        theory = self._parse_quietly(text)
        if theory is None:
            return None
        try:
            inputs = theory.domain.sample(1, seed=0)
            return theory.render_prompt(inputs[0]) if inputs else None
        except TuiInterpError:
            return None

    def check_theory(self, text: str) -> list[Diagnostic]:
        from tui_interp.theory import check_theory

        return check_theory(text, self._theory_file())  # split files are found beside the theory

    def theory_info(self, text: str) -> TheoryInfo | None:
        """The theory's name, splits (with their sizes) and whether it is a question; None when
        it does not parse."""
        theory = self._parse_quietly(text)
        if theory is None:
            return None
        splits = tuple(SplitInfo(s.name, s.size, Path(s.path).name, s.has_answers) for s in theory.splits)
        return TheoryInfo(theory.name, theory.is_question, splits)

    def compare(
        self,
        text: str,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        limit: int | None = None,
        seed: int = 0,
    ) -> CompareResult | None:
        """Compare the theory with the model over its domain; None when cancelled.

        The model is held one batch at a time, so steps asked for meanwhile are served
        between batches instead of waiting for the whole comparison."""
        from tui_interp.engine.compare import CompareResult, iter_compare
        from tui_interp.theory import parse_theory

        theory = parse_theory(text, self._theory_file())
        lm = self._need_model()
        options: dict[str, Any] = {"seed": seed, "cancel": cancelled or (lambda: False), "labels": self.store}
        if limit is not None:
            options["limit"] = limit
        return self._drive(iter_compare(lm, theory, **options), CompareResult, [self], progress=progress)

    # ---- discovery: recover, audit, diff (each a long job: the model is held one event at a time)

    def _drive(self, events: Iterator[Any], result_type: type, holders: Sequence[Workbench], *,
               progress: Callable[[Any], None] | None, uses_model: Callable[[Any], bool] = lambda _: True) -> Any:
        """Run an engine iterator to its result (None when cancelled), holding the models of
        `holders` for each event while `uses_model(last event)` says the next one needs them,
        and letting calls waiting for them (a step) in between."""
        from contextlib import ExitStack

        from tui_interp.engine.answers import Cancelled

        hold = True
        while True:
            try:
                if hold:
                    with ExitStack() as stack:
                        for wb in holders:  # always in the order A, then the others: no deadlock
                            stack.enter_context(wb.lock.hold())
                        event = next(events)
                    for wb in holders:
                        wb.lock.let_waiters_in()
                else:
                    event = next(events)
            except StopIteration:
                raise InputError("internal: the run ended without a result") from None
            except Cancelled:
                return None
            if isinstance(event, result_type):
                return event
            hold = uses_model(event)
            if progress is not None:
                progress(event)

    def recover(
        self,
        text: str,
        *,
        progress: Callable[[Progress | SearchProgress], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        seconds: float = RECOVER_SECONDS,
    ) -> RecoverResult | None:
        """Search the theory language for the `expect` the model computes on the theory's (or
        question's) domain: the model answers every input, then the search runs (without the
        model: steps asked for meanwhile are served at once). An `expect` in the text is
        ignored. None when cancelled."""
        from tui_interp.engine.recover import RecoverResult, SearchProgress, iter_recover
        from tui_interp.theory import parse_theory

        theory = parse_theory(text, self._theory_file())
        events = iter_recover(self._need_model(), theory, seconds=seconds, cancel=cancelled or (lambda: False))
        return self._drive(events, RecoverResult, [self], progress=progress,
                           uses_model=lambda event: not isinstance(event, SearchProgress))

    @staticmethod
    def with_expect(text: str, expect: str) -> str:
        """The theory text with `expect EXPR` replacing its expect line (or after its prompt line)."""
        from tui_interp.engine.recover import with_expect

        return with_expect(text, expect)

    @property
    def name(self) -> str:
        """The model's name (its directory's), as the audit and the diff call it."""
        return self._need_checkpoint().name

    def audit(
        self,
        text: str,
        peers: Sequence[Workbench] = (),
        *,
        progress: Callable[[Progress], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> AuditResult | None:
        """Which of this model and `peers` (loaded) generalise beyond the theory's train split,
        with the evidence; no answer outside the train split is read. The train set's rule is
        searched first, without any model held. None when cancelled."""
        from tui_interp.engine.answers import Cancelled
        from tui_interp.engine.audit import AuditResult, as_question, iter_audit, train_rule, train_set
        from tui_interp.engine.compare import Progress
        from tui_interp.theory import parse_theory

        cancel = cancelled or (lambda: False)
        question = as_question(parse_theory(text, self._theory_file()))
        train = train_set(question)  # InputError (one line) without a train split with answers
        holders = [self, *peers]
        names = [wb.name for wb in holders]
        if len(set(names)) < len(names):
            names = [str(wb.model_path) for wb in holders]
        models = [(name, wb._need_model()) for name, wb in zip(names, holders, strict=True)]
        if progress is not None:
            progress(Progress("rule", 0, 1))
        try:
            rule = train_rule(question, train, cancel)
        except Cancelled:
            return None
        events = iter_audit(models, question, cancel=cancel, rule_search=lambda *_: rule)
        return self._drive(events, AuditResult, holders, progress=progress)

    def diff(
        self,
        other: Workbench,
        text: str | None = None,
        *,
        progress: Callable[[DiffProgress], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        limit: int = DIFF_LIMIT,
    ) -> DiffResult | None:
        """Which components behave differently in `other` (B, same architecture, loaded) than
        in this model (A): on the theory's inputs when `text` parses, else on seeded random
        token sequences. None when cancelled."""
        from tui_interp.engine.diff import DiffResult, iter_diff

        theory = self._parse_quietly(text)
        events = iter_diff(self._need_model(), other._need_model(), theory=theory, limit=limit,
                           cancel=cancelled or (lambda: False))
        return self._drive(events, DiffResult, [self, other], progress=progress)

    def check_compatible(self, other: Workbench) -> None:
        """ConfigError naming what differs when `other` (opened) is not this architecture with
        these shapes, TokenizerError when the tokenizers differ (headers and tokenizer files only)."""
        from tui_interp.engine.diff import check_compatible

        check_compatible(self._need_checkpoint(), other._need_checkpoint())

    def follow(self, prompt: str, index: int, *, focus: str | None = None) -> StepView:
        """This model on `prompt` at step `index`: B of a diff, kept at A's prompt and step."""
        if prompt != self.prompt or self._live is None:
            self.set_prompt(prompt, focus=focus)
        return self.walk([str(index)], focus=focus)

    # ---- helpers

    def _need_checkpoint(self) -> Checkpoint:
        if self.checkpoint is None:
            raise InputError("the model is not open yet")
        return self.checkpoint

    def _need_store(self) -> LabelStore:
        if self.store is None:
            self.open()
        if self.store is None:
            raise InputError("the label store is not open")
        return self.store

    def _need_model(self) -> LoadedModel:
        if self.lm is None:
            raise InputError("the model is still loading")
        return self.lm

    def _need_stepper(self) -> Stepper:
        if self._live is None:
            raise InputError("type a prompt first")
        return self._live

    def _need_clean(self) -> Stepper:
        if self._clean is None:
            raise InputError("type a prompt first")
        return self._clean


__all__ = [
    "DIFF_LIMIT",
    "RECOVER_SECONDS",
    "REFERENCE_KINDS",
    "AttentionPattern",
    "DLAView",
    "Header",
    "LabelsView",
    "LensView",
    "ModelLock",
    "Neuron",
    "PatchView",
    "SplitInfo",
    "StepView",
    "TheoryInfo",
    "Workbench",
    "can_ablate",
    "component_tree",
    "read_prompts_file",
    "read_theory_file",
    "step_of",
]
