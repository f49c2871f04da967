"""The training layer: K independent DDPG members trained in lockstep.

``loop`` holds the :class:`~ddpglab.training.loop.Trainer` and its step; ``recorder`` what a
run leaves in the results store and its actor files; ``state`` the full state to resume
from and the stop signals that save it; ``faults`` the finiteness checks that stop only the
member a NaN or Inf struck. The output folder of ``ddpglab train`` (config, store, curve,
summary) is :mod:`ddpglab.run_folder`, one layer up: it draws with the report layer.
"""

from ddpglab.training.loop import Trainer
from ddpglab.training.state import STATE_FILE, TrainingInterrupted

__all__ = ["STATE_FILE", "Trainer", "TrainingInterrupted"]
