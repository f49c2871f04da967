"""What bit-for-bit member independence costs: one ``agent.update`` plus one ``agent.act``,
as before (fused Adam over every parameter, a lone member's matrix-vector products
without the zero dummy) and as now, alternating in one process, median of 5 each.

Pendulum preset (hidden 256x256, batch 64), one torch thread, K = 1 and K = 30, DDPG and TD3.

    python benchmarks/independence_cost.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import ddpglab.nets as nets
from ddpglab.agent import DDPGAgent
from ddpglab.config import load_config
from ddpglab.replay import Batch

TD3 = {"agent.twin_critics": True, "agent.target_noise": 0.2, "agent.policy_delay": 2}
NOW = nets.batched_affine


def before(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """The products as they were: one batched call whatever the number of members."""
    return torch.bmm(x, w) if b is None else torch.baddbmm(b, x, w)


def agent(members: int, variant: str, td3: bool) -> DDPGAgent:
    cfg = load_config("pendulum", overrides=TD3 if td3 else {}).agent
    made = DDPGAgent(3, 1, cfg, list(range(members)))
    if variant == "before":
        made.actor_opt = torch.optim.Adam(made.actor_params, lr=cfg.actor_lr, fused=True)
        made.critic_opt = torch.optim.Adam(made.critic_params, lr=cfg.critic_lr, fused=True)
    return made


def batch(members: int, size: int = 64) -> Batch:
    gen = torch.Generator().manual_seed(0)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(members, size, *shape, generator=gen)

    return Batch(
        obs=draw(3),
        actions=draw(1).clamp(-1, 1),
        rewards=draw(),
        next_obs=draw(3),
        terminated=torch.zeros(members, size),
        indices=np.zeros((members, size), np.int64),
        weights=torch.ones(members, size),
        discounts=torch.full((members, size), 0.99),
    )


def ms_per_step(members: int, variant: str, td3: bool, steps: int) -> float:
    nets.batched_affine = NOW if variant == "now" else before
    learner, data = agent(members, variant, td3), batch(members)
    obs = np.zeros((members, 3), np.float32)
    for _ in range(5):
        learner.update(data)
        learner.act(obs)
    start = time.perf_counter()
    for _ in range(steps):
        learner.update(data)
        learner.act(obs)
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    torch.set_num_threads(1)
    for td3 in (False, True):
        for members, steps in ((1, 300), (30, 30)):
            times: dict[str, list[float]] = {"before": [], "now": []}
            for rep in range(5):
                for variant in ("before", "now") if rep % 2 == 0 else ("now", "before"):
                    times[variant].append(ms_per_step(members, variant, td3, steps))
            old, new = statistics.median(times["before"]), statistics.median(times["now"])
            name = "td3" if td3 else "ddpg"
            line = f"{name} K={members:2d}: before {old:.3f} ms, now {new:.3f} ms"
            print(f"{line}, now/before {new / old:.3f}")


if __name__ == "__main__":
    main()
