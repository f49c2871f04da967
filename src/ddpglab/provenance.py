"""Provenance of a run: the ddpglab commit it was made from and the library versions
that shape its numbers. The store records both in each run's row."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path


@functools.cache
def git_commit() -> str | None:
    """The commit of the git checkout that ddpglab's source is in, computed once per process.

    ``"<40 hex digits>-dirty"`` when tracked files under the package folder
    (``src/ddpglab``) differ from that commit, so a run made from edited code says so;
    untracked files and changes elsewhere in the checkout (tests, docs) do not count. None
    when git is missing, slow (over 5 s), the package is not tracked in a checkout (an
    installed wheel, or a copy inside some other repository's ignored folder) or the
    checkout has no commit yet.
    """
    package = Path(__file__).resolve().parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["LC_ALL"] = "C"

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "--no-optional-locks", "-C", str(package), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            env=env,
        ).stdout

    try:
        if not git("ls-files", "--", "__init__.py").strip():
            return None  # not tracked here: the enclosing repository is not ddpglab's
        status = git("status", "--porcelain=v2", "--branch", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    lines = status.splitlines()
    head = next((ln.split()[2] for ln in lines if ln.startswith("# branch.oid ")), None)
    if head is None or head == "(initial)":
        return None
    dirty = any(not ln.startswith("#") for ln in lines)
    return head + ("-dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape a run's numbers."""
    import gymnasium
    import numpy
    import torch

    import ddpglab

    return {
        "python": platform.python_version(),
        "ddpglab": ddpglab.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__,
    }
