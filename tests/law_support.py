"""Chi-square tests of a sampling law: how often each slot was drawn, against the exact
probabilities a strategy states (or a brute-force computation of them).

Cells expected to be drawn fewer than ``POOL_BELOW`` times are pooled into one, so every
cell's expected count is large enough for the chi-square approximation; a law that puts
no mass where draws landed gives an infinite statistic (rejected).
"""

from __future__ import annotations

import numpy as np

#: Cells with a smaller expected count are pooled into one.
POOL_BELOW = 20.0


def chi_square_critical(df: int, z: float = 3.09) -> float:
    """Upper quantile of chi^2(df) at normal score z (3.09: p = 0.001), Wilson-Hilferty."""
    return df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3


def chi_square(counts: np.ndarray, probs: np.ndarray) -> tuple[float, int]:
    """The statistic of ``counts`` (n,) against ``probs`` (n,), rare cells pooled, and its
    degrees of freedom."""
    counts = np.asarray(counts, dtype=np.float64)
    expected = counts.sum() * np.asarray(probs, dtype=np.float64)
    rare = expected < POOL_BELOW
    cells_counts = np.append(counts[~rare], counts[rare].sum())
    cells_expected = np.append(expected[~rare], expected[rare].sum())
    empty = (cells_expected == 0) & (cells_counts == 0)
    cells_counts, cells_expected = cells_counts[~empty], cells_expected[~empty]
    with np.errstate(divide="ignore"):
        stat = float(((cells_counts - cells_expected) ** 2 / cells_expected).sum())
    return stat, max(len(cells_counts) - 1, 1)


def fits(counts: np.ndarray, probs: np.ndarray) -> bool:
    """Whether the draws are consistent with the law at p = 0.001."""
    stat, df = chi_square(counts, probs)
    return stat < chi_square_critical(df)


def rejects(counts: np.ndarray, probs: np.ndarray) -> bool:
    """Whether the draws refute the law at p = 0.001 (the test's power against it)."""
    stat, df = chi_square(counts, probs)
    return stat > chi_square_critical(df)


def draw_counts(buf, batch_size: int, batches: int) -> np.ndarray:
    """How often each storage slot was drawn per member, (K, slots), over ``batches``
    minibatches drawn as training draws them (with CER's newest slot, if combined)."""
    slots = buf.capacity * buf.slots_per_capacity
    counts = np.zeros((buf.members, slots))
    for _ in range(batches):
        idx = buf.sample(batch_size).indices if buf.combined else buf.sample_indices(batch_size)[0]
        for k in range(buf.members):
            counts[k] += np.bincount(idx[k], minlength=slots)
    return counts


def add_transitions(buf, n: int, start: int = 0, episode_lengths=(7, 11)) -> None:
    """n adds whose obs[0] is the step t (so a slot's age can be read back); member k's
    episodes are truncated every ``episode_lengths[k]`` steps; rewards sin(1.3 t + k)."""
    members = buf.members
    for t in range(start, start + n):
        obs = np.full((members, buf.obs.shape[-1]), t, dtype=np.float32)
        ended = np.array([(t + 1) % episode_lengths[k % 2] == 0 for k in range(members)])
        buf.add(
            obs,
            np.zeros((members, buf.actions.shape[-1]), np.float32),
            np.sin(1.3 * t + np.arange(members)).astype(np.float32),
            obs,
            np.zeros(members, dtype=bool),
            ended,
        )


def stored_steps(buf) -> np.ndarray:
    """The step t stored in each ring slot, per member (K, capacity): obs[0] as added."""
    return buf.obs[:, : buf.capacity, 0].numpy().astype(np.int64)
