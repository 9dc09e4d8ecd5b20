"""Publishing a folder atomically: write it in a hidden staging folder beside its destination, then rename.

Nobody ever sees half a folder. While a process writes a staging folder it holds a lock on a file in
it, so a later run can tell a folder abandoned by a killed writer (and delete it) from one still
being written (and leave it alone). If two processes race to publish the same folder, the loser
keeps the winner's when it holds the same content.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl  # POSIX: a lock on a file in a staging folder tells whether its writer is still alive
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_STAGING_INFIX = ".partial-"
LOCK_NAME = ".writing.lock"
# A staging folder without its lock file (its writer killed within a moment of creating it) is stale after this.
_STALE_UNLOCKED_S = 600


def _writer_is_gone(staging: Path) -> bool:
    """Whether the process that wrote a staging folder has ended (it holds the lock on its lock file till then)."""
    if fcntl is None:
        return False  # no way to tell here: leave it
    try:
        handle = os.open(staging / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        # Killed between creating the folder and locking it, a moment's window: stale once it is old.
        return time.time() - staging.stat().st_mtime > _STALE_UNLOCKED_S
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(handle)  # releases the lock if it was taken
    return True


@contextmanager
def staging_folder(out_dir: Path) -> Iterator[Path]:
    """A new hidden folder beside out_dir to write into, after deleting those that killed runs left; gone afterwards.

    Each run has its own (named after its process and a random suffix), so no leftover ever blocks a retry.
    """
    remove_stale_staging(out_dir)
    staging = out_dir.parent / f".{out_dir.name}{_STAGING_INFIX}{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # nothing left once published; a half-written folder otherwise


def remove_stale_staging(out_dir: Path) -> None:
    """Delete the staging folders for out_dir that runs killed part-way left behind (never a live one)."""
    prefix = f".{out_dir.name}{_STAGING_INFIX}"
    for staging in out_dir.parent.iterdir():
        try:
            if (staging.name.startswith(prefix) and staging.is_dir() and not staging.is_symlink()
                    and _writer_is_gone(staging)):
                shutil.rmtree(staging, ignore_errors=True)
        except OSError:
            pass  # e.g. a read-only cache: the leftover is in nobody's way


@contextmanager
def writing_lock(staging: Path) -> Iterator[None]:
    """Hold a lock on a file in the staging folder while writing it, so that others can tell it is alive."""
    if fcntl is None:
        yield  # no file locks here: staging folders are never judged stale
        return
    handle = os.open(staging / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
        os.unlink(staging / LOCK_NAME)  # while still locked; the published set does not carry it
    finally:
        os.close(handle)


def publish(staging: Path, out_dir: Path, holds_the_same: Callable[[Path], bool]) -> None:
    """Rename the finished staging folder to out_dir; if another process won the race, use its folder.

    holds_the_same(out_dir) tells whether the folder that won holds what staging does.
    """
    try:
        os.rename(staging, out_dir)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not holds_the_same(out_dir):
            raise FileExistsError(
                f"could not move the synthetic data set into {out_dir}: {error.strerror}; "
                "another program wrote there meanwhile"
            ) from error
