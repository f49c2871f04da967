"""Live training display: a rich progress bar on a terminal, plain lines elsewhere.

On a terminal the bar shows the latest return, steps/s, elapsed and remaining time. When
stderr is not a terminal (a log file, CI, nohup) a bar would be invisible or garbage, so a
plain line goes to stderr every ``PLAIN_EVERY`` episodes of the slowest member, and once at
the end.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: A plain progress line every this many episodes of the slowest member.
PLAIN_EVERY = 10


class TrainProgress:
    """Progress over episodes (or env steps) of the slowest member: a bar when enabled and
    stderr is a terminal, plain lines on ``plain_stream`` (stderr) when enabled and it is
    not, nothing when disabled."""

    def __init__(self, members, episodes: int | None, steps: int | None, enabled: bool):
        self.members = members
        self.by_steps = episodes is None
        self.total = steps if self.by_steps else episodes
        console = Console(stderr=True)
        terminal = console.is_terminal and sys.stderr.isatty()
        self.plain_stream: TextIO | None = sys.stderr if enabled and not terminal else None
        self.plain_at = -1  # the slowest member's episodes at the latest plain line
        self.started: tuple[float, int] | None = None  # (wall_s, done) at the first update
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            disable=not (enabled and terminal),
        )
        self.task = self.progress.add_task("train", total=self.total, info="")

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, wall_s: float, step: int, member_steps: int) -> None:
        """Refresh with the elapsed time, the lockstep count and all members' env steps."""
        if self.progress.disable and self.plain_stream is None:
            return
        # a member a NaN stopped does not hold the others' progress back
        going = [m for m in self.members if m.error is None] or self.members
        slowest = min(m.episodes for m in going)
        done = step if self.by_steps else slowest
        last = [m.returns[-1] for m in self.members if m.returns]
        ret = f"return {sum(last) / len(last):9.1f}" if last else "return       -"
        speed = f"{member_steps / max(wall_s, 1e-9):7.0f} steps/s"
        if not self.progress.disable:
            self.progress.update(self.task, completed=done, info=f"{ret}  {speed}")
            return
        if self.started is None:
            self.started = (wall_s, done)  # a resumed run's pace counts from here
        finished = done >= self.total
        if finished or (slowest % PLAIN_EVERY == 0 and slowest > max(self.plain_at, 0)):
            self.plain_at = slowest
            unit = "step" if self.by_steps else "episode"
            line = f"train: {unit} {done}/{self.total}, {' '.join(ret.split())}, "
            line += f"{speed.strip()}"
            line += f", {wall_s:.0f} s elapsed"
            if not finished:
                line += f", eta {self._remaining(wall_s, done)}"
            print(line, file=self.plain_stream, flush=True)

    def _remaining(self, wall_s: float, done: int) -> str:
        """The time left at the pace since the first update; '?' before there is one."""
        since, done_then = self.started
        if done <= done_then or wall_s <= since:
            return "?"
        seconds = (wall_s - since) / (done - done_then) * (self.total - done)
        return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
