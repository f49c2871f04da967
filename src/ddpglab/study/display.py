"""The study's live display: one rich progress bar over all jobs, with an ETA."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class StudyProgress:
    """Episodes (or env steps) done over the study's total, and jobs done over jobs.

    Silent unless enabled and stderr is a terminal.
    """

    def __init__(self, name: str, jobs: int, total: int, unit: str, enabled: bool):
        console = Console(stderr=True)
        self.jobs, self.jobs_done, self.failed = jobs, 0, 0
        self.progress = Progress(
            TextColumn(f"[bold]study {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("{task.fields[jobs]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            disable=not (enabled and console.is_terminal and sys.stderr.isatty()),
        )
        self.task = self.progress.add_task("study", total=max(total, 1), jobs=self._jobs_text())

    def _jobs_text(self) -> str:
        failed = f", {self.failed} with failures" if self.failed else ""
        return f"jobs {self.jobs_done}/{self.jobs}{failed}"

    def __enter__(self) -> StudyProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def advance(self, units: int) -> None:
        """Count finished episodes (or env steps)."""
        if units:
            self.progress.advance(self.task, units)

    def job_finished(self, failed: bool) -> None:
        self.jobs_done += 1
        self.failed += failed
        self.progress.update(self.task, jobs=self._jobs_text())
