"""Folders written whole: built beside their place under a temporary name, then swapped in,
so a failed write leaves the previous folder intact (the report, an export's ``runs/``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def temporary_folder_for(target: Path) -> Path:
    """A fresh hidden folder beside ``target`` (unique, so concurrent writers never meet),
    with the permissions of any new folder: mkdtemp's 0700 would hide the result from the
    other users of a shared file system."""
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    return folder


def swap_in(built: Path, target: Path) -> None:
    """Put the folder ``built`` in the place of ``target``; the old ``target`` is moved aside
    first and deleted only once the new one is in place."""
    old = built.with_name(f"{built.name}-old")
    if target.exists():
        target.rename(old)
    built.rename(target)
    shutil.rmtree(old, ignore_errors=True)
