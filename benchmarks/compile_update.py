"""Does ``torch.compile`` speed up ``DDPGAgent.update``? Eager against two compiled forms.

    python benchmarks/compile_update.py --mode eager|optimizer|update [--members 1]

- ``eager``: the update as it ships.
- ``optimizer``: both Adam steps wrapped in ``torch.compile`` (PyTorch's recipe for
  compiling an optimizer; on the CPU inductor writes the fused step in C++).
- ``update``: the whole ``update`` method wrapped in ``torch.compile`` (graph breaks at
  ``backward`` and the optimizer steps).

Pendulum-v1 shapes with the pendulum-2023 preset (hidden 256 x 256, batch 64), one torch
thread, a random batch. Prints the time of the first 3 updates (compilation included) and
then 3 timings of ``floor.py``'s ``time_updates`` (median of 5 blocks), ms per update.
Run each mode in its own process, on a quiet machine.
"""

from __future__ import annotations

import argparse
import time

import torch
from floor import random_batch, time_updates


def main() -> None:
    from ddpglab.agent import DDPGAgent
    from ddpglab.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["eager", "optimizer", "update"], required=True)
    parser.add_argument("--members", type=int, default=1, help="members K")
    args = parser.parse_args()

    torch.set_num_threads(1)
    config = load_config("pendulum-2023").agent
    agent = DDPGAgent(3, 1, config, list(range(args.members)))
    batch = random_batch(args.members, config.batch_size, 3, 1)
    if args.mode == "update":
        agent.update = torch.compile(agent.update)
    elif args.mode == "optimizer":
        agent.actor_opt.step = torch.compile(agent.actor_opt.step)
        agent.critic_opt.step = torch.compile(agent.critic_opt.step)
    start = time.perf_counter()
    for _ in range(3):
        agent.update(batch)
    print(f"first 3 updates (with compilation): {time.perf_counter() - start:.1f} s")
    updates = 300 if args.members == 1 else 30
    for _ in range(3):
        ms = time_updates(agent, batch, updates) * 1e3
        print(f"{args.mode} K={args.members}: {ms:.2f} ms per update")


if __name__ == "__main__":
    main()
