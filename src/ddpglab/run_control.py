"""How a process guards its output folder and stops cleanly: one writer per folder, and
stop signals that let the caller save its state before it ends."""

from __future__ import annotations

import fcntl
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
