"""Atomic file writing, stale-file cleanup, run locks and JSON-lines helpers shared by every stage.

A temporary file is named `.NAME.HOST-PID.RANDOM.part` after its writer, so that a later run can tell the
debris of a killed writer (same host, process gone: removed) from the file a concurrent writer is still
filling (process alive, or another host on shared storage: left alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
_PART = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[^.]+\.part$")


class BusyError(RuntimeError):
    """Another live process holds the run lock of an output folder."""


def part_path(path: str | os.PathLike, folder: bool = False) -> Path:
    """A new, empty temporary file (or folder) beside `path`, named after this host and process."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, where = f".{path.name}.{_HOST}-{os.getpid()}.", path.parent
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=".part", dir=where))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=where)
    os.close(fd)
    return Path(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_parts(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Remove the `.part` files and folders under `folder` whose writer (on this host) is gone; returns them.

    Those of a live process, of another host, or not named after a writer are left alone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.rglob(".*.part") if recursive else folder.glob(".*.part")):
        match = _PART.match(path.name)
        if not match or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, command: str, output: str | None = None) -> Iterator[None]:
    """Hold `folder/.kidsasr.lock` for the block; a second run on the same folder fails at once with BusyError.

    The lock is the kernel's (flock), so a killed run never leaves a stale lock behind; the file holds the
    holder's host and pid for the message. `output`: the one file or folder in `folder` that the run writes (a
    folder replaced whole cannot hold its own lock, and a folder of many outputs is not the run's alone); the lock
    is then `folder/.OUTPUT.kidsasr.lock`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / (f".{output}.kidsasr.lock" if output else ".kidsasr.lock")
    with open(lock, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise BusyError(f"{folder / output if output else folder}: another run is writing here ({holder}); "
                            "wait for it or choose another output folder") from None
        f.seek(0)
        f.truncate()
        f.write(f"kidsasr {command}, host {socket.gethostname()}, pid {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def check_writable(folder: str | os.PathLike) -> None:
    """Raise PermissionError naming `folder` unless a file can be created in it (made if missing)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        part_path(folder / ".kidsasr-write-check").unlink()
    except OSError as e:
        raise PermissionError(f"{folder}: output folder is not writable ({e.strerror or e})") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.

    Readers never see a half-written file, and an interrupted run leaves the old file (or none).
    """
    path = Path(path)
    tmp_path = part_path(path)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_no}: invalid JSON line: {e.msg}") from e
