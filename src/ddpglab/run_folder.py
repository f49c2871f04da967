"""The output folder of ``ddpglab train``: what it holds, how it is refused or cleared, and
:func:`train`, the Python API that fills it.

A run folder holds ``config.yaml`` (the resolved config), ``results.sqlite`` (the store),
``checkpoints/`` (actor files), ``curve.png``, ``summary.json`` and, while training,
``state.npz`` (the full state to resume from; kept at the end with ``train.keep_state``,
to train the run further); with ``--tensorboard`` also
``tensorboard/``. This module sits above the training and report layers: it is where a
training run and its learning-curve figure meet.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ddpglab.config import Config, ConfigError, to_yaml
from ddpglab.report.curves import plot_learning_curves, run_title
from ddpglab.report.export import EXPORT_MARKER
from ddpglab.run_control import folder_lock
from ddpglab.state_files import write_text_atomic
from ddpglab.store import ResultsStore
from ddpglab.summary import TrainSummary, learning_warning
from ddpglab.training.loop import Trainer

# What a finished or running ``ddpglab train`` leaves in its output folder.
RUN_ARTIFACTS = (
    "results.sqlite",
    "results.sqlite-wal",
    "results.sqlite-shm",
    "config.yaml",
    "summary.json",
    "curve.png",
    "checkpoints",
    "tensorboard",
    "state.npz",
    "state.npz.tmp",
)

#: What the commands derived from a run write into its folder by default (``report``,
#: ``export`` without ``--to``, ``animate`` without ``--to``; ``enjoy`` writes nothing):
#: they describe the run, so they go with it. ``export/runs`` only when it carries
#: :data:`EXPORT_MARKER` (export refuses to replace any other ``runs/`` there too).
DERIVED_OUTPUTS = (
    "report",
    "export/runs",
    "export/episodes.parquet",
    "export/replay_stats.parquet",
    "animation.gif",
    "animation.mp4",
)

#: The temporary names those commands write under before renaming into place (a killed
#: command leaves them behind).
DERIVED_LEFTOVERS = (
    ".report.tmp-*",
    ".animation.tmp.gif",
    ".animation.tmp.mp4",
    "export/.runs.tmp-*",
    "export/.episodes.parquet.tmp-*",
    "export/.replay_stats.parquet.tmp-*",
)


def _run_outputs(out: Path) -> list[Path]:
    """The paths in ``out`` that a train run or a command derived from it wrote."""
    found = [out / name for name in RUN_ARTIFACTS + DERIVED_OUTPUTS if (out / name).exists()]
    found = [
        path
        for path in found
        if path.name != "runs" or (path / EXPORT_MARKER).exists()  # a user's own runs/ stays
    ]
    return found + [path for pattern in DERIVED_LEFTOVERS for path in sorted(out.glob(pattern))]


def check_out_dir(out: Path, overwrite: bool) -> list[Path]:
    """Refuse an ``out`` that is not a folder, or that holds another run (or what was
    derived from one) unless ``overwrite``; returns what overwriting will remove. Writes
    nothing."""
    try:  # even looking at the path can fail: a name longer than the file system allows
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a folder")
        present = _run_outputs(out) if out.is_dir() else []
    except OSError as err:
        raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None
    if present and not overwrite:
        name = present[0].relative_to(out)
        raise ConfigError(f"--out {out} already holds a run ({name}); pass --overwrite")
    return present


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a folder that holds another run unless ``overwrite``; then clear everything
    that run and the commands derived from it wrote (a user's own files stay)."""
    present = check_out_dir(out, overwrite)
    try:
        for path in present:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        export = out / "export"
        if export.is_dir() and not any(export.iterdir()):
            export.rmdir()  # made by export alone; a folder holding a user's file stays
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None


@contextmanager
def run_folder_lock(out: Path) -> Iterator[None]:
    """Create ``out`` and hold ``out/.lock`` while inside: one train per run folder, so a
    second one (``--overwrite`` included) is refused before it removes or writes anything."""
    check_out_dir(out, overwrite=True)
    with ExitStack() as stack:
        try:
            out.mkdir(parents=True, exist_ok=True)
            stack.enter_context(folder_lock(out, f"another run is training in {out}"))
        except OSError as err:  # a read-only folder: the lock file cannot be written
            raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None
        yield


def train(
    config: Config,
    out: str | Path | None = None,
    progress: bool = False,
    tensorboard: bool = False,
    resume: bool = False,
) -> TrainSummary:
    """Train one member per seed in ``config.train.seeds``; the Python API of ``ddpglab train``.

    With ``out``, writes ``config.yaml``, ``results.sqlite``, ``checkpoints/``, ``curve.png``
    and ``summary.json`` there (the folder is created; existing run files are not checked,
    see :func:`prepare_out_dir` for that), and with ``tensorboard`` also each member's
    scalars in ``out/tensorboard/``. While training, ``out/state.npz`` holds the latest full
    state; with ``resume``, training continues from it (when present) as if it never
    stopped, and the store forgets what the runs recorded after it; a config whose budget is
    larger than the state's trains a finished run further (its ``summary.json`` goes until
    the new end). Without ``out``, nothing is written and only the summary is returned.
    """
    if out is None:
        if tensorboard or resume:
            raise ConfigError("tensorboard logging and resuming need an output folder")
        trainer = Trainer(config, progress=progress)
        summary = trainer.run()
        warn_if_nothing_was_learned(trainer)
        return summary

    out = Path(out)
    # Envs, networks and buffer first: a config the machine cannot hold fails before any file.
    trainer = Trainer(config, out, progress=progress)
    resumed = resume and trainer.resume()
    out.mkdir(parents=True, exist_ok=True)
    # A continued run is unfinished until its new end (then plain --resume continues it).
    (out / "summary.json").unlink(missing_ok=True)
    write_text_atomic(out / "config.yaml", to_yaml(config))
    with ResultsStore(out / "results.sqlite") as store:
        if tensorboard:
            from ddpglab.tensorboard import LOG_DIR, TensorBoardStore

            trainer.recorder.store = TensorBoardStore(store, out / LOG_DIR)
        else:
            trainer.recorder.store = store
        if resumed:
            trainer.rewind_store()
        try:
            summary = trainer.run()
        finally:
            if tensorboard:
                trainer.recorder.store.close_writers()
        plot_learning_curves(store, out / "curve.png", title=run_title(config))
    warn_if_nothing_was_learned(trainer)
    write_text_atomic(out / "summary.json", json.dumps(summary.to_dict(), indent=2))
    return summary


def warn_if_nothing_was_learned(trainer: Trainer) -> None:
    """One line on stderr when the run's returns say nothing about learning (see
    :func:`ddpglab.summary.learning_warning`): a short run would otherwise look like a
    result, e.g. every replay kind giving the same returns."""
    warning = learning_warning(trainer.config.agent, trainer.step, trainer.learning.total_updates)
    if warning is not None:
        print(f"ddpglab: warning: {warning}", file=sys.stderr)
