"""Writing outputs: atomic files, one run's files per folder, a lock per folder.

The output-folder contract (README, "Output folders"): a run writes into a fresh folder
beside its ``--out`` and swaps it in whole when it ends (finished, failed or interrupted),
so ``--out`` holds the files of one run only, never a new summary.json beside an older
trace.csv. Anything that goes wrong before the swap leaves the previous folder as it was.
``--out`` is checked, by creating that fresh folder, before any training starts.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from kclf.errors import UsageError


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temporary file beside ``path`` and rename: readers never see a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is for others to read too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def ctrl_c_waits():
    """Hold Ctrl-C while the files are renamed into place, then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda *_: received.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def usable_folder(path: Path | str, option: str = "--out", shown: Path | None = None) -> Path:
    """``path`` if it is (or can become) a writable folder, else a one-line UsageError.
    ``shown``: the --out the user gave, when ``path`` is the folder it goes in."""
    path = Path(path)
    where = f"{option} {shown}: {path}" if shown is not None else f"{option} {path}"
    if path.exists() and not path.is_dir():
        raise UsageError(f"{where} is a file, not a folder; expected a folder to write into")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.TemporaryFile(dir=path)
    except OSError as exc:
        raise UsageError(f"{where} cannot be written ({exc.strerror or exc}); expected a folder "
                         "you can create and write") from None
    probe.close()
    return path


MARK = "summary.json"  # what every run writes: a folder with one is a run's to replace


class StagedFolder:
    """A fresh folder beside ``final`` that replaces it whole on :meth:`commit`.

    Creating it is the --out check: a file in the way, a read-only or impossible place, a
    folder holding files no run wrote (your project) fails here, in one line, before
    anything has run.
    """

    def __init__(self, final: Path | str, option: str = "--out"):
        self.final = Path(final)
        if self.final.exists() and not self.final.is_dir():
            raise UsageError(f"{option} {self.final} is a file, not a folder; expected a folder "
                             "to write into")
        here, target = Path.cwd().resolve(), self.final.resolve()
        if target == here or target in here.parents:
            raise UsageError(f"{option} {final} holds the current folder; expected a folder of its "
                             "own (a run replaces its folder whole)")
        if self.final.is_dir() and not (self.final / MARK).exists() and any(self.final.iterdir()):
            raise UsageError(f"{option} {final} holds files no kclf run wrote (no {MARK}); expected "
                             "an empty folder or an earlier run's (a run replaces its folder whole)")
        parent = usable_folder(self.final.parent, option, shown=self.final)
        self.path = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.final.name}.new-"))
        os.chmod(self.path, 0o777 & ~_umask())

    def commit(self) -> Path:
        """Swap the new folder in for ``final`` (the old one is removed)."""
        old = None
        with ctrl_c_waits():  # never the old folder gone and the new one not yet in place
            if self.final.exists():
                old = Path(tempfile.mkdtemp(dir=self.final.parent, prefix=f".{self.final.name}.old-"))
                os.replace(self.final, old / "x")
            os.replace(self.path, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class FolderLock:
    """An exclusive lock on a folder (``.kclf.lock`` inside it) for one command at a time."""

    NAME = ".kclf.lock"

    def __init__(self, folder: Path | str, what: str = "kclf"):
        self.folder = Path(folder)
        self.what = what
        self.fh = None

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.folder / self.NAME, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise UsageError(f"--out {self.folder}: {holder} is writing there now; expected a "
                             "folder no other kclf command is using (wait for it or pick another --out)") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"{self.what} (pid {os.getpid()})")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
        return False
