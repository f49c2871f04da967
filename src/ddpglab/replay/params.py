"""The base of a strategy's parameters: a strategy class carries its own as ``Params``.

A strategy with parameters nests ``class Params(StrategyParams)`` in its class; the config
validates ``replay.<kind>`` with it and dumps it as that section, and the buffer receives
its fields as keyword arguments. Checked like every config section: unknown keys,
NaN and infinities are refused, and assignments are validated too.
"""

from __future__ import annotations

from pydantic import ConfigDict

from ddpglab.strict_model import StrictModel


class StrategyParams(StrictModel):
    """Parameters of one replay strategy, the ``replay.<kind>`` section of a config."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    def batch_size_problem(self, batch_size: int) -> str | None:
        """Why these parameters cannot serve minibatches of ``batch_size`` (one line, naming
        the keys), or None. The config checks it for the selected strategy, where the
        agent's batch size is known."""
        return None
