"""All-or-nothing output: a set of files written under temporary names, published together.

Every file wsas writes for a user (separated stems and manifests, corpora, checkpoints, result
files) goes through :class:`OutputSet`::

    with OutputSet("out", ["a.wav", "a.json"], overwrite=False) as out:
        write_wav(out.temp("a.wav"))
        write_json(out.temp("a.json"))
    # here both exist, or (after any error or signal) neither of them, nor a temporary file

The set claims its folder with a lock (``fcntl.flock`` on a hidden file, released by the kernel
even when a run is killed), so two runs never write one folder at once; under the lock the
temporaries of an earlier killed run are swept. Publishing moves any old file of the set aside
first and puts it back if a rename fails, so with ``overwrite`` the old set is replaced as a
whole. A folder the set created is removed again when it fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import threading
from collections.abc import Iterable
from pathlib import Path

from wsas.errors import WsasError

TEMP_PREFIX = ".wsas-tmp-"  # temporaries (and old files moved aside) of a set being written
LOCK_NAME = ".wsas-lock"
DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT, SIGTERM and SIGHUP until the block ends (publishing and cleaning up must not
    stop half-way); outside the main thread signals never reach Python code anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class OutputSet:
    """Write the files ``names`` (relative to ``folder``) all or nothing.

    Before any work (on entering): the folder is created if needed and locked; stale
    temporaries of killed runs are swept; a name that exists refuses the set in one line unless
    ``overwrite``; a name that is an existing folder, or one of the ``protect``ed paths (the
    inputs), refuses it always. ``wait``: wait for another run's lock instead of refusing (for
    the library's own files, such as checkpoints). ``temp(name)`` gives the hidden path to write
    ``name`` to (a file, or a folder for ``dir_names``); on leaving without error every
    temporary is renamed to its name, otherwise none is and the temporaries are removed.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        names: Iterable[str],
        overwrite: bool = False,
        protect: Iterable[str | os.PathLike] = (),
        dir_names: Iterable[str] = (),
        wait: bool = False,
    ):
        self.folder = Path(folder)
        self.names = list(dict.fromkeys(names))
        self.dir_names = set(dir_names)
        self.overwrite = overwrite
        self.wait = wait  # for the lock: wait for another writer (else refuse in one line)
        self.protect = {Path(p).resolve() for p in protect}
        self._temps: dict[str, Path] = {}
        self._lock_fd: int | None = None
        self._created: Path | None = None  # the top folder this set created, if any

    def target(self, name: str) -> Path:
        return self.folder / name

    def __enter__(self) -> OutputSet:
        if self.folder.exists() and not self.folder.is_dir():
            raise WsasError(f"{self.folder}: exists and is not a folder")
        missing = [p for p in [self.folder, *self.folder.parents] if not p.exists()]
        self._created = missing[-1] if missing else None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock()
            self._sweep()
            self._check()
        except BaseException:
            self._abandon()
            raise
        return self

    def _lock(self) -> None:
        path = self.folder / LOCK_NAME
        while True:  # the lock file may be removed by a finishing run between open and flock
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise WsasError(
                    f"{self.folder}: another wsas run is writing there; wait for it to finish"
                ) from None
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    self._lock_fd = fd
                    return
            os.close(fd)

    def _sweep(self) -> None:
        for stale in self.folder.glob(TEMP_PREFIX + "*"):
            _remove(stale)

    def _check(self) -> None:
        for name in self.names:
            path = self.target(name)
            if path.resolve() in self.protect:
                raise WsasError(f"{path}: is an input and would be overwritten; choose another -o")
            if (path.is_dir() and name not in self.dir_names) or path.is_symlink():
                raise WsasError(f"{path}: exists and is not a file; move it away first")
        existing = [self.target(n) for n in self.names if self.target(n).exists()]
        if existing and not self.overwrite:
            more = f" (and {len(existing) - 1} more outputs)" if len(existing) > 1 else ""
            raise WsasError(f"{existing[0]}: exists{more}; pass --overwrite to replace")

    def temp(self, name: str) -> Path:
        """The hidden temporary path that becomes ``folder/name`` when the set is published."""
        if name not in self.names:
            raise ValueError(f"{name!r} is not one of this output set's names")
        if name not in self._temps:
            self._temps[name] = self.folder / f"{TEMP_PREFIX}{os.getpid()}-{len(self._temps)}"
            if name in self.dir_names:
                self._temps[name].mkdir()
        return self._temps[name]

    def __exit__(self, kind, err, tb) -> None:
        with signals_deferred():
            if kind is None:
                try:
                    self._publish()
                except BaseException:
                    self._abandon()
                    raise
                self._unlock()
            else:
                self._abandon()

    def _publish(self) -> None:
        unwritten = [n for n in self.names if n not in self._temps]
        if unwritten:
            raise RuntimeError(f"output set closed without writing {unwritten}")
        aside: dict[Path, Path] = {}
        done: list[Path] = []
        try:
            for name, tmp in self._temps.items():
                target = self.target(name)
                if target.exists():
                    aside[target] = tmp.with_name(tmp.name + "-old")
                    os.replace(target, aside[target])
                os.replace(tmp, target)
                done.append(target)
        except BaseException:
            for target in done:
                _remove(target)
            for target, old in aside.items():
                os.replace(old, target)
            raise
        for old in aside.values():
            _remove(old)

    def _abandon(self) -> None:
        for tmp in self._temps.values():
            _remove(tmp)
        self._unlock()
        if self._created is not None:
            for path in [self.folder, *self.folder.parents]:
                if not path.is_dir() or any(path.iterdir()):
                    break
                path.rmdir()
                if path == self._created:
                    break

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.folder / LOCK_NAME)
            os.close(self._lock_fd)
            self._lock_fd = None


def write_file(path: str | os.PathLike, write, overwrite: bool = True) -> Path:
    """Write one file all or nothing: ``write(tmp_path)`` fills a temporary that is renamed to
    ``path`` when it returns (an existing file is replaced unless ``overwrite`` is False)."""
    path = Path(path)
    with OutputSet(path.parent, [path.name], overwrite=overwrite, wait=True) as out:
        write(out.temp(path.name))
    return path
