"""The summary a finished ``ddpglab train`` prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ddpglab.summary import TrainSummary


def print_summary(summary: TrainSummary, out: Path, last: int = 10) -> None:
    """One row per member: episodes, env steps, mean of the last returns, final evaluation."""
    table = Table(title=f"{summary.env_id}: {len(summary.members)} member(s)")
    table.add_column("seed", justify="right")
    table.add_column("episodes", justify="right")
    table.add_column("env steps", justify="right")
    table.add_column(f"mean return, last {last}", justify="right")
    table.add_column("eval return", justify="right")
    for m in summary.members:
        tail = f"{np.mean(m.returns[-last:]):.1f}" if m.returns else "-"
        ev = f"{m.eval_return:.1f}" if m.eval_return is not None else "-"
        table.add_row(str(m.seed), str(m.episodes), str(m.env_steps), tail, ev)
    console = Console()
    console.print(table)
    console.print(
        f"{summary.wall_s:.1f} s wall, {summary.env_steps_per_s:.0f} env steps/s; "
        f"results in {out}/ (results.sqlite, curve.png, summary.json)"
    )
