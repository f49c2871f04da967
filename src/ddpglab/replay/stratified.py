"""Stratified replay (the 2023 study): good and bad episodes, split by a dynamic threshold."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from ddpglab.replay.diagnostics import ReplayStats
from ddpglab.replay.params import StrategyParams
from ddpglab.replay.storage import ReplayBuffer
from ddpglab.replay.uniform import recent_slots


def dynamic_threshold(recent_returns: Sequence[float], threshold_std: float) -> float:
    """t = mean + lambda * std of the rolling window of returns (population std, ddof 0)."""
    window = np.asarray(recent_returns, dtype=np.float64)
    return float(window.mean() + threshold_std * window.std())


def stratum_sizes(
    batch_size: int, current: int, good: int, bad: int, good_ratio: float
) -> tuple[int, int, int]:
    """Split B draws over the strata (current episode, good, bad).

    n_current = floor(B |current| / (|current| + |good| + |bad|)); of the rest R,
    n_good = floor(R good_ratio) and n_bad = R - n_good. An empty stratum passes its share
    to the other one; with both empty, every draw comes from the current episode.
    """
    total = max(current + good + bad, 1)
    n_current = batch_size * current // total
    rest = batch_size - n_current
    n_good = int(np.floor(rest * good_ratio))
    n_bad = rest - n_good
    if good == 0:
        n_good, n_bad = 0, rest
    if bad == 0:
        n_good, n_bad = n_good + n_bad, 0
    if good == 0 and bad == 0:
        n_current, n_good, n_bad = batch_size, 0, 0
    return n_current, n_good, n_bad


class StratifiedReplay(ReplayBuffer):
    """Three strata per member: the current episode, a "good" FIFO and a "bad" FIFO.

    When an episode ends, its return G joins the rolling window of the last
    ``window_episodes`` returns (G included) and the threshold t = mean + threshold_std *
    std of that window is computed; the whole episode moves to the good FIFO if G > t,
    else to the bad one. Each FIFO holds ``capacity`` transitions. Minibatches draw from
    the strata in the proportions of :func:`stratum_sizes`, uniformly with replacement
    inside each stratum.

    Storage slots: [0, C) is the ring the current episode is written to, [C, 2C) the good
    FIFO and [2C, 3C) the bad one, so sampled indices gather from one set of arrays.

    With a window w, each FIFO is sampled only among its w most recent transitions (the
    current episode is recent by definition), and the strata sizes in
    :func:`stratum_sizes` are the sizes within the window.

    A FIFO's order is not time's (good and bad episodes interleave), so for the ages in
    :meth:`slot_ages` each FIFO keeps, per episode it still holds, the add that ended it
    and how many of its transitions remain: O(episodes stored) memory, where a write step
    per slot would cost 8 bytes x 2 C per member. No O(1) record exists: the interleaving
    of good and bad episodes is information of that size.

    Args:
        threshold_std: lambda, in standard deviations (+0.5 or -0.5 in the study).
        good_ratio: share of the non-current draws taken from the good FIFO.
        window_episodes: episodes in the rolling window of returns.
    """

    kind = "stratified"
    listing_order = 2

    class Params(StrategyParams):
        """Good/bad episode strata by a dynamic return threshold (the 2023 study)."""

        threshold_std: float = Field(0.5, description="t = mean + threshold_std * std of returns")
        good_ratio: float = Field(
            0.5, ge=0, le=1, description="share of non-current draws from good"
        )
        window_episodes: int = Field(50, ge=1, description="returns in the rolling window")

    slots_per_capacity = 3

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        members: int = 1,
        seed: int | Sequence[int] = 0,
        *,
        threshold_std: float = 0.5,
        good_ratio: float = 0.5,
        window_episodes: int = 50,
        **options: Any,
    ):
        super().__init__(capacity, obs_dim, act_dim, members, seed, **options)
        self.threshold_std, self.good_ratio = threshold_std, good_ratio
        self.recent_returns = [deque(maxlen=window_episodes) for _ in range(members)]
        self.fifo_pos = np.zeros((members, 2), dtype=np.int64)  # write position: good, bad
        self.fifo_size = np.zeros((members, 2), dtype=np.int64)
        self.last_episode_threshold = np.full(members, np.nan)
        self.last_episode_good = np.zeros(members, dtype=bool)
        self.adds = 0  # transitions added per member: the env step of the newest is `adds`
        # Per member and FIFO (good, bad), oldest first: [add that ended the episode,
        # its transitions still in the FIFO] for each episode the FIFO holds.
        self.fifo_episodes = [(deque(), deque()) for _ in range(members)]

    def __len__(self) -> int:
        """Transitions the poorest member may sample over all three strata."""
        return int((self.current_sizes() + self.fifo_window_sizes().sum(axis=1)).min())

    def fifo_window_sizes(self) -> np.ndarray:
        """Transitions each member may sample from its good and bad FIFOs, (K, 2)."""
        return np.minimum(self.fifo_size, self.window[:, None])

    def region_heads(self) -> np.ndarray:
        return np.column_stack([np.full(self.members, self.pos), self.fifo_pos])

    def current_sizes(self) -> np.ndarray:
        """Transitions of each member's current episode still in the ring, shape (K,)."""
        return np.minimum(self.episode_length, self.capacity)

    def add(self, obs, act, rew, next_obs, terminated, truncated) -> None:
        self.adds += 1  # before end_episodes runs inside the add
        super().add(obs, act, rew, next_obs, terminated, truncated)

    def end_episodes(self, members: np.ndarray, returns: np.ndarray) -> None:
        """Classify each ended episode by the dynamic threshold and move it to its FIFO."""
        for k, episode_return in zip(members, returns, strict=True):
            self.recent_returns[k].append(float(episode_return))
            threshold = dynamic_threshold(self.recent_returns[k], self.threshold_std)
            good = episode_return > threshold
            self.last_episode_threshold[k] = threshold
            self.last_episode_good[k] = good
            self._move_episode(k, fifo=0 if good else 1)

    def _move_episode(self, k: int, fifo: int) -> None:
        """Copy member k's just-ended episode (the ring slots before pos) into a FIFO."""
        length = int(min(self.last_episode_length[k], self.capacity))
        source = (self.pos - length + np.arange(length)) % self.capacity
        start = self.fifo_pos[k, fifo]
        target = (1 + fifo) * self.capacity + (start + np.arange(length)) % self.capacity
        for array in self.storage_arrays():
            array[k, target] = array[k, source]
        overwritten = int(self.fifo_size[k, fifo]) + length - self.capacity
        self.fifo_pos[k, fifo] = (start + length) % self.capacity
        self.fifo_size[k, fifo] = min(self.fifo_size[k, fifo] + length, self.capacity)
        episodes = self.fifo_episodes[k][fifo]
        episodes.append([self.adds, length])
        while overwritten > 0:  # the oldest episodes lose their first transitions
            lost = min(overwritten, episodes[0][1])
            episodes[0][1] -= lost
            overwritten -= lost
            if episodes[0][1] == 0:
                episodes.popleft()

    def fifo_ages(self, k: int, fifo: int) -> np.ndarray:
        """Env-step ages of member k's FIFO slots, in slot order from the region's start."""
        episodes = self.fifo_episodes[k][fifo]
        ages = np.zeros(self.capacity, dtype=np.int64)
        if not episodes:
            return ages
        ends, kept = np.array(episodes, dtype=np.int64).T
        total = int(kept.sum())
        oldest_age = np.repeat(self.adds - ends + kept - 1, kept)  # each episode's first kept
        within = np.arange(total) - np.repeat(np.cumsum(kept) - kept, kept)
        first = int(self.fifo_pos[k, fifo]) - total  # the oldest kept transition's slot
        ages[(first + np.arange(total)) % self.capacity] = oldest_age - within
        return ages

    def slot_ages(self) -> np.ndarray:
        """Env-step ages of all 3 C slots per member: the ring's, then each FIFO's."""
        ages = np.empty((self.members, 3 * self.capacity), dtype=np.int64)
        ages[:, : self.capacity] = self.ring_ages()
        for k in range(self.members):
            for fifo in (0, 1):
                region = (1 + fifo) * self.capacity
                ages[k, region : region + self.capacity] = self.fifo_ages(k, fifo)
        return ages

    def fifo_mean_age(self, k: int, fifo: int, window: int) -> float:
        """Mean env-step age of the ``window`` newest transitions of member k's FIFO, from
        its episode records alone: O(episodes), no pass over the slots. An episode whose
        newest transition has age a and of which m are taken adds m a + m (m - 1) / 2."""
        records = np.array(list(self.fifo_episodes[k][fifo]), dtype=np.int64).reshape(-1, 2)
        ends, kept = records[::-1].T  # newest first
        taken = np.clip(window - (np.cumsum(kept) - kept), 0, kept)
        total = (taken * (self.adds - ends) + taken * (taken - 1) / 2).sum()
        return float(total / window)

    def replay_stats(
        self, batch_size: int | None = None, members: Sequence[int] | None = None
    ) -> ReplayStats:
        """From the strata sizes and shares (uniform inside each stratum): with q_s = n_s / B
        the share of stratum s, E[age] = sum_s q_s mean_age_s and H = -sum_s q_s ln(q_s / |s|);
        O(episodes stored) per member. Under CER the strategy draws B - 1."""
        if batch_size is None:
            raise ValueError("stratified replay's law depends on the batch size; pass it")
        draws = batch_size - 1 if self.combined else batch_size
        current, sizes = self.current_sizes().tolist(), self.fifo_window_sizes().tolist()
        if draws < 1 or any(good + bad == 0 for good, bad in sizes):
            return super().replay_stats(batch_size, members)  # every draw from the current episode
        expected, entropy, newest = np.zeros((3, self.members))
        for k in self.member_rows(members):
            good, bad = sizes[k]
            shares = stratum_sizes(draws, current[k], good, bad, self.good_ratio)
            strata = (current[k], good, bad)
            for s, (n, size) in enumerate(zip(shares, strata, strict=True)):
                if n == 0:
                    continue
                q = n / draws
                mean_age = (size - 1) / 2 if s == 0 else self.fifo_mean_age(k, s - 1, size)
                expected[k] += q * mean_age
                entropy[k] -= q * np.log(q / size)
                if s == 0:
                    newest[k] = q / size
        return self.closed_form_stats(expected, entropy, newest, batch_size, members)

    def sampleable_counts(self) -> np.ndarray:
        """The current episode plus each FIFO within the window, per member (K,)."""
        return self.current_sizes() + self.fifo_window_sizes().sum(axis=1)

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, None]:
        idx = np.empty((self.members, batch_size), dtype=np.int64)
        current = self.current_sizes()
        sizes = self.fifo_window_sizes()
        for k, rng in enumerate(self.rngs):
            good, bad = sizes[k].tolist()
            n_cur, n_good, n_bad = stratum_sizes(
                batch_size, int(current[k]), good, bad, self.good_ratio
            )
            ring = self.pos - current[k] + rng.integers(0, max(current[k], 1), n_cur)
            idx[k, :n_cur] = ring % self.capacity
            idx[k, n_cur : n_cur + n_good] = self._fifo_draws(k, 0, good, n_good, rng)
            idx[k, n_cur + n_good :] = self._fifo_draws(k, 1, bad, n_bad, rng)
        return idx, None

    def sampling_law(self, batch_size: int | None) -> np.ndarray:
        """P(slot) of the draw at a uniformly chosen place of a batch of ``batch_size``:
        n_s / (B |s|) on each slot of stratum s (its :func:`stratum_sizes` share n_s of the
        B draws, spread uniformly over its |s| slots in the window), over all 3 C slots.

        The shares are whole draws per batch, so the law depends on B: it must be given.
        """
        if batch_size is None:
            raise ValueError("stratified replay's law depends on the batch size; pass it")
        law = np.zeros((self.members, 3 * self.capacity))
        current = self.current_sizes().tolist()
        for k, (good, bad) in enumerate(self.fifo_window_sizes().tolist()):
            shares = stratum_sizes(batch_size, current[k], good, bad, self.good_ratio)
            # as sample_indices draws them: an empty current episode stands at slot pos
            ring = (self.pos - current[k] + np.arange(max(current[k], 1))) % self.capacity
            good_slots, bad_slots = (
                (1 + fifo) * self.capacity
                + recent_slots(int(self.fifo_pos[k, fifo]), self.capacity, size, np.arange(size))
                for fifo, size in enumerate((good, bad))
            )
            for n, slots in zip(shares, (ring, good_slots, bad_slots), strict=True):
                if n:
                    law[k, slots] += n / (batch_size * len(slots))
        return law

    def _fifo_draws(
        self, k: int, fifo: int, window: int, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        """n uniform draws among the ``window`` most recent slots of member k's FIFO."""
        region = (1 + fifo) * self.capacity
        offsets = rng.integers(0, max(window, 1), n)
        if window == self.fifo_size[k, fifo]:  # the whole FIFO: slots [0, size) in any order
            return region + offsets
        return region + recent_slots(int(self.fifo_pos[k, fifo]), self.capacity, window, offsets)

    def used_slots(self) -> list[tuple[int, int]]:
        """The ring's used slots, then each FIFO's: both fill from their region's start."""
        cap = self.capacity
        good, bad = self.fifo_size.max(axis=0).tolist()
        return [(0, self.size), (cap, cap + good), (2 * cap, 2 * cap + bad)]

    def state_dict(self):
        state = super().state_dict()
        state.update(
            recent_returns=[list(d) for d in self.recent_returns],
            fifo_pos=self.fifo_pos,
            fifo_size=self.fifo_size,
            last_episode_threshold=self.last_episode_threshold,
            last_episode_good=self.last_episode_good,
            adds=self.adds,
            fifo_episodes=[
                [np.array(list(e), dtype=np.int64).reshape(-1, 2) for e in fifos]
                for fifos in self.fifo_episodes
            ],
        )
        return state

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        for window, saved in zip(self.recent_returns, state["recent_returns"], strict=True):
            window.clear()
            window.extend(saved)
        for name in ("fifo_pos", "fifo_size", "last_episode_threshold", "last_episode_good"):
            getattr(self, name)[...] = state[name]
        self.adds = int(state.get("adds", self.size))
        saved = state.get("fifo_episodes")
        for k, fifos in enumerate(self.fifo_episodes):
            for fifo, episodes in enumerate(fifos):
                episodes.clear()
                if saved is not None:
                    episodes.extend([int(end), int(kept)] for end, kept in saved[k][fifo])
                elif self.fifo_size[k, fifo]:  # a state saved before ages were kept
                    episodes.append([self.adds, int(self.fifo_size[k, fifo])])
