"""What the TUI works on: one model, one prompt stepped through, its interventions, labels and theory.

UI-free (no textual, no rich): every method is a plain blocking call that the app runs in a
thread worker, and every result is a frozen dataclass of numbers and *unescaped* strings that the
widgets render. The model is used by one call at a time (a lock), so a comparison running in
one worker and a step requested from another never see each other's hooks.

Opening is split in two so the first screen shows before any weight is read:
`open()` reads the checkpoint headers (milliseconds), `load()` reads the weights.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_interp.components import Component, all_components, parse_component, validate_component
from tui_interp.errors import InputError, TuiInterpError

if TYPE_CHECKING:
    import torch

    from tui_interp.engine.suggest import Suggestion

    from tui_interp.labels import Label, LabelStore
    from tui_interp.model.checkpoint import Checkpoint
    from tui_interp.model.loader import LoadedModel
    from tui_interp.theory import Diagnostic

TOP_K = 5  # predictions shown per position
N_NEURONS = 8  # top MLP neurons shown at an MLP step
ABLATION_MODES = ("zero", "mean", "resample")
MEAN_REFERENCE_SIZE = 64  # random prompts the mean/resample ablation averages over


# ---------------------------------------------------------------------------------------------
# What the widgets render


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
class Prediction:
    token: str  # raw token text (escape before display)
    id: int
    prob: float
    logit: float


@dataclass(frozen=True)
class Attention:
    layer: int
    head: int
    pattern: tuple[tuple[float, ...], ...]  # [query][key]


@dataclass(frozen=True)
class Neuron:
    component: str  # "L0.N17"
    activation: float


@dataclass(frozen=True)
class Effect:
    """What the interventions did to the next-token prediction at the last position."""

    interventions: tuple[str, ...]
    clean: tuple[Prediction, ...]
    patched: tuple[Prediction, ...]
    target: Prediction  # the clean top prediction, followed through the intervention
    target_patched: Prediction
    logit_diff: float  # patched logit - clean logit of target
    prob_diff: float


@dataclass(frozen=True)
class StepView:
    """Everything the step view shows for one step of one prompt."""

    index: int
    name: str
    steps: tuple[str, ...]
    prompt: str
    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    resid_norms: tuple[float, ...]
    lens: tuple[tuple[Prediction, ...], ...]  # [position][k] at this depth
    prediction: tuple[Prediction, ...]  # the model's own next-token prediction (with interventions)
    position: int  # the position neurons are shown for (the last)
    attention: Attention | None = None
    neurons: tuple[Neuron, ...] = ()
    effect: Effect | None = None
    interventions: tuple[str, ...] = ()
    run: int = 0  # which forward pass this is a view of: changes with the prompt or the interventions

    @property
    def kind(self) -> str:
        if self.name in ("embed", "unembed"):
            return self.name
        return self.name.split(".")[1]

    @property
    def layer(self) -> int | None:
        if self.name.startswith("L"):
            return int(self.name[1 : self.name.index(".")])
        return None


@dataclass(frozen=True)
class Attribution:
    component: str
    value: float


@dataclass(frozen=True)
class DLAView:
    target: Prediction
    logit: float
    bias: float
    rows: tuple[Attribution, ...]  # largest magnitude first
    interventions: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelsView:
    labels: dict[str, Label] = field(default_factory=dict)
    path: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompareProgressInfo:
    done: int
    total: int
    phase: str = "compare"  # prepare, compare, search, done
    failures: int = 0


@dataclass(frozen=True)
class Counterexample:
    input: str  # "a=3, b=5"
    prompt: str
    expected: str
    got: str
    p_expected: float
    found_by: str = "sample"  # "sample" (counted in agreement) or "search" (found near failures)


@dataclass(frozen=True)
class SliceResult:
    name: str
    n: int
    agreement: float | None  # None for an empty slice


@dataclass(frozen=True)
class ClaimResult:
    text: str
    status: str  # holds, fails, unchecked
    value: float | None
    threshold: str | None  # e.g. "below 0.5"
    detail: str = ""  # how it was measured, or why it could not be


@dataclass(frozen=True)
class CompareView:
    theory: str
    n_inputs: int
    enumerated: bool
    selection: str  # "all 12,769 inputs" or "a uniform random sample of ..."
    agreement: float
    slices: tuple[SliceResult, ...]
    counterexamples: tuple[Counterexample, ...]
    claims: tuple[ClaimResult, ...] = ()
    searched: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------


def component_tree(header_config: Any) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """The component tree the TUI shows: [(top id, [(child id, [grandchild ids])])].

    embed, (pos_embed), L0 -> (L0.attn -> L0.H0.., L0.mlp), ..., unembed.
    """
    tree: list[tuple[str, list[tuple[str, list[str]]]]] = []
    blocks: dict[int, list[tuple[str, list[str]]]] = {}
    for c in all_components(header_config):
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


def step_of(component: str) -> str | None:
    """The step a component belongs to (where selecting it takes the step view)."""
    c = parse_component(component)
    if c.kind in ("embed", "pos_embed"):
        return "embed"
    if c.kind in ("ln_final", "unembed"):
        return "unembed"
    if c.kind in ("attn", "head"):
        return f"L{c.layer}.attn"
    if c.kind in ("mlp", "neuron"):
        return f"L{c.layer}.mlp"
    return f"L{c.layer}.attn"  # a block: its first step


def can_ablate(component: str | None) -> bool:
    if not component:
        return False
    try:
        c = parse_component(component)
    except TuiInterpError:
        return False
    return c.kind in ("embed", "pos_embed", "block", "attn", "head", "mlp", "neuron")


class Session:
    """The TUI's one handle on the core. Thread-safe: calls that touch the model take a lock."""

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
        self._lock = threading.RLock()
        self._waiting = 0  # threads waiting for the model (a comparison lets them in between batches)
        self._waiting_guard = threading.Lock()
        self._clean: Any = None  # Stepper without interventions
        self._live: Any = None  # Stepper with the interventions (the clean one when there are none)
        self._interventions: list[Any] = []  # engine Interventions, prepared
        self._heads: dict[int, int] = {}  # layer -> the head last focused in it
        self._reference: torch.Tensor | None = None
        self._lens: dict[int, tuple[tuple[Prediction, ...], ...]] = {}  # step -> logit lens (of _live)
        self._run = 0  # counts the forward passes (_live) this session has had

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
        with self._model_lock():
            if self.lm is None:
                self.lm = load_model(ckpt, device=self.device, dtype=self.dtype)
        return self.header()

    @property
    def config(self) -> Any:
        return self._need_checkpoint().config

    def components(self) -> list[tuple[str, list[tuple[str, list[str]]]]]:
        return component_tree(self.config)

    # ---- labels

    def read_labels(self) -> LabelsView:
        store = self._need_store()
        snap = store.read()
        return LabelsView({str(l.component): l for l in snap.labels}, str(snap.path), tuple(snap.warnings))

    def save_label(self, component: str, name: str, *, note: str = "", tags: Sequence[str] = ()) -> LabelsView:
        """Label a component (replacing its name, note and tags); written to disk at once."""
        store = self._need_store()
        change = store.add(component, name, note=note, tags=tags, replace_all=True)
        snap = change.snapshot
        return LabelsView({str(l.component): l for l in snap.labels}, str(snap.path), tuple(change.warnings))

    def suggest_labels(self, theory_text: str | None = None) -> tuple[Suggestion, ...]:
        """Head labels suggested from attention patterns (on the theory's prompts when it parses)."""
        from tui_interp.engine.suggest import suggest_head_labels
        from tui_interp.theory import parse_theory

        theory = None
        if theory_text and theory_text.strip():
            try:
                theory = parse_theory(theory_text)
            except TuiInterpError:
                theory = None  # an unfinished theory: measure on the repeated-token probe only
        with self._model_lock():
            found = suggest_head_labels(self._need_model(), theory)
        return tuple(found)

    def accept_suggestion(self, suggestion: Suggestion) -> LabelsView:
        """Label the suggestion's head with its name, tagged `suggested`, the score as evidence."""
        store = self._need_store()
        evidence = suggestion.evidence(f"tui-interp suggest {self._need_checkpoint().path}")
        change = store.add(suggestion.component, suggestion.name, tags=["suggested"], evidence=[evidence])
        snap = change.snapshot
        return LabelsView({str(l.component): l for l in snap.labels}, str(snap.path), tuple(change.warnings))

    def remove_label(self, component: str) -> LabelsView:
        store = self._need_store()
        snap = store.remove(component).snapshot
        return LabelsView({str(l.component): l for l in snap.labels}, str(snap.path), tuple(snap.warnings))

    # ---- prompt and steps

    def encode(self, text: str) -> list[int]:
        """Prompt text -> token ids; without a tokenizer, the text is a list of ids ("1, 2, 3")."""
        lm = self._need_model()
        if lm.tokenizer is None:
            parts = text.replace(",", " ").split()
            try:
                return [int(p) for p in parts]
            except ValueError:
                raise InputError("this model has no tokenizer.json: type token ids, e.g. 1, 2, 3") from None
        return lm.tokenizer.encode(text)

    def token_text(self, token_id: int) -> str:
        lm = self._need_model()
        if lm.tokenizer is None:
            return str(token_id)
        return lm.tokenizer.token_text(token_id)

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
        with self._model_lock():
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

    def move(self, delta: int | None = None, *, to: int | str | None = None, focus: str | None = None) -> StepView:
        """Step by `delta` (clamped to the pass) or go to a step by index or name."""
        with self._model_lock():
            live = self._need_stepper()
            if to is not None:
                i = live.resolve_step(to)
            else:
                i = max(0, min(len(live.steps) - 1, live.index + (delta or 0)))
            live.goto(i)
            if self._clean is not live:
                self._clean.goto(i)
            return self._view(focus)

    def view(self, focus: str | None = None) -> StepView:
        with self._model_lock():
            self._need_stepper()
            return self._view(focus)

    def _view(self, focus: str | None) -> StepView:
        live, lm = self._live, self.lm
        assert lm is not None
        cfg = lm.model.cfg
        state = live.state
        ids = [int(t) for t in live.tokens[0].tolist()]
        texts = tuple(self.token_text(t) for t in ids)
        norms = tuple(float(x) for x in live.resid_norms().tolist())
        lens = self._lens_at(state.index)
        final = live.goto(len(live.steps) - 1).logits
        live.goto(state.index)
        prediction = self._top(final[0, -1], TOP_K)
        attention = None
        neurons: tuple[Neuron, ...] = ()
        if focus:
            try:
                c = parse_component(focus)
            except TuiInterpError:
                c = None
            if c is not None and c.kind == "head":
                self._heads[c.layer] = c.index  # type: ignore[index]
        name = state.name
        layer = int(name[1 : name.index(".")]) if name.startswith("L") else None
        if layer is not None and name.endswith(".attn"):
            head = self._heads.get(layer, 0)
            pattern = live.attention(layer, head)
            attention = Attention(layer, head, tuple(tuple(float(v) for v in row) for row in pattern.float().tolist()))
        elif layer is not None and name.endswith(".mlp") and cfg.d_mlp > 0:
            neurons = tuple(Neuron(f"L{layer}.N{n}", v) for n, v in live.top_neurons(layer, len(ids) - 1, N_NEURONS))
        effect = self._effect(final) if self._interventions else None
        return StepView(
            index=state.index,
            name=name,
            steps=tuple(live.steps),
            prompt=self.prompt,
            tokens=texts,
            token_ids=tuple(ids),
            resid_norms=norms,
            lens=lens,
            prediction=prediction,
            position=len(ids) - 1,
            attention=attention,
            neurons=neurons,
            effect=effect,
            interventions=tuple(str(iv) for iv in self._interventions),
            run=self._run,
        )

    def _lens_at(self, index: int) -> tuple[tuple[Prediction, ...], ...]:
        """The logit lens after step `index` at every position (cached: it is most of a step's cost)."""
        lens = self._lens.get(index)
        if lens is None:
            live = self._live
            current = live.index
            live.goto(index)
            lens = tuple(tuple(self._pred(s) for s in row) for row in live.lens(TOP_K))
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
            with self._model_lock():
                if self._live is not live or index in self._lens:
                    continue
                self._lens_at(index)
                done += 1
            self._let_waiters_in()
        return done

    def _effect(self, patched_logits: torch.Tensor) -> Effect:
        clean_logits = self._clean.goto(len(self._clean.steps) - 1).logits
        self._clean.goto(self._live.index)
        clean_row, patched_row = clean_logits[0, -1].float(), patched_logits[0, -1].float()
        clean = self._top(clean_row, TOP_K)
        patched = self._top(patched_row, TOP_K)
        target = clean[0]
        import torch

        p_patched = torch.softmax(patched_row, dim=-1)
        target_patched = Prediction(target.token, target.id, float(p_patched[target.id]), float(patched_row[target.id]))
        return Effect(
            interventions=tuple(str(iv) for iv in self._interventions),
            clean=clean,
            patched=patched,
            target=target,
            target_patched=target_patched,
            logit_diff=target_patched.logit - target.logit,
            prob_diff=target_patched.prob - target.prob,
        )

    def _pred(self, score: Any) -> Prediction:
        return Prediction(self.token_text(score.id), score.id, score.prob, score.logit)

    def _top(self, logits: torch.Tensor, k: int) -> tuple[Prediction, ...]:
        from tui_interp.engine.lens import top_k

        return tuple(self._pred(s) for s in top_k(logits, k))

    # ---- interventions

    @property
    def interventions(self) -> tuple[str, ...]:
        return tuple(str(iv) for iv in self._interventions)

    def ablate(self, component: str, mode: str = "zero", *, focus: str | None = None) -> StepView:
        """Add an ablation of `component` (replacing one already on it) and recompute from there."""
        from tui_interp.engine.interventions import Intervention, sites_of

        if mode not in ABLATION_MODES:
            raise InputError(f"unknown ablation mode {mode!r} (choose {', '.join(ABLATION_MODES)})")
        cfg = self.config
        c = validate_component(parse_component(component), cfg)
        sites_of(c, cfg)  # raises a ComponentError for ln_final, unembed
        kept = [iv for iv in self._interventions if iv.component != c]
        return self._set_interventions([*kept, Intervention(c, mode)], focus)

    def remove_intervention(self, index: int, *, focus: str | None = None) -> StepView:
        if not 0 <= index < len(self._interventions):
            raise InputError(f"no intervention #{index + 1}")
        kept = [iv for i, iv in enumerate(self._interventions) if i != index]
        return self._set_interventions(kept, focus)

    def clear_interventions(self, *, focus: str | None = None) -> StepView:
        return self._set_interventions([], focus)

    def _set_interventions(self, interventions: list[Any], focus: str | None) -> StepView:
        from tui_interp.engine.stepper import Stepper

        with self._model_lock():
            live = self._need_stepper()
            index = live.index
            tokens = live.tokens
            prepared = self._prepare(interventions, tokens)
            if prepared:
                new = Stepper(self._need_model().model, tokens) if live is self._clean else live
                new.set_interventions(prepared)
            else:
                new = self._clean
            new.run_to_end()
            new.goto(index)
            self._clean.goto(index)
            self._live, self._interventions = new, list(prepared)
            self._lens.clear()
            self._run += 1
            return self._view(focus)

    def _prepare(self, interventions: list[Any], tokens: torch.Tensor) -> list[Any]:
        """Fill in mean/resample values from a seeded batch of random prompts of the same length."""
        from tui_interp.engine.interventions import Intervention, prepare, random_reference

        if not any(iv.mode in ("mean", "resample") for iv in interventions):
            return interventions
        lm = self._need_model()
        length = tokens.shape[1]
        if self._reference is None or self._reference.shape[1] != length:
            self._reference = random_reference(lm.model.cfg, length, n=MEAN_REFERENCE_SIZE, device=lm.device)
        # values of a resample depend on the prompt's length: recompute them for each prompt
        fresh = [Intervention(iv.component, iv.mode, iv.positions) if iv.mode in ("mean", "resample") else iv for iv in interventions]
        return prepare(fresh, lm.model, reference=self._reference)

    # ---- attribution

    def dla(self, target: int | None = None) -> DLAView:
        """Direct logit attribution of the last position's prediction (the top token by default)."""
        from tui_interp.engine.lens import direct_logit_attribution

        with self._model_lock():
            live = self._need_stepper()
            index = live.index
            final = live.goto(len(live.steps) - 1)
            cache = live.full_cache()
            live.goto(index)
            row = final.logits[0, -1].float()
            if target is None:
                target = int(row.argmax())
            result = direct_logit_attribution(self._need_model().model, cache, target)
        import torch

        prob = float(torch.softmax(row, dim=-1)[target])
        rows = sorted((Attribution(k, v) for k, v in result.contributions.items()), key=lambda a: -abs(a.value))
        tgt = Prediction(self.token_text(target), target, prob, float(row[target]))
        return DLAView(tgt, result.logit, result.bias, tuple(rows), self.interventions)

    # ---- theory

    def read_theory(self) -> str:
        """The theory file's text ('' when no file was given or it does not exist yet)."""
        if self.theory_path is None or not self.theory_path.exists():
            return ""
        try:
            return self.theory_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{self.theory_path}: cannot read the theory file: {getattr(e, 'strerror', None) or e}") from e

    def save_theory(self, text: str, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the theory to `path` (or the file it was opened from): temp file, fsync, rename."""
        target = Path(path) if path is not None else self.theory_path
        if target is None:
            raise InputError("no theory file yet: give a file name to save to")
        target = target.expanduser()
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise InputError(f"{target}: cannot save the theory: {e.strerror or e}") from e
        self.theory_path = target
        return target

    def example_prompt(self, text: str) -> str | None:
        """A prompt the theory would ask the model (one input from its domain), or None."""
        from tui_interp.theory import parse_theory

        try:
            theory = parse_theory(text)
            inputs = theory.domain.sample(1, seed=0)
            return theory.render_prompt(inputs[0]) if inputs else None
        except TuiInterpError:
            return None

    def check_theory(self, text: str) -> list[Diagnostic]:
        from tui_interp.theory import check_theory

        return check_theory(text)

    def compare(
        self,
        text: str,
        *,
        progress: Callable[[CompareProgressInfo], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        limit: int | None = None,
        seed: int = 0,
    ) -> CompareView | None:
        """Compare the theory with the model over its domain; None when cancelled.

        The model lock is held one batch at a time, so steps asked for meanwhile are served
        between batches instead of waiting for the whole comparison."""
        from tui_interp.engine.compare import Cancelled, CompareResult, iter_compare
        from tui_interp.theory import parse_theory

        theory = parse_theory(text, str(self.theory_path) if self.theory_path else None)
        lm = self._need_model()
        options: dict[str, Any] = {"seed": seed, "cancel": cancelled or (lambda: False), "labels": self.store}
        if limit is not None:
            options["limit"] = limit
        events = iter_compare(lm, theory, **options)
        while True:
            try:
                with self._model_lock():
                    event = next(events)
                self._let_waiters_in()
            except StopIteration:
                raise InputError("internal: the comparison ended without a result") from None
            except Cancelled:
                return None
            if isinstance(event, CompareResult):
                return _compare_view(event)
            if progress is not None:
                progress(CompareProgressInfo(event.done, event.total, event.phase, event.failures))

    # ---- helpers

    @contextmanager
    def _model_lock(self) -> Iterator[None]:
        """Hold the model; counted while waiting so that a running comparison steps aside."""
        with self._waiting_guard:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._waiting_guard:
                self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    def _let_waiters_in(self, timeout: float = 2.0) -> None:
        """Between two batches of a long job: wait (briefly) while other calls use the model."""
        deadline = time.monotonic() + timeout
        while self._waiting > 0 and time.monotonic() < deadline:
            time.sleep(0.002)

    def _need_checkpoint(self) -> Checkpoint:
        if self.checkpoint is None:
            raise InputError("the model is not open yet")
        return self.checkpoint

    def _need_store(self) -> LabelStore:
        if self.store is None:
            self.open()
        assert self.store is not None
        return self.store

    def _need_model(self) -> LoadedModel:
        if self.lm is None:
            raise InputError("the model is still loading")
        return self.lm

    def _need_stepper(self) -> Any:
        if self._live is None:
            raise InputError("type a prompt first")
        return self._live


def _compare_view(result: Any) -> CompareView:
    from tui_interp.theory import format_input

    cexs = tuple(
        Counterexample(
            input=format_input(o.input),
            prompt=o.prompt,
            expected=o.expected,
            got=o.got if o.got is not None else "",
            p_expected=float(o.p_expected),
            found_by=o.found_by,
        )
        for o in result.counterexamples
    )
    slices = tuple(SliceResult(s.name, s.n, s.agreement) for s in result.slices)
    claims = tuple(
        ClaimResult(str(c.get("text", "")), str(c.get("status", "")), c.get("value"), c.get("threshold"), str(c.get("detail") or ""))
        for c in result.claims
    )
    return CompareView(
        theory=result.theory,
        n_inputs=result.n_inputs,
        enumerated=result.enumerated,
        selection=result.selection,
        agreement=result.agreement,
        slices=slices,
        counterexamples=cexs,
        claims=claims,
        searched=result.searched,
        seconds=result.seconds,
    )


__all__ = [
    "ABLATION_MODES",
    "Attention",
    "Attribution",
    "ClaimResult",
    "CompareProgressInfo",
    "CompareView",
    "Counterexample",
    "DLAView",
    "Effect",
    "Header",
    "LabelsView",
    "Neuron",
    "Prediction",
    "Session",
    "SliceResult",
    "StepView",
    "can_ablate",
    "component_tree",
    "step_of",
]
