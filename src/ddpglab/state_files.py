"""Full training-state files and small text files, written atomically and read back exactly.

A state file is one uncompressed ``.npz`` file. Every numpy array of the state is its own
entry, which numpy writes in chunks, so saving a 1e6-transition replay buffer needs no
second copy of it in memory. Everything else (tensors, RNG states, counters, lists) goes in
one more entry, ``__state__``: a ``torch.save`` blob in which each array is replaced by a
reference to its entry. The file is written beside its final name, fsynced and renamed over
it, so a kill during the write leaves the previous state file whole.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

ARRAY_REF = "__array__"  # {ARRAY_REF: entry name} stands for an array of the npz
STATE_ENTRY = "__state__"


def _split(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """A copy of ``obj`` with every numpy array moved into ``arrays`` (name -> array)."""
    if isinstance(obj, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = obj
        return {ARRAY_REF: name}
    if isinstance(obj, dict):
        return {key: _split(value, arrays) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_split(value, arrays) for value in obj)
    return obj


def _join(obj: Any, npz: Any) -> Any:
    """The inverse of :func:`_split`: references replaced by the arrays they name."""
    if isinstance(obj, dict):
        if set(obj) == {ARRAY_REF}:
            return npz[obj[ARRAY_REF]]
        return {key: _join(value, npz) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_join(value, npz) for value in obj)
    return obj


def torch_module() -> Any:
    """torch, imported on first use: the CLI imports this module and must start fast."""
    import torch

    return torch


def save_state(path: str | Path, state: dict[str, Any]) -> int:
    """Write ``state`` to ``path`` atomically; returns the file's size in bytes.

    ``state`` may nest dicts, lists and tuples of numpy arrays, torch tensors and plain
    Python values (numbers, strings, None, bools, RNG state dicts).
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    rest = _split(state, arrays)
    blob = io.BytesIO()
    torch_module().save(rest, blob)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as handle:
        np.savez(handle, **{STATE_ENTRY: np.frombuffer(blob.getbuffer(), np.uint8)}, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return path.stat().st_size


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a small text file beside ``path``, fsync it and rename it over ``path``:
    readers, and the file system after a crash, see the old file or the new one, never
    half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def load_state(path: str | Path, arrays: bool = True) -> dict[str, Any]:
    """Read a state written by :func:`save_state`; with ``arrays=False``, only what is not
    an array (counters, config, seeds; arrays stay as references), which is quick."""
    with np.load(path, allow_pickle=False) as npz:
        blob = io.BytesIO(npz[STATE_ENTRY].tobytes())
        # Tensors saved on a GPU come back on the CPU; each owner moves them to its device.
        rest = torch_module().load(blob, map_location="cpu", weights_only=True)
        return _join(rest, npz) if arrays else rest


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the OS allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
