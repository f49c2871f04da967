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
from pathlib import Path

from ddpglab.config import Config, ConfigError, to_yaml
from ddpglab.report.curves import plot_learning_curves, run_title
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


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a folder that holds another run unless ``overwrite``; then clear its artifacts."""
    try:  # even looking at the path can fail: a name longer than the file system allows
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a folder")
        present = [name for name in RUN_ARTIFACTS if (out / name).exists()]
        if present and not overwrite:
            raise ConfigError(f"--out {out} already holds a run ({present[0]}); pass --overwrite")
        for name in present:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None


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
