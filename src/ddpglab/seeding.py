"""Independent random streams per member, derived from the member's seed alone."""

from __future__ import annotations

import zlib

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
