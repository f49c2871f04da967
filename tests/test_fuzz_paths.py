"""Bad paths given to ``ddpglab train`` and ``ddpglab study`` (missing files, names too
long, an ``--out`` that is a file, below a file, in a read-only folder or holding another
run) are refused as promised, and nothing is written (issue 9). The seam and the checks
are in fuzz_support.py."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import assert_outcome_refused, dump, invoke


def _read_only_folder(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder nobody may write in. Where permissions do not stop this user (root), the
    refusal the kernel gives anyone else is simulated: creating a folder or opening a file
    to create it right in this folder fails with EACCES (os.mkdir under Path.mkdir and
    os.makedirs, os.open). A write that bypasses both (builtin open, sqlite) really lands
    in the folder, and the test's check that nothing was left finds it."""
    folder = tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    (folder / "probe").unlink()

    def refused(path: Any, dir_fd: int | None) -> bool:
        return dir_fd is None and Path(os.path.abspath(os.fspath(path))).parent == folder

    def denied(path: Any) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    real_mkdir, real_open = os.mkdir, os.open

    def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if refused(path, dir_fd):
            raise denied(path)
        real_mkdir(path, mode, dir_fd=dir_fd)

    def open_(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & os.O_CREAT and refused(path, dir_fd) and not os.path.lexists(path):
            raise denied(path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    return folder


# Each makes (input file, --out) in a temporary folder; at least one of them is bad.
PathCase = Callable[[Path, Path, pytest.MonkeyPatch], tuple[Path, Path]]
PATH_CASES: dict[str, PathCase] = {
    "input missing": lambda tmp, good, mp: (tmp / "missing.yaml", tmp / "out"),
    "input is a folder": lambda tmp, good, mp: (tmp, tmp / "out"),
    "input name too long": lambda tmp, good, mp: (tmp / ("x" * 300), tmp / "out"),
    "input below a file": lambda tmp, good, mp: (good / "spec.yaml", tmp / "out"),
    "out name too long": lambda tmp, good, mp: (good, tmp / ("o" * 300)),
    "out below a file": lambda tmp, good, mp: (good, good / "out"),
    "out in a read-only folder": lambda tmp, good, mp: (
        good,
        _read_only_folder(tmp, mp) / "out",
    ),
}


@pytest.mark.parametrize("command", ["train", "study"])
@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_a_bad_path_is_refused(stop_before_training, capsys, monkeypatch, tmp_path, command, case):
    good = tmp_path / "good.yaml"
    good.write_text(dump({"name": "s", "seeds": 1}) if command == "study" else dump({}))
    given_file, out = PATH_CASES[case](tmp_path, good, monkeypatch)
    if command == "train":
        argv = ["train", "--config", str(given_file), "--out", str(out)]
    else:
        argv = ["study", str(given_file), "--out", str(out)]
    assert_outcome_refused(invoke(argv, capsys), out)
    assert good.read_text().startswith(("name", "{}"))  # the file beside is untouched
    # Nothing written anywhere else either (the read-only folder stays empty).
    left = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")}
    assert left <= {"good.yaml", "read-only"}, left


@pytest.mark.parametrize("command", ["train", "study"])
def test_an_out_that_is_a_file_is_refused_and_left_as_it_was(
    stop_before_training, capsys, tmp_path, command
):
    good, out = tmp_path / "good.yaml", tmp_path / "out"
    good.write_text(dump({"name": "s", "seeds": 1}) if command == "study" else dump({}))
    out.write_bytes(b"not a folder")
    argv = ["train", "--config", str(good)] if command == "train" else ["study", str(good)]
    outcome = invoke([*argv, "--out", str(out)], capsys)
    assert outcome.status == 2 and not outcome.accepted
    assert len(outcome.stderr.strip().splitlines()) == 1 and "Traceback" not in outcome.stderr
    assert out.read_bytes() == b"not a folder"


@pytest.mark.parametrize("command", ["train", "study"])
def test_an_out_holding_a_train_run_is_refused_and_left_as_it_was(
    stop_before_training, capsys, tmp_path, command
):
    good, out = tmp_path / "good.yaml", tmp_path / "out"
    good.write_text(dump({"name": "s", "seeds": 1}) if command == "study" else dump({}))
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"a train run's store")
    argv = ["train", "--config", str(good)] if command == "train" else ["study", str(good)]
    outcome = invoke([*argv, "--out", str(out)], capsys)
    assert outcome.status == 2 and not outcome.accepted
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and "--overwrite" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["results.sqlite"]
    assert (out / "results.sqlite").read_bytes() == b"a train run's store"
