"""Shared replay storage: preallocated (K, capacity, ...) ring arrays, one ring per member.

Members add in lockstep (one transition each per env step), so the write position and
fill level are shared; only the contents differ. Every sampling strategy subclasses
:class:`ReplayBuffer` and implements :meth:`ReplayBuffer.sample_indices`.

The observations and actions (the bulk of the storage) live as torch tensors on the
training device, packed side by side in one ``transitions`` tensor, so that a minibatch is
one gather there and no batch is copied between host and device. Rewards, termination and
episode-end flags stay in host numpy arrays, because the sampling rules read them: per
step only the sampled indices and the (K, B) scalars of the batch cross to the device.

Two options apply to every strategy. The shrinking window (:mod:`ddpglab.replay.window`)
limits sampling to each member's most recent ``window`` transitions. n-step returns are
assembled when a minibatch is drawn, not when transitions are stored: the ring keeps
one-step transitions and an episode-end flag, and :func:`n_step_returns` walks forward
from each sampled slot. Storing them one step at a time keeps every member adding exactly
one transition per env step (the lockstep the shared write position relies on), whatever
its episode boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

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


def n_step_returns(
    rewards: np.ndarray,
    episode_end: np.ndarray,
    successor: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    gamma: float,
    n_step: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R = sum_{i<k} gamma^i r_{t+i}, walking k <= n steps forward from slots ``start``.

    The walk stops early at the end of the episode (terminated or truncated) and at the
    newest stored transition (``successor`` gives -1). The target is then
    y = R + gamma^k (1 - terminated_last) Q'(s_{t+k}, mu'(s_{t+k})): it bootstraps from
    the next state of the last slot walked to, unless that state is terminal.

    Args:
        rewards: (K, S) stored one-step rewards.
        episode_end: (K, S) bool, True where a transition ended its episode.
        successor: maps slots (K, B) to the slots of the next transitions, or -1.
        start: (K, B) sampled slots.

    Returns:
        R (float64), the last slots walked to, and k, each (K, B).
    """
    members = np.arange(start.shape[0])[:, None]
    last = start
    total = rewards[members, last].astype(np.float64)
    steps = np.ones(start.shape, dtype=np.int64)
    alive = ~episode_end[members, last]
    for i in range(1, n_step):
        following = successor(last)
        alive &= following >= 0
        if not alive.any():
            break
        last = np.where(alive, following, last)
        total += np.where(alive, gamma**i * rewards[members, last], 0.0)
        steps += alive
        alive &= ~episode_end[members, last]
    return total, last, steps


def zeros(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A float32 tensor of zeros; on the CPU backed by ``np.zeros``, whose pages the OS
    commits only when written, so a large, mostly empty buffer costs only what it holds."""
    if device.type == "cpu":
        return torch.from_numpy(np.zeros(shape, dtype=np.float32))
    return torch.zeros(shape, device=device)


def host_view(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """A numpy array of ``array``'s values: itself, a view of a CPU tensor, or a host copy."""
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return array


def _member_seeds(seed: int | Sequence[int], members: int) -> list[int]:
    if isinstance(seed, int):
        return [seed + k for k in range(members)]
    seeds = list(seed)
    if len(seeds) != members:
        raise ValueError(f"got {len(seeds)} seeds for {members} members")
    return seeds


class ReplayBuffer:
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
    ):
        if n_step < 1:
            raise ValueError(f"n_step must be at least 1, got {n_step}")
        self.capacity, self.members = capacity, members
        self.gamma, self.n_step = float(gamma), int(n_step)
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
