"""The label store: one label file bound to one model, read and written durably.

Every change is a transaction: take the file lock, re-read the file, apply the change to
what is on disk now, write a temp file in the same directory, fsync it, `os.replace` it over
the old file, fsync the directory. Two processes (the TUI and a script) writing at once lose
nothing, and a crash leaves the old file or the new one, never a torn one. A file that is
not a valid label file is reported (LabelStoreError naming it) and never overwritten; a
FIFO, a device or a directory in its place is refused before anything opens it, so neither
a read nor a write ever blocks on one (and no write holds the lock while blocked).

The lock is not beside the label file, where it would show in `git status` of a model
directory: it is `<user cache dir>/locks/<sha256 of the label file's real path>.lock`, created
on demand and never deleted (deleting a flock file another writer waits on would break the
exclusion). After a write the label file's directory holds the label file and nothing else
(a write also removes the empty `.NAME.lock` that older versions left beside the file).
That lock serialises the writers of one user: threads, the TUI, scripts and CLI runs.
Writers of two different users sharing one label file (a group-writable model directory)
each lock in their own cache directory, so they are not serialised with each other: every
write is still atomic, so the file is always whole and valid, but when both write at the
same moment the later rename wins and the other's change is lost. The same holds for one
user's processes run with different cache directories (XDG_CACHE_HOME) or on two machines
sharing a network filesystem. Share labels between people through version control, or give
each person a `--labels` file of their own.

Where labels live by default: beside the model (`labels.json` in a model directory,
`<stem>.labels.json` beside a bare .safetensors file) when that directory is writable;
otherwise in the user's data directory, keyed by the model's fingerprint. An explicit
path overrides both.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import filelock
import platformdirs

from tui_interp.components import Component, parse_component, validate_component
from tui_interp.errors import ComponentError, LabelStoreError
from tui_interp.fileio import atomic_write, describe_kind, remove_stale_temps
from tui_interp.labels.fileformat import dump_label_file, parse_label_file
from tui_interp.labels.records import (
    JsonObject,
    Label,
    LabelFile,
    LabelNotFoundError,
    ModelRef,
    normalise_evidence,
    normalise_tags,
    shorten,
    utc_now,
)

if TYPE_CHECKING:
    from tui_interp.model.config import ModelConfig


log = logging.getLogger(__name__)

APP_NAME = "tui-interp"
DIR_LABEL_FILE = "labels.json"
BARE_FILE_SUFFIX = ".labels.json"
LOCK_TIMEOUT_S = 30.0
LOCK_POLL_S = 0.002  # waiting for another writer: a short poll keeps a busy file fast
_MAX_LISTED = 8


class CheckpointInfo(Protocol):
    """What the store needs of an opened checkpoint (headers only; no weights)."""

    @property
    def name(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def config(self) -> ModelConfig: ...
    @property
    def path(self) -> Path: ...


# ---------------------------------------------------------------- location


@dataclass(frozen=True)
class LabelLocation:
    """Where a model's labels are written (`path`), and a read-only file to start from (`seed`).

    `seed` is set when the labels beside the model cannot be written (a read-only model
    directory, a shared box): they are read from there until the first change, which is
    saved to `path` in the user's data directory.
    """

    path: Path
    seed: Path | None = None
    beside_model: bool = True


def beside_model_path(model_path: Path) -> Path:
    """The label file that travels with a model: `DIR/labels.json` or `STEM.labels.json`."""
    if model_path.is_dir():
        return model_path / DIR_LABEL_FILE
    return model_path.with_name(model_path.stem + BARE_FILE_SUFFIX)


def user_labels_dir() -> Path:
    """The per-user directory for labels of models whose directory is not writable."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "labels"


def user_locks_dir() -> Path:
    """The per-user directory of label-file locks (kept out of model directories)."""
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "locks"


def lock_path(label_file: Path | str) -> Path:
    """The lock file of a label file: named by the SHA-256 of its real path, in `user_locks_dir()`."""
    real = os.path.realpath(label_file)
    return user_locks_dir() / f"{hashlib.sha256(os.fsencode(real)).hexdigest()}.lock"


