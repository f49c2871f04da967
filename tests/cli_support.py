"""Helpers shared by the CLI tests: tiny-run flags, running main(), checking a refusal."""

from __future__ import annotations

from pathlib import Path

from ddpglab.cli import main

# Tiny but complete runs: small networks and replay, no periodic evaluation, one torch thread.
FAST = [
    "--set", "agent.hidden=[32,32]",
    "--set", "agent.batch_size=16",
    "--set", "replay.capacity=1000",
    "--set", "train.eval_every=0",
    "--set", "train.eval_episodes=1",
    "--set", "train.torch_threads=1",
]  # fmt: skip


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """main(argv) -> (exit status, stdout, stderr); argparse's SystemExit counts as a status."""
    try:
        rc = main(argv)
    except SystemExit as exit_:
        rc = exit_.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_refused(rc: int, err: str, out_dir: Path, *mentions: str) -> None:
    assert rc == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ddpglab")
    assert "error" in lines[0]
    for text in mentions:
        assert text in lines[0]
    assert not out_dir.exists(), "nothing may be written for bad input"
