"""Reward bins: a per-member index of ring slots grouped by reward, for softmax replay.

See :mod:`ddpglab.replay.softmax` for how the bins give exact draws by rejection.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BIN_WIDTH_IN_BETA = 0.5
#: Bin keys are clamped to +-2^62 so they fit int64; clamped bins stay exact, just slower.
_KEY_LIMIT = float(2**62)
#: Room a bin gets when it is created; bins that fill up move to a region twice as large.
_MIN_BIN_ROOM = 8


def bin_key(reward: float, width: float) -> int:
    """floor(reward / width), clamped to +-2^62: the reward bin a transition belongs to."""
    q = reward / width
    return int(math.floor(min(max(q, -_KEY_LIMIT), _KEY_LIMIT)))


def bin_keys(rewards: np.ndarray, width: float) -> np.ndarray:
    """Vectorized :func:`bin_key` (same float64 arithmetic, so the same bins)."""
    return np.floor(np.clip(rewards / width, -_KEY_LIMIT, _KEY_LIMIT)).astype(np.int64)


class RewardBins:
    """One member's index: its active ring slots grouped by reward bin.

    Each bin owns a region [start_b, start_b + room_b) of ``pool``; its n_b = count_b slots
    fill the front of the region in no particular order. ``position[slot]`` is where the
    slot sits in ``pool`` (-1: not indexed), ``slot_bin[slot]`` its bin. Removal swaps the
    bin's last slot into the hole; a bin that outgrows its region moves to the end of the
    pool with twice the room, and when the pool runs out everything is re-laid compactly
    (:meth:`rebuild`), which also forgets empty bins. Bins that empty out are recycled
    through ``free_bins``, so the bin arrays stay as long as the most bins ever occupied
    at once.

    ``reward_sum`` is the running float64 sum of the indexed rewards (for mu_R).
    """

    def __init__(self, capacity: int, width: float, rewards: np.ndarray):
        self.width = width
        self.rewards = rewards  # the member's (capacity,) float32 row of the ring storage
        self.position = np.full(capacity, -1, dtype=np.int32)
        self.slot_bin = np.zeros(capacity, dtype=np.int32)
        self.rebuild(np.empty(0, dtype=np.int64))

    # -- layout -----------------------------------------------------------------------------

    def _allocate_bins(self, n: int) -> None:
        self.start = np.zeros(n, dtype=np.int64)
        self.count = np.zeros(n, dtype=np.int64)
        self.room = np.zeros(n, dtype=np.int64)
        self.low = np.full(n, np.inf)  # smallest reward that entered since the bin was empty
        self.high = np.full(n, -np.inf)  # largest one
        self.keys = np.zeros(n, dtype=np.int64)

    def _grow_bin_arrays(self) -> None:
        n = len(self.count)
        new = max(2 * n, 16)
        for name, fill in (
            ("start", 0),
            ("count", 0),
            ("room", 0),
            ("low", np.inf),
            ("high", -np.inf),
            ("keys", 0),
        ):
            old = getattr(self, name)
            grown = np.full(new, fill, dtype=old.dtype)
            grown[:n] = old
            setattr(self, name, grown)

    def rebuild(self, slots: np.ndarray) -> None:
        """Index exactly ``slots`` (ring positions), laid out compactly, bins from scratch."""
        slots = np.asarray(slots, dtype=np.int64)
        rewards = self.rewards[slots].astype(np.float64)
        keys, bin_of = np.unique(bin_keys(rewards, self.width), return_inverse=True)
        n_bins = len(keys)
        counts = np.bincount(bin_of, minlength=n_bins).astype(np.int64)
        room = counts + counts // 2 + _MIN_BIN_ROOM
        self._allocate_bins(max(n_bins, 16))
        self.n_bins = n_bins
        self.keys[:n_bins] = keys
        self.count[:n_bins] = counts
        self.room[:n_bins] = room
        self.start[:n_bins] = np.cumsum(room) - room
        self.pool_end = int(room.sum())
        self.pool = np.full(2 * self.pool_end + 1024, -1, dtype=np.int32)
        order = np.argsort(bin_of, kind="stable")
        sorted_bins = bin_of[order]
        first_of_bin = np.cumsum(counts) - counts
        places = self.start[sorted_bins] + np.arange(len(slots)) - first_of_bin[sorted_bins]
        self.pool[places] = slots[order]
        self.position[:] = -1
        self.position[slots[order]] = places
        self.slot_bin[slots] = bin_of
        if len(slots):
            sorted_rewards = rewards[order]
            self.low[:n_bins] = np.minimum.reduceat(sorted_rewards, first_of_bin)
            self.high[:n_bins] = np.maximum.reduceat(sorted_rewards, first_of_bin)
        self.key_to_bin = dict(zip(keys.tolist(), range(n_bins), strict=True))
        self.free_bins: list[int] = []
        self.reward_sum = float(rewards.sum())

    def _new_bin(self, key: int) -> int:
        if self.free_bins:
            b = self.free_bins.pop()
        else:
            if self.n_bins == len(self.count):
                self._grow_bin_arrays()
            b = self.n_bins
            self.n_bins += 1
            if not self._reserve(b, _MIN_BIN_ROOM):
                return -1
        self.keys[b] = key
        self.key_to_bin[key] = b
        return b

    def _reserve(self, b: int, room: int) -> bool:
        """Move bin b to a fresh region of ``room`` slots at the pool's end; False: rebuilt."""
        if self.pool_end + room > len(self.pool):
            self.rebuild(np.flatnonzero(self.position >= 0))
            return False
        n, old = int(self.count[b]), int(self.start[b])
        new = self.pool_end
        if n:
            moved = self.pool[old : old + n]
            self.pool[new : new + n] = moved
            self.position[moved] = np.arange(new, new + n, dtype=np.int32)
        self.start[b], self.room[b] = new, room
        self.pool_end += room
        return True

    # -- updates ----------------------------------------------------------------------------

    def insert(self, slot: int, reward: float) -> None:
        """Index ring ``slot`` holding ``reward`` (the stored float32 value, as a float)."""
        key = bin_key(reward, self.width)
        while True:
            b = self.key_to_bin.get(key, -1)
            if b < 0:
                b = self._new_bin(key)
                if b < 0:  # the pool was re-laid: look the key up again
                    continue
            n = int(self.count[b])
            if n == self.room[b] and not self._reserve(b, 2 * n):
                continue
            break
        place = int(self.start[b]) + n
        self.pool[place] = slot
        self.position[slot] = place
        self.slot_bin[slot] = b
        self.count[b] = n + 1
        if reward < self.low[b]:
            self.low[b] = reward
        if reward > self.high[b]:
            self.high[b] = reward
        self.reward_sum += reward

    def remove(self, slot: int, reward: float) -> None:
        """Drop ring ``slot`` (holding ``reward``) from the index."""
        place = int(self.position[slot])
        b = int(self.slot_bin[slot])
        n = int(self.count[b]) - 1
        last = int(self.start[b]) + n
        moved = self.pool[last]
        self.pool[place] = moved
        self.position[moved] = place
        self.pool[last] = -1
        self.position[slot] = -1
        self.count[b] = n
        if n == 0:
            self.low[b], self.high[b] = np.inf, -np.inf
            del self.key_to_bin[int(self.keys[b])]
            self.free_bins.append(b)
        self.reward_sum -= reward

    # -- sampling ---------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, batch_size: int, mu: float, beta: float):
        """``batch_size`` ring slots i drawn with replacement, P(i) ~ exp(|r_i - mu| / beta).

        Tries pick bin b with probability n_b M_b / sum_c n_c M_c (M_b = exp(d_b / beta),
        d_b = max(|lo_b - mu|, |hi_b - mu|)), a uniform member i of b, and accept it with
        probability exp((|r_i - mu| - d_b) / beta); the first ``batch_size`` accepted tries
        of this i.i.d. sequence are the sample.
        """
        nb = self.n_bins
        count = self.count[:nb]
        # d_b = max(|lo_b - mu|, |hi_b - mu|) = max(hi_b - mu, mu - lo_b) as lo_b <= hi_b;
        # empty bins (lo = +inf, hi = -inf) get d_b = -inf, hence weight 0.
        reach = np.maximum(self.high[:nb] - mu, mu - self.low[:nb])
        log_bound = reach / beta
        log_bound -= log_bound.max()  # the heaviest bin gets M_b = 1: no overflow
        cumulative = np.cumsum(count * np.exp(log_bound))
        total = cumulative[-1]
        chosen = np.empty(batch_size, dtype=np.int64)
        filled = 0
        tries = batch_size + batch_size // 4 + 16
        while filled < batch_size:
            u = rng.random((3, tries))
            # (1 - u) total lies in (0, total]: the first bin whose cumulative mass reaches
            # it has positive mass, and bin b is hit with probability n_b M_b / total.
            bins = np.searchsorted(cumulative, (1.0 - u[0]) * total, side="left")
            members = count[bins]
            rank = np.minimum((u[1] * members).astype(np.int64), members - 1)
            slots = self.pool[self.start[bins] + rank]
            deviation = np.abs(self.rewards[slots].astype(np.float64) - mu)
            accepted = slots[u[2] < np.exp((deviation - reach[bins]) / beta)]
            take = accepted[: batch_size - filled]
            chosen[filled : filled + len(take)] = take
            filled += len(take)
            rate = max(len(accepted) / tries, 0.05)
            tries = int((batch_size - filled) / rate * 1.25) + 16
        return chosen

    # -- checks and state -------------------------------------------------------------------

    def check(self, slots: np.ndarray) -> None:
        """Assert the index holds exactly ``slots`` and every derived quantity agrees."""
        slots = np.sort(np.asarray(slots, dtype=np.int64))
        indexed = np.flatnonzero(self.position >= 0)
        assert np.array_equal(indexed, slots), "indexed slots differ from the active ones"
        nb = self.n_bins
        assert int(self.count[:nb].sum()) == len(slots), "bin counts do not add up"
        assert np.all(self.count[:nb] <= self.room[:nb]), "a bin overflows its region"
        assert np.all(self.start[:nb] + self.room[:nb] <= self.pool_end)
        assert self.pool_end <= len(self.pool), "regions run past the pool"

        assert np.all(self.pool[self.position[slots]] == slots), "pool and position disagree"
        bins = self.slot_bin[slots]
        place = self.position[slots]
        assert np.all(place >= self.start[bins]), "a slot lies before its bin's region"
        assert np.all(place < self.start[bins] + self.count[bins]), "a slot lies past its bin"
        rewards = self.rewards[slots].astype(np.float64)
        assert np.array_equal(self.keys[bins], bin_keys(rewards, self.width)), "wrong bin"
        assert np.all(rewards >= self.low[bins]) and np.all(rewards <= self.high[bins])
        occupied = np.flatnonzero(self.count[:nb] > 0)
        keys = self.keys[occupied].tolist()
        assert self.key_to_bin == dict(zip(keys, occupied.tolist(), strict=True)), "stale keys"
        assert sorted(self.free_bins) == np.flatnonzero(self.count[:nb] == 0).tolist()
        exact = float(rewards.sum())
        scale = float(np.abs(rewards).sum()) + 1.0
        assert abs(self.reward_sum - exact) <= 1e-9 * scale, "running reward sum drifted"

    _STATE = ("position", "slot_bin", "start", "count", "room", "low", "high", "keys", "pool")

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: getattr(self, name).copy() for name in self._STATE}
        state.update(
            n_bins=self.n_bins,
            pool_end=self.pool_end,
            free_bins=list(self.free_bins),
            reward_sum=self.reward_sum,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._STATE:
            setattr(self, name, np.array(state[name], dtype=getattr(self, name).dtype))
        self.n_bins, self.pool_end = int(state["n_bins"]), int(state["pool_end"])
        self.free_bins = [int(b) for b in state["free_bins"]]
        self.reward_sum = float(state["reward_sum"])
        occupied = np.flatnonzero(self.count[: self.n_bins] > 0)
        self.key_to_bin = dict(zip(self.keys[occupied].tolist(), occupied.tolist(), strict=True))
