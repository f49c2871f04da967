"""How a process guards its output folder and stops cleanly: one writer per folder, and
stop signals that let the caller save its state before it ends."""

from __future__ import annotations

import fcntl
import importlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ddpglab.config import ConfigError


@contextmanager
def folder_lock(folder: Path, refusal: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.lock`` while inside; if another process holds
    it, raise ``ConfigError(refusal)`` at once (one writer per output folder)."""
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(refusal) from None
        yield


def folder_locked(folder: Path) -> bool | None:
    """Whether a process holds ``folder/.lock`` (:func:`folder_lock`) now, read from
    Linux's ``/proc/locks`` without touching the lock (taking it, even for a moment, could
    refuse a run starting then); None where that cannot be told."""
    try:
        lock = (folder / ".lock").stat()
        table = Path("/proc/locks").read_text()
    except FileNotFoundError:  # no lock file: nothing ever held it; no /proc: cannot tell
        return False if Path("/proc/locks").exists() else None
    except OSError:
        return None
    device = f"{os.major(lock.st_dev):02x}:{os.minor(lock.st_dev):02x}:{lock.st_ino}"
    return any(
        fields[1] == "FLOCK" and fields[5] == device
        for fields in (line.split() for line in table.splitlines())
        if len(fields) > 5 and fields[1] != "->"  # "->": a process waiting, not holding
    )


@contextmanager
def handle_stop_signals(note: Callable[[int], None]) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT call ``note(signum)`` instead of stopping the
    process, so that the caller can save its state first and then stop.

    SIGINT stays ignored where it was (a study worker: the driver alone stops it). Only
    the main thread may handle signals; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watched = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        watched.append(signal.SIGINT)
    previous = {
        signum: signal.signal(signum, lambda signum, _frame: note(signum)) for signum in watched
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def import_holding_sigint(*modules: str) -> None:
    """Import ``modules`` with SIGINT held back until they are in, then raise the Ctrl-C
    that came meanwhile as a KeyboardInterrupt.

    torch's import runs Python code called from C++ (pybind11); a KeyboardInterrupt raised
    there cannot unwind through the C++ frames, and the process aborts with "terminate
    called after throwing an instance of 'pybind11::error_already_set'" instead of ending
    in one line. Only the main thread handles signals; elsewhere the import runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        for name in modules:
            importlib.import_module(name)
        return
    came: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: came.append(signum))
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        signal.signal(signal.SIGINT, previous)
    if came and previous is not signal.SIG_IGN:
        raise KeyboardInterrupt