def user_labels_path(fingerprint: str) -> Path:
    """The per-user label file of the model with this fingerprint."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", fingerprint).strip(".") or "unknown"
    return user_labels_dir() / f"{safe}.json"


def is_writable_location(path: Path) -> bool:
    """Whether a label file can be (re)written at `path`: its directory takes new files."""
    directory = path.parent
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def default_location(model_path: Path, fingerprint: str) -> LabelLocation:
    """Beside the model when writable, else the user's data directory keyed by fingerprint."""
    beside = beside_model_path(Path(model_path))
    if is_writable_location(beside):
        return LabelLocation(path=beside)
    seed = beside if beside.is_file() else None
    return LabelLocation(path=user_labels_path(fingerprint), seed=seed, beside_model=False)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class LabelSnapshot:
    """The labels as read at one moment, with warnings the faces should show."""

    path: Path
    file: LabelFile  # for a file that does not exist yet: empty, bound to the current model
    exists: bool
    warnings: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[Label, ...]:
        return self.file.labels

    @property
    def bound_to(self) -> ModelRef:
        """The model the file records (it may differ from the model now open)."""
        return self.file.model

    def get(self, component: Component | str) -> Label | None:
        return self.file.get(_as_component(component))


@dataclass(frozen=True)
class LabelChange:
    """The result of one write: the label added, updated or removed, and the file after it."""

    label: Label
    action: str  # "added" | "updated" | "removed"
    snapshot: LabelSnapshot

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.snapshot.warnings


# ---------------------------------------------------------------- store


