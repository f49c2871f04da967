"""Shared replay storage: preallocated (K, capacity, ...) ring arrays, one ring per member.

Members add in lockstep (one transition each per env step), so the write position and
fill level are shared; only the contents differ. Every sampling strategy subclasses
:class:`ReplayBuffer` and implements :meth:`ReplayBuffer.sample_indices`.

The observations and actions (the bulk of the storage) live as torch tensors on the
training device, packed side by side in one ``transitions`` tensor, so that a minibatch is
one gather there and no batch is copied between host and device. Rewards, termination and
episode-end flags stay in host numpy arrays, because the sampling rules read them: per
step only the sampled indices and the (K, B) scalars of the batch cross to the device.

Three options apply to every strategy. The shrinking window (:mod:`ddpglab.replay.window`)
limits sampling to each member's most recent ``window`` transitions. n-step returns are
assembled when a minibatch is drawn, not when transitions are stored: the ring keeps
one-step transitions and an episode-end flag, and
:func:`~ddpglab.replay.nstep.n_step_returns` walks forward from each sampled slot. Storing
them one step at a time keeps every member adding exactly one transition per env step (the
lockstep the shared write position relies on), whatever its episode boundaries. Combined
experience replay (CER, Zhang & Sutton 2017, "A Deeper Look at Experience Replay") puts
each member's newest transition in every batch in place of one draw, so that what was just
experienced is learned from at once whatever the strategy and the buffer's size.

Each strategy states its sampling law (:meth:`ReplayBuffer.probabilities`): the exact
probability of every storage slot, which the tests hold its draws to and from which
diagnostics (expected age, entropy) are computed (:mod:`ddpglab.replay.diagnostics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from ddpglab.replay.arrays import host_view, zeros
from ddpglab.replay.diagnostics import ReplayDiagnostics
from ddpglab.replay.nstep import n_step_returns
from ddpglab.replay.params import StrategyParams
from ddpglab.replay.window import WindowSchedule
from ddpglab.seeding import member_rngs, rng_states, set_rng_states


class Batch(NamedTuple):
    """A minibatch per member. Tensors are shaped (K, B, ...); ``indices`` index the rings."""

    obs: torch.Tensor  # (K, B, obs_dim)
    actions: torch.Tensor  # (K, B, act_dim), in [-1, 1]
    rewards: torch.Tensor  # (K, B)
    next_obs: torch.Tensor  # (K, B, obs_dim)
    terminated: torch.Tensor  # (K, B), 1.0 where next_obs is a terminal state
    indices: np.ndarray  # (K, B) int64 ring positions
    weights: torch.Tensor  # (K, B) importance weights; ones for unbiased strategies
    discounts: torch.Tensor  # (K, B) gamma^k: k rewards are summed in ``rewards``


def _member_seeds(seed: int | Sequence[int], members: int) -> list[int]:
    if isinstance(seed, int):
        return [seed + k for k in range(members)]
    seeds = list(seed)
    if len(seeds) != members:
        raise ValueError(f"got {len(seeds)} seeds for {members} members")
    return seeds


class ReplayBuffer(ReplayDiagnostics):
    """Ring storage of transitions for K members plus episode bookkeeping.

    Args:
        capacity: transitions kept per member; the oldest are overwritten first.
        obs_dim: observation size.
        act_dim: action size.
        members: K, the number of independent members.
        seed: one seed per member, or one int from which member k gets ``seed + k``.
            Member k's sampling depends on its own seed only.
        gamma: discount of the n-step sums and of the ``discounts`` in each batch.
        n_step: rewards summed per sampled transition (1: plain one-step transitions).
        window: sample only each member's most recent transitions: a fixed count, or a
            :class:`~ddpglab.replay.window.WindowSchedule` over training progress
            (:meth:`set_progress`); None samples everything stored.
        device: where observations and actions are stored and batches are assembled
            (the networks' device).
        combined: CER: each member's batch holds its newest transition (importance weight
            1) in place of one draw, and the strategy draws the other B - 1.

    A subclass becomes a strategy (``replay.kind``, :func:`~ddpglab.replay.make_buffer`)
    by declaring its own ``kind``; see :mod:`ddpglab.replay.registry`.
    """

    #: The strategy's name in configs (``replay.kind``); set by each strategy itself.
    kind: ClassVar[str]
    #: Its parameters, the config section ``replay.<kind>`` whose fields the constructor
    #: takes as keyword arguments; None for a strategy without parameters.
    Params: ClassVar[type[StrategyParams] | None] = None
    #: Where the strategy is listed among the others (configs, messages): ascending, then
    #: by kind; read from the class itself, never inherited. The shipped strategies keep
    #: the order they were added in; others leave it.
    listing_order: ClassVar[int] = 100

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        members: int = 1,
        seed: int | Sequence[int] = 0,
        *,
        gamma: float = 0.99,
        n_step: int = 1,
        window: WindowSchedule | int | None = None,
        device: str | torch.device = "cpu",
        combined: bool = False,
    ):
        if n_step < 1:
            raise ValueError(f"n_step must be at least 1, got {n_step}")
        self.capacity, self.members = capacity, members
        self.gamma, self.n_step = float(gamma), int(n_step)
        self.combined = bool(combined)
        # The ring that `add` writes is slots [0, capacity); strategies that keep strata of
        # their own (stratified) get further slots after it, so one gather serves all.
        shape = (members, capacity * self.slots_per_capacity)
        self.device = torch.device(device)
        # Per slot: [obs | action | next_obs]; obs, actions and next_obs are views of it.
        self.transitions = zeros((*shape, 2 * obs_dim + act_dim), self.device)
        self.obs, self.actions, self.next_obs = self.transitions.split(
            [obs_dim, act_dim, obs_dim], dim=-1
        )
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=np.float32)
        self.episode_end = np.zeros(shape, dtype=bool)  # terminated or truncated
        self.pos = 0
        self.size = 0
        self.rngs = member_rngs(_member_seeds(seed, members), "replay")
        # Running return and length of each member's current episode, and of its last
        # finished one (strategies that act on whole episodes, and the trainer, read them).
        self.episode_return = np.zeros(members, dtype=np.float64)
        self.episode_length = np.zeros(members, dtype=np.int64)
        self.last_episode_return = np.zeros(members, dtype=np.float64)
        self.last_episode_length = np.zeros(members, dtype=np.int64)
        self.episodes_finished = np.zeros(members, dtype=np.int64)
        if isinstance(window, int):
            window = WindowSchedule.constant(window)
        self.window_schedule: WindowSchedule | None = window
        # Per member, how many of the most recent transitions may be sampled.
        self.window = np.full(members, capacity, dtype=np.int64)
        if window is not None:
            self.window[:] = np.minimum(window(np.zeros(members)), capacity)
        self._member_axis = np.arange(members)[:, None]
        self._member_axis_on_device = torch.arange(members, device=self.device)[:, None]
        # Host rows [obs | action | next_obs] of one add, copied to the device at once.
        self._staging = np.zeros((members, 2 * obs_dim + act_dim), dtype=np.float32)
        self._staging_parts = np.split(self._staging, [obs_dim, obs_dim + act_dim], axis=1)
        self._constant_weights: dict[tuple[tuple[int, ...], float], torch.Tensor] = {}

    #: Slots of storage per unit of ``capacity`` (the ring, plus strata of a strategy's own).
    slots_per_capacity = 1

    @classmethod
    def storage_bytes(cls, capacity: int, obs_dim: int, act_dim: int, members: int) -> int:
        """Bytes of the storage arrays: obs, next_obs, actions, reward, terminated (float32)
        and the episode-end flag (one byte)."""
        slots = members * capacity * cls.slots_per_capacity
        return slots * (4 * (2 * obs_dim + act_dim + 2) + 1)

    #: The per-slot arrays, each (K, slots, ...): numpy arrays on the host, and views of
    #: the ``transitions`` tensor on the device.
    HOST_ARRAYS = ("rewards", "terminated", "episode_end")
    SLOT_ARRAYS = ("obs", "actions", "rewards", "next_obs", "terminated", "episode_end")

    def storage_arrays(self) -> tuple[np.ndarray | torch.Tensor, ...]:
        """The transitions tensor and every host per-slot array, each (K, slots, ...)."""
        return (self.transitions, *(getattr(self, name) for name in self.HOST_ARRAYS))

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        act: np.ndarray,
        rew: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Store one transition per member (arrays with leading size K) and track episodes."""
        i = self.pos
        ended_mask = np.logical_or(terminated, truncated)
        for part, values in zip(self._staging_parts, (obs, act, next_obs), strict=True):
            part[...] = values
        self.transitions[:, i] = torch.from_numpy(self._staging)
        self.rewards[:, i] = rew
        self.terminated[:, i] = terminated
        self.episode_end[:, i] = ended_mask
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.episode_return += rew
        self.episode_length += 1
        ended = np.flatnonzero(ended_mask)
        if ended.size:
            self.last_episode_return[ended] = self.episode_return[ended]
            self.last_episode_length[ended] = self.episode_length[ended]
            self.end_episodes(ended, self.last_episode_return[ended])
            self.episode_return[ended] = 0.0
            self.episode_length[ended] = 0
            self.episodes_finished[ended] += 1

    #: Whether the trainer must report TD errors through :meth:`update_priorities`.
    needs_priorities = False
    #: Per member, the return threshold its last episode was judged by (strategies that
    #: classify episodes set it; None elsewhere). The trainer stores it next to the return.
    last_episode_threshold: np.ndarray | None = None

    def end_episodes(self, members: np.ndarray, returns: np.ndarray) -> None:
        """Hook for strategies that act on whole episodes; called after the last transition."""

    @property
    def follows_progress(self) -> bool:
        """Whether :meth:`set_progress` changes anything (the trainer skips it otherwise)."""
        return self.window_schedule is not None

    def set_progress(self, fraction: np.ndarray) -> None:
        """Each member's share of its training budget spent (K,): moves the window schedule.

        Strategies with schedules of their own extend it."""
        if self.window_schedule is not None:
            self.set_window(self.window_schedule(fraction))

    def set_window(self, window: np.ndarray | int | None) -> None:
        """Sample only each member's most recent ``window`` transitions: one count per
        member (K,), one for all, or None for everything stored."""
        self.window[:] = self.capacity if window is None else np.clip(window, 1, self.capacity)

    def window_sizes(self) -> np.ndarray:
        """Transitions each member may sample from its ring now: min(window, size), (K,)."""
        return np.minimum(self.window, self.size)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Hook for strategies that sample by TD error (``needs_priorities``)."""

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Ring positions (K, B) to train on, and importance weights (None: all ones)."""
        raise NotImplementedError

    def sampling_law(self, batch_size: int | None) -> np.ndarray:
        """P(slot) of one draw of :meth:`sample_indices`, per member: (K, storage slots)
        float64, zero where nothing may be drawn; each row sums to 1. Strategies whose draws
        in a batch are not identically distributed (stratified) give the law of the draw at
        a uniformly chosen place of a batch of ``batch_size``; the others ignore it."""
        raise NotImplementedError(f"{type(self).__name__} does not state its sampling law")

    def probabilities(self, batch_size: int | None = None) -> np.ndarray:
        """The exact sampling law per member, (K, capacity * slots_per_capacity) float64:
        P(slot) of the transition at a uniformly chosen place of a batch of ``batch_size``.

        With CER (``combined``), P = (1/B) [slot = newest] + ((B-1)/B) P_draw, P_draw the
        strategy's law for B - 1 draws; ``batch_size`` None gives P_draw alone, the law of
        one draw (CER left out).
        """
        if not self.combined or batch_size is None:
            return self.sampling_law(batch_size)
        law = self.sampling_law(batch_size - 1) if batch_size > 1 else 0.0
        law = law * (batch_size - 1) / batch_size
        mixed = np.zeros((self.members, self.capacity * self.slots_per_capacity)) + law
        mixed[:, self.newest_slot()] += 1.0 / batch_size
        return mixed

    def newest_slot(self) -> int:
        """The ring slot of the newest transition (every member's: they add in lockstep)."""
        return (self.pos - 1) % self.capacity

    def ring_ages(self) -> np.ndarray:
        """Age of the transition in each ring slot (capacity,): 0 for the newest, counted
        in adds; slots not yet written get ages >= size."""
        return (self.pos - 1 - np.arange(self.capacity)) % self.capacity

    def window_mask(self) -> np.ndarray:
        """(K, capacity) bool: the ring slots each member may sample (its window)."""
        return self.ring_ages()[None, :] < self.window_sizes()[:, None]

    def region_heads(self) -> np.ndarray:
        """(K, regions): per member and storage region of ``capacity`` slots, the slot the
        next write goes to (regions beyond the ring belong to a strategy's own strata)."""
        return np.full((self.members, 1), self.pos)

    def successor(self, slots: np.ndarray) -> np.ndarray:
        """The slot of each slot's next transition in its region (K, B), -1 for the newest."""
        capacity = self.capacity
        region_start = slots - slots % capacity
        following = region_start + (slots % capacity + 1) % capacity
        head = self.region_heads()[self._member_axis, region_start // capacity]
        return np.where(following - region_start == head, -1, following)

    def _constant(self, shape: tuple[int, ...], value: float) -> torch.Tensor:
        """A cached read-only tensor of ``value``: the weights and discounts of plain batches."""
        key = (shape, value)
        if key not in self._constant_weights:
            self._constant_weights[key] = torch.full(shape, value, device=self.device)
        return self._constant_weights[key]

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """A host array as a tensor on the storage device (a view of it on the CPU)."""
        return torch.from_numpy(array).to(self.device)

    def _gather(self, slots: np.ndarray) -> torch.Tensor:
        """The stored [obs | action | next_obs] rows at ring positions ``slots`` (K, B)."""
        return self.transitions[self._member_axis_on_device, self._to_device(slots)]

    def sample(self, batch_size: int) -> Batch:
        """Draw a minibatch of ``batch_size`` transitions for every member."""
        if self.combined:
            idx, weights = self._with_newest(batch_size)
        else:
            idx, weights = self.sample_indices(batch_size)
        k = self._member_axis
        w = self._constant(idx.shape, 1.0) if weights is None else self._to_device(weights)
        if self.n_step == 1:
            rewards, last = self.rewards[k, idx], idx
            discounts = self._constant(idx.shape, self.gamma)
        else:
            total, last, steps = n_step_returns(
                self.rewards, self.episode_end, self.successor, idx, self.gamma, self.n_step
            )
            rewards = total.astype(np.float32)
            discounts = self._to_device((self.gamma**steps).astype(np.float32))
        rows = self._gather(idx)
        obs_dim, act_dim = self.obs.shape[-1], self.actions.shape[-1]
        obs, actions, next_obs = rows.split([obs_dim, act_dim, obs_dim], dim=-1)
        if last is not idx:
            next_obs = self._gather(last)[..., obs_dim + act_dim :]
        return Batch(
            obs=obs,
            actions=actions,
            rewards=self._to_device(rewards),
            next_obs=next_obs,
            terminated=self._to_device(self.terminated[k, last]),
            indices=idx,
            weights=w,
            discounts=discounts,
        )

    def _with_newest(self, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """CER: B - 1 draws of the strategy, then each member's newest transition, whose
        importance weight is 1."""
        newest = np.full((self.members, 1), self.newest_slot(), dtype=np.int64)
        if batch_size == 1:
            return newest, None
        idx, weights = self.sample_indices(batch_size - 1)
        if weights is not None:
            weights = np.concatenate([weights, np.ones_like(newest, dtype=weights.dtype)], 1)
        return np.concatenate([idx, newest], axis=1), weights

    _COUNTERS = (
        "episode_return",
        "episode_length",
        "last_episode_return",
        "last_episode_length",
        "episodes_finished",
        "window",
    )

    def used_slots(self) -> list[tuple[int, int]]:
        """Slot ranges [start, stop) that may hold a transition of some member; the ring
        fills from slot 0, so until it wraps only its first ``size`` slots do."""
        return [(0, self.size)]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue sampling exactly where this buffer stands.

        The storage arrays appear as numpy views of their used slot ranges only, so that a
        checkpoint of a large, partly filled buffer is small and, on the CPU, needs no copy.
        """
        ranges = self.used_slots()
        state: dict[str, Any] = {
            "slot_ranges": ranges,
            "slots": {
                name: [host_view(getattr(self, name)[:, start:stop]) for start, stop in ranges]
                for name in self.SLOT_ARRAYS
            },
            "pos": self.pos,
            "size": self.size,
            "rng_states": rng_states(self.rngs),
        }
        state.update({name: getattr(self, name) for name in self._COUNTERS})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` into a freshly made buffer of the same shape."""
        for name in self.SLOT_ARRAYS:
            parts = state["slots"][name]
            array = getattr(self, name)
            for (start, stop), part in zip(state["slot_ranges"], parts, strict=True):
                if isinstance(array, torch.Tensor):
                    part = torch.as_tensor(part)
                array[:, start:stop] = part
        for name in self._COUNTERS:
            getattr(self, name)[...] = state[name]
        self.pos, self.size = int(state["pos"]), int(state["size"])
        set_rng_states(self.rngs, state["rng_states"])
