"""The label store: transactions, fingerprint binding, locations, refusal to overwrite, crash safety."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from tui_interp.components import parse_component
from tui_interp.errors import ComponentError, LabelStoreError
from tui_interp.labels import Label, LabelNotFoundError, LabelStore, ModelRef, default_location, parse_label_file
from tui_interp.labels import store as store_module
from tui_interp.model.config import ModelConfig

MODEL = ModelRef(name="tiny", fingerprint="f" * 16)  # the binding of the `store` fixture

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
T1 = datetime(2025, 1, 2, tzinfo=timezone.utc)


def on_disk(path: Path):
    return parse_label_file(path.read_text(encoding="utf-8"), str(path))


def test_read_of_a_missing_file_is_empty_and_bound_to_the_model(store: LabelStore) -> None:
    snapshot = store.read()
    assert snapshot.labels == () and not snapshot.exists and snapshot.warnings == ()
    assert snapshot.bound_to == MODEL
    assert not store.path.exists()


def test_add_writes_a_file_bound_to_the_model(store: LabelStore) -> None:
    change = store.add("L1.H3", "previous-token head", note="n", tags=["attn"], evidence=[{"kind": "ablation", "value": 1.5}], now=T0)
    assert change.action == "added"
    assert change.label == Label(parse_component("L1.H3"), "previous-token head", "n", ("attn",), ({"kind": "ablation", "value": 1.5},), T0, T0)
    document = json.loads(store.path.read_text())
    assert document["format"] == "tui-interp.labels/1"
    assert document["model"] == {"name": "tiny", "fingerprint": MODEL.fingerprint}
    assert document["labels"] == [change.label.to_dict()]
    assert store.read().labels == (change.label,)


def test_add_again_updates_and_merges(store: LabelStore) -> None:
    store.add("L0.H1", "first", note="keep", tags=["a"], evidence=[{"kind": "x"}], now=T0)
    change = store.add("L0.H1", "second", tags=["b"], evidence=[{"kind": "y"}], now=T1)
    assert change.action == "updated"
    got = store.read().get("L0.H1")
    assert (got.name, got.note, got.tags, [e["kind"] for e in got.evidence]) == ("second", "keep", ("a", "b"), ["x", "y"])
    assert (got.created, got.updated) == (T0, T1)


def test_add_with_replace_overwrites_all_but_created(store: LabelStore) -> None:
    store.add("L0.H1", "first", note="old", tags=["a"], evidence=[{"kind": "x"}], now=T0)
    store.add("L0.H1", "second", tags=["b"], replace_all=True, now=T1)
    got = store.read().get("L0.H1")
    assert (got.name, got.note, got.tags, got.evidence, got.created, got.updated) == ("second", "", ("b",), (), T0, T1)


def test_put_writes_exactly(store: LabelStore) -> None:
    x = Label(parse_component("unembed"), "logits", created=T0, updated=T1)
    assert store.put(x).action == "added"
    assert store.read().labels == (x,)


def test_add_validates_against_the_model(store: LabelStore) -> None:
    with pytest.raises(ComponentError, match=r"L9.H2: model has 2 layers \(L0..L1\)"):
        store.add("L9.H2", "nope")
    with pytest.raises(ComponentError, match="did you mean 'L0.H1'"):
        store.add("l0.h1", "nope")
    assert not store.path.exists()


def test_remove(store: LabelStore) -> None:
    store.add("L0.H1", "a")
    store.add("L0.H2", "b")
    change = store.remove("L0.H1")
    assert change.action == "removed" and change.label.name == "a"
    assert [str(x.component) for x in store.read().labels] == ["L0.H2"]
    with pytest.raises(LabelNotFoundError, match=f"no label for L0.H1 in {store.path}"):
        store.remove("L0.H1")


def test_labels_of_components_the_model_lacks_warn_and_can_be_removed(tmp_path: Path, config: ModelConfig) -> None:
    big = LabelStore(tmp_path / "labels.json", MODEL)  # no config: nothing to check against
    big.add("L5.H9", "deep head")
    big.add("L0.H1", "shallow head")
    store = LabelStore(tmp_path / "labels.json", MODEL, config=config)
    assert store.read().warnings == ("1 label names a component this model does not have: L5.H9",)
    store.remove("L5.H9")
    assert store.read().warnings == ()


def test_changed_weights_warn_and_keep_the_binding(tmp_path: Path, config: ModelConfig) -> None:
    LabelStore(tmp_path / "labels.json", MODEL, config=config).add("L0.H1", "head")
    retrained = LabelStore(tmp_path / "labels.json", ModelRef("tiny", "0" * 64), config=config)
    snapshot = retrained.read()
    assert len(snapshot.warnings) == 1
    warning = snapshot.warnings[0]
    assert "were made for 'tiny' (fingerprint ffffffffffffffff)" in warning
    assert "this model's fingerprint is 0000000000000000…" in warning
    assert "weights changed since labelling" in warning
    change = retrained.add("L0.H2", "another")
    assert change.warnings == snapshot.warnings  # the faces show it on writes too
    assert on_disk(retrained.path).model == MODEL  # old labels are not silently re-bound


def test_corrupt_file_is_refused_and_left_byte_identical(store: LabelStore) -> None:
    garbage = b'{"format": "tui-interp.labels/1", "model": {"name": "x", "fingerp'
    store.path.write_bytes(garbage)
    for attempt in (lambda: store.read(), lambda: store.add("L0.H1", "x"), lambda: store.remove("L0.H1")):
        with pytest.raises(LabelStoreError) as info:
            attempt()
        assert str(info.value).startswith(f"{store.path}: not a label file: invalid JSON")
    assert store.path.read_bytes() == garbage
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["labels.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "it is empty"),
        (b"\n  \n", "it is empty"),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b'{"format": "vscode-settings"}', "format is 'vscode-settings'"),
        (b'{"format": "tui-interp.labels/9", "model": {}, "labels": []}', "cannot read"),
    ],
)
def test_foreign_files_are_refused_and_left_alone(store: LabelStore, content: bytes, message: str) -> None:
    store.path.write_bytes(content)
    with pytest.raises(LabelStoreError, match=message):
        store.add("L0.H1", "x")
    assert store.path.read_bytes() == content


def test_a_directory_in_place_of_the_file(store: LabelStore) -> None:
    store.path.mkdir()
    with pytest.raises(LabelStoreError, match="is a directory"):
        store.read()


def test_missing_directory_of_an_explicit_path(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "nowhere" / "labels.json", MODEL)
    with pytest.raises(LabelStoreError, match="directory .*nowhere does not exist"):
        store.add("L0", "x")


def test_utf8_bom_is_accepted(store: LabelStore) -> None:
    store.add("L0", "x")
    store.path.write_bytes(b"\xef\xbb\xbf" + store.path.read_bytes())
    assert store.read().get("L0").name == "x"


# ---------------------------------------------------------------- crash safety


def test_failed_rename_leaves_the_old_file_and_no_temp(store: LabelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add("L0.H1", "old")
    before = store.path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, "replace", broken_replace)
    with pytest.raises(LabelStoreError, match="cannot write .*labels.json: No space left on device"):
        store.add("L0.H2", "new")
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["labels.json"]


def test_failed_fsync_leaves_the_old_file(store: LabelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add("L0.H1", "old")
    before = store.path.read_bytes()
    monkeypatch.setattr(store_module.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(LabelStoreError, match="Input/output error"):
        store.add("L0.H2", "new")
    assert store.path.read_bytes() == before


def test_crash_between_temp_write_and_rename(store: LabelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process dying after writing the temp file leaves the old file; the next writer cleans up."""
    store.add("L0.H1", "old")
    before = store.path.read_bytes()

    class Crash(BaseException):
        pass

    def die(src, dst):
        raise Crash

    monkeypatch.setattr(store_module.os, "replace", die)
    with pytest.raises(Crash):
        store.add("L0.H2", "new")
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    # simulate what SIGKILL would leave behind: a temp file that nobody removed
    stale = store.path.with_name(".labels.json.0123456789abcdef.tmp")
    stale.write_bytes(b'{"half": ')
    store.add("L0.H2", "new")
    assert not stale.exists()
    assert [x.name for x in store.read().labels] == ["old", "new"]


