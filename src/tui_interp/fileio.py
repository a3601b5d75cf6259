"""Files the project reads and writes: one atomic write, one directory publish, one regular-file check.

Every file tui-interp writes (label files, theories, activation caches, checkpoints, model
cards) goes through `atomic_write` or `publish_dir`: write a temporary sibling, fsync it,
`os.replace` it over the target, fsync the directory. A crash at any point leaves the old
file or the new one, never a torn one, and a failed write leaves no temporary file behind.

Every file it reads that a user names (checkpoints, theories, split files, label files,
steering vectors) is checked with `regular_file` first, so a FIFO, a device or a directory
fails at once with one line instead of blocking forever or reading a device.

Core module: no torch, no faces.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from tui_interp.errors import TuiInterpError

log = logging.getLogger(__name__)

_NEW_FILE_MODE = 0o666  # before the umask, as open() would create it
_TEMP_SUFFIX = re.compile(r"\.[0-9a-f]{16}\.tmp")

Writer = Callable[[Path], None]


def temp_name(target: Path) -> Path:
    """The temporary sibling a write of `target` goes through (`.NAME.<16 hex>.tmp`)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")


def atomic_write(
    target: str | os.PathLike[str],
    data: bytes | str | Writer,
    *,
    error: type[TuiInterpError] = TuiInterpError,
) -> None:
    """Replace `target` with `data` (bytes, UTF-8 text, or a function that writes a given path).

    The file keeps the permission bits of the file it replaces. Raises `error` naming the file
    when it cannot be written.
    """
    target = Path(target)
    temp = temp_name(target)
    replaced = False
    try:
        mode = _file_mode(target)
        if callable(data):
            data(temp)
            if mode is not None:
                os.chmod(temp, mode)
            _fsync_path(temp)
        else:
            payload = data.encode("utf-8") if isinstance(data, str) else data
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), _NEW_FILE_MODE)
            try:
                if mode is not None:
                    _chmod(fd, temp, mode)
                _write_all(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(temp, target)
        replaced = True
    except OSError as e:
        raise error(f"cannot write {target}: {e.strerror or e}") from e
    finally:
        if not replaced:
            _unlink_quietly(temp)
    fsync_directory(target.parent)


def remove_stale_temps(target: Path) -> None:
    """Delete temporary files of `target` left by writers killed mid-write (call under a lock)."""
    prefix = f".{target.name}"
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and _TEMP_SUFFIX.fullmatch(name[len(prefix) :]):
            try:
                os.unlink(target.parent / name)
                log.info("removed a temp file left by an interrupted write: %s", name)
            except OSError as e:
                log.warning("cannot remove stale temp file %s: %s", name, e)


def publish_dir(build: Callable[[Path], None], out: Path, *, error: type[TuiInterpError] = TuiInterpError) -> None:
    """Build a directory in a temporary sibling with `build(tmp)`, then rename it to `out`.

    An existing `out` is moved aside first and removed after the rename, so `out` is at every
    moment the old directory or the new one.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        build(tmp)
        for entry in tmp.iterdir():
            if entry.is_file():
                _fsync_path(entry)
        fsync_directory(tmp)
        _replace_dir(tmp, out)
    except OSError as e:
        raise error(f"cannot write {out}: {e.strerror or e}") from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    fsync_directory(out.parent)


def regular_file(path: str | os.PathLike[str], what: str, *, error: type[TuiInterpError] = TuiInterpError) -> Path:
    """`path` if it is a regular file (symlinks followed), else `error` saying what it is.

    Checked with stat() before any open(), so a FIFO never blocks and a device is never read.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{p}: no such {what}") from None
    except OSError as e:
        raise error(f"{p}: cannot read the {what}: {e.strerror or e}") from e
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: {describe_kind(st.st_mode)}, expected a {what}")
    return p


def describe_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    return "is not a regular file"


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX); Windows cannot open directories for this."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as e:
        log.warning("cannot open %s to fsync it: %s", directory, e)
        return
    try:
        os.fsync(fd)
    except OSError as e:
        log.warning("cannot fsync directory %s: %s", directory, e)
    finally:
        os.close(fd)


def _replace_dir(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(old)
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:  # put the old directory back: `out` is never missing
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_mode(target: Path) -> int | None:
    """The permission bits of the file being replaced (None for a new file: the umask decides)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return None


def _chmod(fd: int, path: Path, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # Windows
        os.chmod(path, mode)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("cannot remove temp file %s: %s", path, e)
