"""Live training display: one rich progress bar with the latest return and steps/s."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class TrainProgress:
    """Progress over episodes (or env steps) of the slowest member; silent unless enabled
    and stderr is a terminal."""

    def __init__(self, members, episodes: int | None, steps: int | None, enabled: bool):
        self.members = members
        self.by_steps = episodes is None
        total = steps if self.by_steps else episodes
        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not (enabled and console.is_terminal and sys.stderr.isatty()),
        )
        self.task = self.progress.add_task("train", total=total, info="")

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, wall_s: float, step: int, member_steps: int) -> None:
        """Refresh with the elapsed time, the lockstep count and all members' env steps."""
        if self.progress.disable:
            return
        done = step if self.by_steps else min(m.episodes for m in self.members)
        steps = member_steps
        last = [m.returns[-1] for m in self.members if m.returns]
        info = f"return {sum(last) / len(last):9.1f}" if last else "return       -"
        info += f"  {steps / max(wall_s, 1e-9):7.0f} steps/s"
        self.progress.update(self.task, completed=done, info=info)