def test_permissions_of_the_file_are_kept(store: LabelStore) -> None:
    store.add("L0", "x")
    os.chmod(store.path, 0o640)
    store.add("L1", "y")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o640


def test_symlinked_file_stays_a_symlink(tmp_path: Path) -> None:
    shared = tmp_path / "repo"
    shared.mkdir()
    (tmp_path / "model").mkdir()
    link = tmp_path / "model" / "labels.json"
    LabelStore(shared / "labels.json", MODEL).add("L0", "x")
    link.symlink_to(shared / "labels.json")
    LabelStore(link, MODEL).add("L1", "y")
    assert link.is_symlink()
    assert [str(x.component) for x in on_disk(shared / "labels.json").labels] == ["L0", "L1"]


def test_lock_timeout_is_a_clear_error(store: LabelStore) -> None:
    import filelock

    store.lock_timeout = 0.05
    lock_file = store_module.lock_path(store.path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    held = filelock.FileLock(str(lock_file))
    with held:
        # filelock is re-entrant within a thread, so take it from another thread
        import threading

        errors: list[BaseException] = []

        def write() -> None:
            try:
                store.add("L0", "x")
            except LabelStoreError as e:
                errors.append(e)

        thread = threading.Thread(target=write)
        thread.start()
        thread.join()
    assert len(errors) == 1
    assert str(errors[0]) == (
        f"another process has been writing {store.path} for over 0.05 s (it holds the lock {lock_file}); try again"
    )
    assert not store.path.exists()


# ---------------------------------------------------------------- the lock lives outside the model directory


def test_a_write_leaves_only_the_label_file_in_its_directory(tmp_path: Path, private_cache_dir: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    store = LabelStore(model_dir / "labels.json", MODEL)
    store.add("L0", "x")
    store.add("L1", "y")
    store.remove("L0")
    assert [p.name for p in model_dir.iterdir()] == ["labels.json"]
    lock_file = store_module.lock_path(model_dir / "labels.json")
    assert lock_file.parent == private_cache_dir / "tui-interp" / "locks"
    assert lock_file.is_file()


def test_the_lock_is_named_by_the_real_path(tmp_path: Path) -> None:
    real = tmp_path / "labels.json"
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert store_module.lock_path(link) == store_module.lock_path(real) != store_module.lock_path(tmp_path / "other.json")
    assert store_module.lock_path(real).name == hashlib.sha256(os.fsencode(os.path.realpath(real))).hexdigest() + ".lock"


def test_the_lock_file_of_older_versions_is_removed(store: LabelStore) -> None:
    legacy = store.path.with_name(".labels.json.lock")
    legacy.touch()
    kept = store.path.with_name(".other.json.lock")
    kept.touch()
    store.add("L0", "x")
    assert sorted(p.name for p in store.path.parent.iterdir()) == [".other.json.lock", "labels.json"]


def test_a_lock_file_beside_the_labels_that_is_not_ours_is_kept(store: LabelStore) -> None:
    legacy = store.path.with_name(".labels.json.lock")
    legacy.write_text("someone's notes")
    store.add("L0", "x")
    assert legacy.read_text() == "someone's notes"


def test_an_unwritable_cache_dir_is_a_clear_error(store: LabelStore, private_cache_dir: Path) -> None:
    (private_cache_dir / "tui-interp").write_text("a file where the cache directory should be")
    with pytest.raises(LabelStoreError, match=r"^cannot create the lock directory .*tui-interp/locks: "):
        store.add("L0", "x")
    assert not store.path.exists()


def test_threads_of_one_process_lose_nothing(store: LabelStore) -> None:
    import threading

    def write(layer: int) -> None:
        mine = LabelStore(store.path, MODEL)  # a store each, as two parts of an app would have
        for i in range(40):
            mine.add(f"L{layer}.N{i}", f"thread {layer}")

    threads = [threading.Thread(target=write, args=(layer,)) for layer in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [str(x.component) for x in on_disk(store.path).labels] == [f"L{layer}.N{i}" for layer in (0, 1) for i in range(40)]


# ---------------------------------------------------------------- not a regular file


def finishes(fn, seconds: float = 10.0) -> BaseException | None:
    """Run `fn` in a daemon thread; the exception it raised. Fails the test if it blocks."""
    import threading

    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"blocked for over {seconds} s"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("operation", ["read", "add", "remove"])
def test_a_fifo_in_place_of_the_file_fails_at_once_without_taking_the_lock(store: LabelStore, operation: str) -> None:
    os.mkfifo(store.path)
    calls = {"read": lambda: store.read(), "add": lambda: store.add("L0", "x"), "remove": lambda: store.remove("L0")}
    error = finishes(calls[operation])
    assert isinstance(error, LabelStoreError)
    assert str(error) == f"{store.path}: is a named pipe (FIFO), not a label file"
    assert not store_module.lock_path(store.path).exists()  # the lock was never taken
    assert stat.S_ISFIFO(os.stat(store.path).st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_refused(tmp_path: Path) -> None:
    store = LabelStore("/dev/null", MODEL)
    for attempt in (store.read, lambda: store.add("L0", "x")):
        error = finishes(attempt)
        assert isinstance(error, LabelStoreError) and str(error) == "/dev/null: is a device, not a label file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_seed_is_refused(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    os.mkfifo(seed)
    store = LabelStore(tmp_path / "labels.json", MODEL, seed=seed)
    error = finishes(store.read)
    assert isinstance(error, LabelStoreError) and str(error) == f"{seed}: is a named pipe (FIFO), not a label file"


def test_a_symlink_to_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "labels.json").symlink_to(tmp_path / "dir")
    store = LabelStore(tmp_path / "labels.json", MODEL)
    with pytest.raises(LabelStoreError, match=r"dir: is a directory, not a label file$"):
        store.add("L0", "x")


# ---------------------------------------------------------------- locations


def test_default_location_beside_a_model_directory(tmp_path: Path) -> None:
    assert default_location(tmp_path, "abc") == store_module.LabelLocation(path=tmp_path / "labels.json")


def test_default_location_beside_a_bare_safetensors_file(tmp_path: Path) -> None:
    weights = tmp_path / "tiny.safetensors"
    weights.write_bytes(b"")
    assert default_location(weights, "abc").path == tmp_path / "tiny.labels.json"


def test_read_only_model_directory_falls_back_to_the_data_dir_and_seeds_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: ModelConfig
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shipped = LabelStore(model_dir / "labels.json", MODEL)
    shipped.add("L0.H1", "shipped label")
    data_dir = tmp_path / "data"
    monkeypatch.setattr(store_module, "user_labels_dir", lambda: data_dir / "labels")
    monkeypatch.setattr(store_module, "is_writable_location", lambda path: not path.is_relative_to(model_dir))

    where = default_location(model_dir, "sha256:ab/cd")
    assert where == store_module.LabelLocation(path=data_dir / "labels" / "sha256_ab_cd.json", seed=model_dir / "labels.json", beside_model=False)

    checkpoint = SimpleNamespace(name="tiny", fingerprint="sha256:ab/cd", config=config, path=model_dir)
    store = LabelStore.for_checkpoint(checkpoint)
    snapshot = store.read()
    assert [x.name for x in snapshot.labels] == ["shipped label"]
    assert any("not writable; changes will be saved to" in w for w in snapshot.warnings)
    store.add("L0.H2", "mine")  # creates the data directory
    assert [x.name for x in on_disk(where.path).labels] == ["shipped label", "mine"]
    assert [x.name for x in on_disk(model_dir / "labels.json").labels] == ["shipped label"]


def test_explicit_path_overrides_the_default(tmp_path: Path, config: ModelConfig) -> None:
    checkpoint = SimpleNamespace(name="tiny", fingerprint="abc", config=config, path=tmp_path)
    chosen = tmp_path / "elsewhere.json"
    assert LabelStore.for_checkpoint(checkpoint, chosen).path == chosen
    assert LabelStore.for_checkpoint(checkpoint).path == tmp_path / "labels.json"


def test_is_writable_location(tmp_path: Path) -> None:
    assert store_module.is_writable_location(tmp_path / "labels.json")
    assert not store_module.is_writable_location(tmp_path / "missing" / "labels.json")
