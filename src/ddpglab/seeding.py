"""Independent random streams per member, derived from the member's seed alone."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named ``stream`` (e.g. "actor", "noise") of a member's ``seed``.

    Streams of one seed are statistically independent of each other and of other seeds,
    and depend on nothing else, so a member's randomness is the same alone or in an ensemble.
    """
    entropy = [seed & 0xFFFFFFFF, seed >> 32, zlib.crc32(stream.encode())]
    return int(np.random.SeedSequence(entropy).generate_state(2, np.uint64)[0] >> 1)


def member_rngs(seeds: list[int], stream: str) -> list[np.random.Generator]:
    """One numpy Generator per member for the named stream."""
    return [np.random.default_rng(derive_seed(s, stream)) for s in seeds]


def rng_states(rngs: list[np.random.Generator]) -> list[dict[str, Any]]:
    """Each Generator's exact position in its stream, for a checkpoint."""
    return [rng.bit_generator.state for rng in rngs]


def set_rng_states(rngs: list[np.random.Generator], states: list[dict[str, Any]]) -> None:
    """Put each Generator back where :func:`rng_states` found it."""
    for rng, state in zip(rngs, states, strict=True):
        rng.bit_generator.state = state
