"""Benchmark: label files of 10, 1,000 and 20,000 labels with evidence: dump, parse, a store transaction.

    python benchmarks/bench_labels.py [--sizes 10,1000,20000] [--repeat N] [--rev GIT_REV] [--dir DIR]

Three operations per size, each timed for the label package as it is now (`labels`) and for the
baseline measured in the same run, plain `json` (`json`):

- dump:  `dump_label_file(f)` vs `json.dumps(f.to_document(), indent=2, ensure_ascii=False) + "\\n"`
- parse: `parse_label_file(text)` vs `json.loads(text)` then the same validation
  (`label_file_from_document`); `cold` clears any process-wide memo first (a fresh CLI process),
  `warm` parses the text this process just wrote (a long-lived TUI)
- add:   one full `LabelStore.add` transaction on a real-disk file (lock, re-read, parse, merge,
  dump, temp file, fsync, rename), with the store's dump/parse swapped for each implementation;
  `cold` as in a fresh `tui-interp label add` process, `warm` as in the TUI adding one after another

`--rev REV` also times the label-file format module as it was at git revision REV (e.g. the
hand-written pretty-printer and chunk memo that `f5cf530` had), read with `git show`, so a past
decision can be re-measured against plain json on any machine. Prints medians and the ratio of
each implementation to the json baseline. Fixed seed; interleaved runs (A B A B ...) so background
load hits every implementation alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tui_interp.components import parse_component
from tui_interp.labels import Label, LabelFile, LabelStore, ModelRef
from tui_interp.labels import fileformat as current_format
from tui_interp.labels import store as store_module

REPO = Path(__file__).resolve().parent.parent
FORMAT_PATH = "src/tui_interp/labels/fileformat.py"
MODEL = ModelRef(name="bench-model", fingerprint="0123456789abcdef" * 4)
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

CACHED_ON_LABELS = ("_chunk",)  # what a past format module cached on each Label (f5cf530)

Dump = Callable[[LabelFile], str]
Parse = Callable[[str, str], LabelFile]


# ---------------------------------------------------------------- fixture


def make_label_file(n: int, seed: int = 0) -> LabelFile:
    """`n` labels on MLP neurons (the realistic big file: one label per neuron), each with evidence."""
    rng = random.Random(seed)
    labels = []
    per_layer = max(1, -(-n // 12))
    for i in range(n):
        component = parse_component(f"L{i // per_layer}.N{i % per_layer}")
        evidence = (
            {
                "kind": "ablation",
                "metric": "loss",
                "value": round(rng.uniform(0, 5), 4),
                "command": f"tui-interp ablate model --ablate {component}",
            },
            {
                "kind": "max-activating",
                "top_tokens": [rng.choice(["the", " of", "é", "∑", "\t", '"q"', "0"]) for _ in range(5)],
                "scores": [round(rng.random(), 3) for _ in range(5)],
                "window": {"from": rng.randrange(64), "to": 64 + rng.randrange(64)},
            },
        )
        labels.append(
            Label(
                component=component,
                name=f"neuron {i}: fires on {rng.choice(['digits', 'quotes', 'é accents', 'indentation'])}",
                note="found by ablation\nchecked on held-out text" if i % 3 == 0 else "",
                tags=("mlp", f"layer{i // per_layer}") if i % 2 == 0 else ("mlp",),
                evidence=evidence,
                created=T0,
                updated=T0 + timedelta(seconds=i),
            )
        )
    return LabelFile(model=MODEL, labels=tuple(labels))


# ---------------------------------------------------------------- implementations


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_dump(label_file: LabelFile) -> str:
    return json.dumps(label_file.to_document(), indent=2, ensure_ascii=False) + "\n"


def json_parse(text: str, source: str) -> LabelFile:
    return current_format.label_file_from_document(json.loads(text, parse_constant=_reject_constant), source)


class Impl:
    """One way to write and read label files, with whatever process-wide memo it keeps."""

    def __init__(self, name: str, dump: Dump, parse: Parse, module: types.ModuleType | None = None) -> None:
        self.name, self.dump, self.parse, self.module = name, dump, parse, module

    def forget(self, label_file: LabelFile | None = None) -> None:
        """Start cold, as a fresh process would: clear the memo and the text cached on labels, if any."""
        memo = getattr(self.module, "_memo", None)
        if isinstance(memo, dict):
            memo.clear()
        for label in label_file.labels if label_file is not None else ():
            for attr in CACHED_ON_LABELS:
                label.__dict__.pop(attr, None)


def from_revision(rev: str) -> Impl:
    """The label-file format module as it was at git revision `rev`."""
    source = subprocess.run(["git", "show", f"{rev}:{FORMAT_PATH}"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    module = types.ModuleType(f"fileformat_at_{rev}")
    module.__file__ = f"{rev}:{FORMAT_PATH}"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # our own file, from our own history
    return Impl(f"rev {rev}", module.dump_label_file, module.parse_label_file, module)


@contextmanager
def store_using(impl: Impl) -> Iterator[None]:
    """LabelStore with its file format swapped for `impl`'s."""
    saved = store_module.dump_label_file, store_module.parse_label_file
    store_module.dump_label_file, store_module.parse_label_file = impl.dump, impl.parse
    try:
        yield
    finally:
        store_module.dump_label_file, store_module.parse_label_file = saved