class LabelStore:
    """Labels of one model in one file. Reads are lock-free; every write is a transaction."""

    def __init__(
        self,
        path: Path | str,
        model: ModelRef,
        *,
        config: ModelConfig | None = None,
        seed: Path | None = None,
        create_dirs: bool = False,
        lock_timeout: float = LOCK_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self.model = model
        self.config = config
        self.seed = seed
        self.create_dirs = create_dirs
        self.lock_timeout = lock_timeout

    @classmethod
    def for_checkpoint(cls, checkpoint: CheckpointInfo, labels: Path | str | None = None) -> LabelStore:
        """The store of an opened checkpoint: `labels` if given, else its default location."""
        model = ModelRef(name=checkpoint.name, fingerprint=checkpoint.fingerprint)
        if labels is not None:
            return cls(Path(labels), model, config=checkpoint.config)
        where = default_location(Path(checkpoint.path), checkpoint.fingerprint)
        return cls(where.path, model, config=checkpoint.config, seed=where.seed, create_dirs=not where.beside_model)

    # -- reading

    def read(self) -> LabelSnapshot:
        """The labels now on disk (the seed file if this store has not written yet)."""
        source, text = self._read_current()
        label_file = self._parse(source, text)
        return self._snapshot(label_file, exists=text is not None, seed_used=source != self._real_path())

    # -- writing

    def add(
        self,
        component: Component | str,
        name: str,
        *,
        note: str | None = None,
        tags: Iterable[str] = (),
        evidence: Iterable[JsonObject] = (),
        replace_all: bool = False,
        now: datetime | None = None,
    ) -> LabelChange:
        """Label `component` (checked against the model when the store has its config).

        An existing label gets the new name and, unless `replace_all`, keeps its note when
        `note` is None and gains the new tags and evidence. `created` is kept either way.
        """
        c = self._checked(component)
        tags, evidence = normalise_tags(tags), normalise_evidence(evidence)
        stamp = now or utc_now()
        candidate = Label(component=c, name=name, note=note or "", tags=tags, evidence=evidence, created=stamp, updated=stamp)
        result: dict[str, Any] = {}

        def change(current: LabelFile) -> LabelFile:
            old = current.get(c)
            if old is None:
                label = candidate
            elif replace_all:
                label = replace(candidate, created=old.created, extra=old.extra)
            else:
                label = old.merged(name=name, note=note, tags=tags, evidence=evidence, now=stamp)
            result.update(label=label, action="added" if old is None else "updated")
            return current.with_label(label)

        snapshot = self.edit(change)
        return LabelChange(label=result["label"], action=result["action"], snapshot=snapshot)

    def put(self, label: Label) -> LabelChange:
        """Write `label` exactly as given, replacing any label of its component."""
        self._checked(label.component)
        result: dict[str, str] = {}

        def change(current: LabelFile) -> LabelFile:
            result["action"] = "added" if current.get(label.component) is None else "updated"
            return current.with_label(label)

        snapshot = self.edit(change)
        return LabelChange(label=label, action=result["action"], snapshot=snapshot)

    def remove(self, component: Component | str) -> LabelChange:
        """Remove the label of `component` (syntax-checked only, so labels of components
        this model lacks can be removed). LabelNotFoundError if it has no label."""
        c = _as_component(component)
        removed: dict[str, Label] = {}

        def change(current: LabelFile) -> LabelFile:
            old = current.get(c)
            if old is None:
                raise LabelNotFoundError(f"no label for {c} in {self.path}")
            removed["label"] = old
            return current.without(c)

        snapshot = self.edit(change)
        return LabelChange(label=removed["label"], action="removed", snapshot=snapshot)

    def edit(self, change: Callable[[LabelFile], LabelFile]) -> LabelSnapshot:
        """Apply `change` to the file as it is on disk now, under the lock, and write the result.

        `change` may be called with a fresh file; it must not have side effects beyond
        returning the new content. An exception from it aborts the write.
        """
        target = self._real_path()
        self._prepare_directory(target)
        _check_kind(target)  # before the lock: a FIFO in its place must not make us wait holding it
        with self._locked(target):
            remove_stale_temps(target)
            _remove_legacy_lock(target)
            source, text = self._read_current()
            current = self._parse(source, text)
            updated = change(current)
            atomic_write(target, dump_label_file(updated), error=LabelStoreError)
        return self._snapshot(updated, exists=True, seed_used=False)

    # -- helpers

    def _real_path(self) -> Path:
        """The file written: symlinks resolved, so a link into a shared repository stays a link."""
        return Path(os.path.realpath(self.path))

    def _checked(self, component: Component | str) -> Component:
        c = _as_component(component)
        return validate_component(c, self.config) if self.config is not None else c

    def _read_current(self) -> tuple[Path, str | None]:
        """(file read, its text); text is None when neither the file nor a seed exists."""
        target = self._real_path()
        text = _read_text(target)
        if text is None and self.seed is not None:
            seed_text = _read_text(self.seed)
            if seed_text is not None:
                return self.seed, seed_text
        return target, text

    def _parse(self, source: Path, text: str | None) -> LabelFile:
        if text is None:
            return LabelFile(model=self.model)
        return parse_label_file(text, str(source))

    def _snapshot(self, label_file: LabelFile, *, exists: bool, seed_used: bool) -> LabelSnapshot:
        return LabelSnapshot(
            path=self.path,
            file=label_file,
            exists=exists,
            warnings=tuple(self._warnings(label_file, seed_used=seed_used)),
        )

    def _warnings(self, label_file: LabelFile, *, seed_used: bool) -> list[str]:
        warnings = []
        bound = label_file.model
        if bound.fingerprint != self.model.fingerprint:
            warnings.append(
                f"the labels in {self.path} were made for {shorten(bound.name)} (fingerprint {_short(bound.fingerprint)}), "
                f"but this model's fingerprint is {_short(self.model.fingerprint)}: the weights changed since labelling, "
                "so check the labels before trusting them"
            )
        if seed_used and self.seed is not None:
            warnings.append(f"labels read from {self.seed}, which is not writable; changes will be saved to {self.path}")
        missing = self._missing_components(label_file)
        if missing:
            listed = ", ".join(missing[:_MAX_LISTED]) + (", ..." if len(missing) > _MAX_LISTED else "")
            noun = "label names a component" if len(missing) == 1 else "labels name components"
            warnings.append(f"{len(missing)} {noun} this model does not have: {listed}")
        return warnings

    def _missing_components(self, label_file: LabelFile) -> list[str]:
        if self.config is None:
            return []
        missing = []
        for label in label_file.labels:
            try:
                validate_component(label.component, self.config)
            except ComponentError:
                missing.append(str(label.component))
        return missing

    def _prepare_directory(self, target: Path) -> None:
        directory = target.parent
        if directory.is_dir():
            return
        if not self.create_dirs:
            raise LabelStoreError(f"cannot write {self.path}: directory {directory} does not exist")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LabelStoreError(f"cannot create the label directory {directory}: {e.strerror or e}") from e

    def _locked(self, target: Path) -> _Lock:
        return _Lock(target, lock_path(target), self.lock_timeout)


class _Lock:
    """The inter-process write lock of one label file, as a context manager with clear errors."""

    def __init__(self, target: Path, lock_file: Path, timeout: float) -> None:
        self.target = target
        self.lock_path = lock_file
        self.timeout = timeout
        self._lock = filelock.FileLock(str(lock_file), timeout=timeout)

    def __enter__(self) -> _Lock:
        try:
            self.lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise LabelStoreError(f"cannot create the lock directory {self.lock_path.parent}: {e.strerror or e}") from e
        try:
            self._lock.acquire(poll_interval=LOCK_POLL_S)
        except filelock.Timeout as e:
            raise LabelStoreError(
                f"another process has been writing {self.target} for over {self.timeout:g} s "
                f"(it holds the lock {self.lock_path}); try again"
            ) from e
        except OSError as e:
            raise LabelStoreError(f"cannot lock {self.lock_path} to write {self.target}: {e.strerror or e}") from e
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


# ---------------------------------------------------------------- files


def _as_component(component: Component | str) -> Component:
    return component if isinstance(component, Component) else parse_component(component)


def _short(fingerprint: str) -> str:
    return fingerprint if len(fingerprint) <= 16 else fingerprint[:16] + "…"


def _check_kind(path: Path) -> bool:
    """Whether `path` exists; LabelStoreError if it is there but is not a regular file.

    Checked with stat() before any open(), so a FIFO never blocks and a device is never read.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise LabelStoreError(f"cannot read {path}: {e.strerror or e}") from e
    if not stat.S_ISREG(st.st_mode):
        raise LabelStoreError(f"{path}: {describe_kind(st.st_mode)}, not a label file")
    return True


def _read_bytes(path: Path) -> bytes | None:
    """The bytes of the regular file `path`, None if it does not exist.

    Opened non-blocking and checked again with fstat(), so a FIFO swapped in after the stat()
    check cannot block either.
    """
    if not _check_kind(path):
        return None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise LabelStoreError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise LabelStoreError(f"{path}: {describe_kind(mode)}, not a label file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError as e:
        raise LabelStoreError(f"cannot read {path}: {e.strerror or e}") from e
    finally:
        os.close(fd)


def _remove_legacy_lock(target: Path) -> None:
    """Delete the `.NAME.lock` that versions before the lock moved to the cache dir left beside the file.

    Only an empty regular file of exactly that name, which nothing but tui-interp makes.
    """
    legacy = target.with_name(f".{target.name}.lock")
    try:
        st = os.lstat(legacy)
    except FileNotFoundError:
        return
    except OSError as e:
        log.info("cannot look at %s: %s", legacy, e)
        return
    if not (stat.S_ISREG(st.st_mode) and st.st_size == 0):
        return  # not the empty lock file tui-interp made: leave it alone
    try:
        os.unlink(legacy)
        log.info("removed the lock file an older version left beside the labels: %s", legacy)
    except OSError as e:
        log.warning("cannot remove the old lock file %s: %s", legacy, e)


def _read_text(path: Path) -> str | None:
    """The file's text, None if it does not exist; LabelStoreError if it cannot be read as UTF-8."""
    data = _read_bytes(path)
    if data is None:
        return None
    if not data.strip():
        raise LabelStoreError(f"{path}: not a label file: it is empty (delete it to start a new one)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LabelStoreError(f"{path}: not a label file: not UTF-8 text (byte {e.start})") from e
