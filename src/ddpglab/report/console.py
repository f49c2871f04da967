"""The summary a finished ``ddpglab train`` prints."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from ddpglab.report.scores import LAST, mean_of_last
from ddpglab.summary import TrainSummary


def print_summary(summary: TrainSummary, out: Path, last: int = LAST) -> None:
    """One row per member: episodes, env steps, its score (the mean return of its last
    ``last`` episodes, as ``ddpglab report`` scores a run), final evaluation."""
    table = Table(title=f"{summary.env_id}: {len(summary.members)} member(s)")
    table.add_column("seed", justify="right")
    table.add_column("episodes", justify="right")
    table.add_column("env steps", justify="right")
    table.add_column("score", justify="right")
    table.add_column("eval return", justify="right")
    for m in summary.members:
        score = f"{mean_of_last(m.returns, last):.1f}" if m.returns else "-"
        ev = f"{m.eval_return:.1f}" if m.eval_return is not None else "-"
        table.add_row(str(m.seed), str(m.episodes), str(m.env_steps), score, ev)
    console = Console()
    console.print(table)
    console.print(f"score: mean of the last {last} episodes (all when fewer), as in ddpglab report")
    console.print(
        f"{summary.wall_s:.1f} s wall, {summary.env_steps_per_s:.0f} env steps/s; "
        f"results in {out}/ (results.sqlite, curve.png, summary.json)"
    )