# ---------------------------------------------------------------- timing


def interleaved(fns: dict[str, Callable[[], object]], repeat: int, before: dict[str, Callable[[], None]] | None = None) -> dict[str, float]:
    """Median seconds of each fn; one warm-up each, then runs interleaved. `before[k]` runs untimed before each run."""
    before = before or {}
    for k, fn in fns.items():
        before.get(k, lambda: None)()
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            before.get(k, lambda: None)()
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def report(size: int, operation: str, medians: dict[str, float]) -> None:
    base = medians["json"]
    cells = []
    for name, t in medians.items():
        ratio = "" if name == "json" else f" ({t / base:.2f}x json)"
        cells.append(f"{name} {t * 1e3:9.2f} ms{ratio}")
    print(f"{size:>6,} labels  {operation:<10}  " + "   ".join(cells), flush=True)


def bench_size(n: int, impls: list[Impl], repeat: int, directory: Path) -> None:
    label_file = make_label_file(n)
    text = json_dump(label_file)
    for impl in impls:
        if impl.dump(label_file) != text:
            raise SystemExit(f"{impl.name}: dump differs from json.dumps(indent=2, ensure_ascii=False)")
    reps = max(3, repeat // max(1, n // 1000))

    # dump cold: labels as a full parse makes them (nothing remembered); warm: labels dumped before
    copies = {impl.name: make_label_file(n) for impl in impls}
    dumps = {impl.name: (lambda i=impl: i.dump(copies[i.name])) for impl in impls}
    report(n, "dump cold", interleaved(dumps, reps, before={impl.name: (lambda i=impl: i.forget(copies[i.name])) for impl in impls}))
    report(n, "dump warm", interleaved(dumps, reps))

    parse = {impl.name: (lambda i=impl: i.parse(text, "labels.json")) for impl in impls}
    report(n, "parse cold", interleaved(parse, reps, before={impl.name: (lambda i=impl: i.forget()) for impl in impls}))
    for impl in impls:
        impl.dump(label_file)  # what a process that wrote this file remembers
    report(n, "parse warm", interleaved(parse, reps))

    paths = {}
    for impl in impls:
        paths[impl.name] = directory / impl.name.replace(" ", "_") / "labels.json"
        paths[impl.name].parent.mkdir()
        paths[impl.name].write_text(text, encoding="utf-8")
    counter = iter(range(10**9))

    def add(impl: Impl) -> Callable[[], object]:
        store = LabelStore(paths[impl.name], MODEL)

        def go() -> object:
            with store_using(impl):
                # a new label each time, on a component that sorts last: the file grows by one per run
                component = f"L99.N{next(counter)}"
                return store.add(component, "added by the benchmark", tags=["bench"], evidence=[{"kind": "ablation", "value": 1.0}])

        return go

    transactions = {impl.name: add(impl) for impl in impls}
    report(n, "add cold", interleaved(transactions, reps, before={impl.name: (lambda i=impl: i.forget()) for impl in impls}))
    report(n, "add warm", interleaved(transactions, reps))
    for impl in impls:
        final = paths[impl.name].read_text(encoding="utf-8")
        if json_dump(json_parse(final, "check")) != final:
            raise SystemExit(f"{impl.name}: the store wrote a file that is not in canonical form")


def filesystem(path: Path) -> str:
    try:
        out = subprocess.run(["df", "-T", str(path)], check=True, capture_output=True, text=True).stdout.splitlines()[-1].split()
        return out[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown filesystem"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,20000", help="comma-separated label counts")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per operation at 1,000 labels or fewer (fewer above)")
    parser.add_argument("--rev", action="append", default=[], help="also time the format module at this git revision")
    parser.add_argument("--dir", type=Path, default=None, help="where store transactions write (default: a temp dir; use a real disk)")
    args = parser.parse_args()

    impls = [
        Impl("json", json_dump, json_parse),
        Impl("labels", current_format.dump_label_file, current_format.parse_label_file, current_format),
    ]
    impls.extend(from_revision(rev) for rev in args.rev)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, json C accelerator: "
        f"{json.decoder.c_scanstring is not None}"
    )
    directory = Path(tempfile.mkdtemp(prefix="bench-labels-", dir=args.dir))
    print(f"store transactions write in {directory} ({filesystem(directory)})")
    print("medians; ratio = implementation / plain json measured in the same run")
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            bench_size(n, impls, args.repeat, Path(tempfile.mkdtemp(dir=directory)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
