"""The one harness for the CLI tests: tiny-run flags, running ``ddpglab`` in this process
or in a child process, checking a refusal.

In-process (:func:`run_cli`) is the fast default: ``main(argv)`` with its streams captured.
A child process (:func:`run_cli_process`, :func:`start_cli_process`) is for what only a
real process shows: a signal that kills or stops it, its exit status as the shell sees
it. The child gets this folder on its path, so that an env a test registers under
``test_module:Name-v0`` is importable there too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import pytest

from ddpglab.cli import main

TESTS = Path(__file__).resolve().parent

# Tiny but complete runs: small networks and replay, no periodic evaluation, one torch
# thread. The fixtures' tiny configs (conftest.TINY) start from the same settings.
TINY_RUN: dict[str, Any] = {
    "agent.hidden": [32, 32],
    "agent.batch_size": 16,
    "replay.capacity": 1000,
    "train.eval_every": 0,
    "train.eval_episodes": 1,
    "train.torch_threads": 1,
}


def set_flags(overrides: dict[str, Any]) -> list[str]:
    """{"agent.hidden": [32, 32]} -> ["--set", "agent.hidden=[32,32]"]: the command-line
    form of config overrides."""
    flags: list[str] = []
    for key, value in overrides.items():
        flags += ["--set", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return flags


FAST = set_flags(TINY_RUN)


# -- in this process ------------------------------------------------------------------------


def run_cli(
    argv: list[str], capsys: pytest.CaptureFixture[str] | None = None
) -> tuple[int | str | None, str, str]:
    """main(argv) -> (exit status, stdout, stderr); argparse's SystemExit counts as a status.

    With ``capsys`` the streams are read from it; without (in a module-scoped fixture,
    where capsys is not available) they are redirected to strings while main runs. Any
    other exception propagates, so a test can catch one it expects."""
    if capsys is None:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            rc = _exit_status(argv)
        return rc, stdout.getvalue(), stderr.getvalue()
    rc = _exit_status(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _exit_status(argv: list[str]) -> int | str | None:
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


# -- in a child process ---------------------------------------------------------------------


def cli_command(argv: list[str]) -> list[str]:
    """``python -m ddpglab ARGV`` with this interpreter."""
    return [sys.executable, "-m", "ddpglab", *argv]


def cli_environment(**env: str) -> dict[str, str]:
    """This process's environment with this folder and sys.path importable, plus ``env``."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]), **env}


def run_cli_process(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m ddpglab ARGV`` run to its end, its output captured as text; ``env`` is
    added to the child's environment."""
    return subprocess.run(
        cli_command(argv), env=cli_environment(**env), capture_output=True, text=True
    )


def run_cli_forked(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``main(ARGV)`` in a child process forked from the study runner's fork server, which
    has imported torch and the trainer once (a fresh ``python -m ddpglab`` spends about
    2.5 s of CPU on its imports), run to its end: its exit status (minus the signal that
    killed it) and output as :func:`run_cli_process` gives them. The child's environment is
    the fork server's (this process's when the server started) plus ``env``. For the tests
    that start many short runs to kill them; what only a real process shows (a Ctrl-C while
    it imports, its exit status as the shell sees it) stays with :func:`run_cli_process`."""
    from ddpglab.study.local_backend import worker_context

    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder) / "out", Path(folder) / "err"
        out.touch(), err.touch()
        child = worker_context().Process(target=_forked_main, args=(argv, env, out, err))
        child.start()
        child.join()
        return subprocess.CompletedProcess(
            ["ddpglab", *argv], child.exitcode, out.read_text(), err.read_text()
        )


def _forked_main(argv: list[str], env: dict[str, str], out: Path, err: Path) -> None:
    """The child of :func:`run_cli_forked`: this folder importable (for envs registered as
    ``test_module:Name-v0``), ``env`` set, both streams to files, then ``main(argv)``, its
    status the process's as ``python -m ddpglab`` would exit (an exception's traceback on
    stderr and status 1)."""
    sys.path.insert(0, str(TESTS))
    os.environ.update(env)
    with open(out, "w") as stdout, open(err, "w") as stderr:
        os.dup2(stdout.fileno(), 1)
        os.dup2(stderr.fileno(), 2)
        sys.stdout, sys.stderr = stdout, stderr
        try:
            status = main(argv)
        except SystemExit as exit_:
            status = exit_.code
        except BaseException:
            traceback.print_exc()
            status = 1
        if status is not None and not isinstance(status, int):
            print(status, file=stderr)
            status = 1
        stdout.flush(), stderr.flush()
    os._exit(status or 0)


def start_cli_process(
    argv: list[str], env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen:
    """``python -m ddpglab ARGV`` started and left running (to be signalled); ``env`` is
    added to the child's environment, ``popen`` goes to subprocess.Popen."""
    return subprocess.Popen(cli_command(argv), env=cli_environment(**(env or {})), **popen)


# -- checks ---------------------------------------------------------------------------------


def assert_refused(rc: int | str | None, err: str, out_dir: Path, *mentions: str) -> None:
    """Status 2, one stderr line "ddpglab...error..." naming each of ``mentions``, no
    traceback, and nothing written at ``out_dir``."""
    assert rc == 2, (rc, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ddpglab")
    assert "error" in lines[0]
    for text in mentions:
        assert text in lines[0]
    # lexists, not Path.exists: a name too long makes the latter raise
    assert not os.path.lexists(out_dir), "nothing may be written for bad input"
