"""Helpers shared by the replay tests: the registered kinds, numbered transitions, and a
plain Python model of what each member added (to check rings, windows and n-step sums)."""

from __future__ import annotations

import numpy as np

from ddpglab.replay import strategies

#: Every registered strategy: a test parametrised over it covers strategies added later too.
KINDS = list(strategies())
#: The strategies that sample only from the ring ``add`` writes (no strata of their own).
RING_KINDS = [kind for kind, cls in strategies().items() if cls.slots_per_capacity == 1]

OBS_DIM, ACT_DIM = 3, 2
GAMMA = 0.9


def add_numbered(
    buf, n: int, start: int = 0, members: int = 1, truncate_every: int = 0, first_member: int = 0
) -> None:
    """Add transitions whose every field encodes (member, step): value = 1000 * k + step,
    k counted from ``first_member`` (to feed a lone buffer what member k of an ensemble got)."""
    for t in range(start, start + n):
        members_k = range(first_member, first_member + members)
        v = np.array([1000.0 * k + t for k in members_k], dtype=np.float32)
        trunc = np.full(members, truncate_every > 0 and (t + 1) % truncate_every == 0)
        buf.add(
            np.repeat(v[:, None], OBS_DIM, axis=1),
            np.repeat(v[:, None], ACT_DIM, axis=1),
            v,
            np.repeat(v[:, None] + 0.5, OBS_DIM, axis=1),
            np.zeros(members, dtype=bool),
            trunc,
        )


class Model:
    """Every transition each member added: (counter, reward, terminated, episode end)."""

    def __init__(self, members: int):
        self.steps: list[list[tuple[int, float, bool, bool]]] = [[] for _ in range(members)]

    def add(self, buf, rewards, terminated, truncated) -> None:
        members = len(self.steps)
        t = len(self.steps[0])
        obs = np.full((members, 2), t, dtype=np.float32)
        # next_obs carries t + 0.5: the state after transition t, so a batch shows which
        # transition an n-step walk bootstrapped from.
        buf.add(
            obs,
            np.zeros((members, 1), np.float32),
            np.asarray(rewards, np.float32),
            obs + 0.5,
            np.asarray(terminated),
            np.asarray(truncated),
        )
        for k in range(members):
            end = bool(terminated[k] or truncated[k])
            self.steps[k].append((t, float(np.float32(rewards[k])), bool(terminated[k]), end))

    def n_step(self, k: int, t: int, n: int) -> tuple[float, int, float, float]:
        """R, k, terminated and the next-state marker, walking member k's steps from t."""
        total, steps = 0.0, 0
        for j in range(t, min(t + n, len(self.steps[k]))):
            _, reward, terminated, end = self.steps[k][j]
            total += GAMMA**steps * reward
            steps += 1
            if end:
                break
        return total, steps, float(terminated), j + 0.5

    def episodes(self, k: int) -> list[list[int]]:
        """Counters of member k's finished episodes, in order."""
        done, current = [], []
        for t, _, _, end in self.steps[k]:
            current.append(t)
            if end:
                done.append(current)
                current = []
        return done


def add_steps(buf, model: Model, ends: list[list[str]], rewards=None) -> None:
    """One add per entry of ``ends``: per member '' (going on), 'term' or 'trunc'."""
    for i, flags in enumerate(ends):
        r = (
            rewards[i]
            if rewards is not None
            else [np.sin(len(model.steps[0]) + k) for k in range(len(flags))]
        )
        model.add(buf, r, [f == "term" for f in flags], [f == "trunc" for f in flags])
