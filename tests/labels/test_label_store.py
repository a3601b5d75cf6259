"""The label store: transactions, fingerprint binding, locations, refusal to overwrite, crash safety."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from tui_interp.errors import ComponentError, LabelStoreError
from tui_interp.labels import Label, LabelNotFoundError, LabelStore, ModelRef, default_location, parse_label_file
from tui_interp.labels import store as store_module
from tui_interp.components import parse_component
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
    assert sorted(p.name for p in store.path.parent.iterdir()) == [".labels.json.lock", "labels.json"]


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
    assert sorted(p.name for p in store.path.parent.iterdir()) == [".labels.json.lock", "labels.json"]


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
    held = filelock.FileLock(str(store.path.with_name(".labels.json.lock")))
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
    assert len(errors) == 1 and "another process has held the label lock" in str(errors[0])
    assert not store.path.exists()


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
