"""Cost of each replay strategy: (a) one add plus one sample(64), (b) training throughput.

(a) For every strategy (and uniform with CER, ``replay.combined``), capacity 1e4, 1e5 and
    1e6 (buffer full) and K = 1 and 10 members: the mean time of one ``add`` followed by
    one ``sample(64)``, and its ratio to uniform's at the same capacity and K.
(b) Env steps per second of the trainer on Pendulum-v1 (preset pendulum-2023: hidden 256,
    batch 64, one update per step) with the buffer pre-filled to 1e6 transitions, per
    strategy as a ratio to uniform: each strategy runs in ``--rounds`` pairs with uniform,
    back to back, and the median of the pairs' ratios is reported, because wall times on
    a shared VM drift by 10-30 % between runs a minute apart.

    python benchmarks/replay_sampling.py [--part a|b|both] [--ops 2000] [--steps 1500]
        [--rounds 5] [--threads N] [--kinds lap,geometric,...]

Pre-filling writes the storage arrays directly (rewards spread like Pendulum's, in
[-16, 0]) and then rebuilds each strategy's index the way it would stand after adding
them one by one: the PER sum tree at priority 1, the softmax reward bins, full FIFOs with their
episode records.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from ddpglab.replay import ReplayBuffer, make_buffer, strategies
from ddpglab.replay.prioritized import PrioritizedReplay
from ddpglab.replay.softmax import SoftmaxReplay
from ddpglab.replay.stratified import StratifiedReplay

OBS_DIM, ACT_DIM, BATCH = 3, 1, 64
KINDS = list(strategies())
#: What is measured: a label, the strategy and its buffer options; every registered
#: strategy, and uniform with the newest transition in each batch (CER).
VARIANTS: dict[str, tuple[str, dict]] = {
    **{kind: (kind, {}) for kind in KINDS},
    "uniform+cer": ("uniform", {"combined": True}),
}


def prefill(buf: ReplayBuffer, seed: int = 0) -> None:
    """Fill every slot of ``buf`` (ring and strata) and rebuild the strategy's index."""
    rng = np.random.default_rng(seed)
    slots = buf.rewards.shape[1]
    values = rng.random(buf.transitions.shape, dtype=np.float32) * 2 - 1
    buf.transitions[...] = torch.from_numpy(values)  # obs, actions and next_obs
    buf.rewards[...] = rng.uniform(-16, 0, buf.rewards.shape)
    buf.episode_end[:, 199::200] = True  # Pendulum's 200-step episodes, truncated
    buf.pos, buf.size = 0, buf.capacity
    if isinstance(buf, PrioritizedReplay):
        everything = np.tile(np.arange(buf.capacity), (buf.members, 1))
        buf.trees.set(everything, np.ones(everything.shape))
    if isinstance(buf, SoftmaxReplay):
        buf.reindex()
    if isinstance(buf, StratifiedReplay):
        prefill_fifos(buf)
    assert slots == buf.capacity * buf.slots_per_capacity


def prefill_fifos(buf: StratifiedReplay, length: int = 200) -> None:
    """Both FIFOs full of ``length``-step episodes, with the episode records that ages and
    replay_stats read: the ring holds the newest ``capacity`` steps, and before them the
    episodes alternate good and bad over 2 ``capacity`` steps."""
    per_fifo = buf.capacity // length
    buf.adds = 3 * buf.capacity
    buf.fifo_size[...] = per_fifo * length
    buf.fifo_pos[...] = (per_fifo * length) % buf.capacity
    for fifos in buf.fifo_episodes:
        for fifo, episodes in enumerate(fifos):
            episodes.clear()
            ends = length * (2 * np.arange(per_fifo) + fifo + 1)  # good even, bad odd
            episodes.extend([int(end), length] for end in ends)


def time_add_and_sample(variant: str, capacity: int, members: int, ops: int) -> float:
    """Mean seconds of one add plus one sample(64) on a full buffer."""
    kind, options = VARIANTS[variant]
    buf = make_buffer(kind, capacity, OBS_DIM, ACT_DIM, members, seed=0, **options)
    prefill(buf)
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1, 1, (ops, members, OBS_DIM)).astype(np.float32)
    act = rng.uniform(-1, 1, (ops, members, ACT_DIM)).astype(np.float32)
    rew = rng.uniform(-16, 0, (ops, members)).astype(np.float32)
    no = np.zeros(members, dtype=bool)
    ends = np.zeros(members, dtype=bool)
    start = time.perf_counter()
    for i in range(ops):
        ended = ends if (i + 1) % 200 else ~ends
        buf.add(obs[i], act[i], rew[i], obs[i], no, ended)
        batch = buf.sample(BATCH)
        if buf.needs_priorities:  # as the trainer does after each update
            buf.update_priorities(batch.indices, rng.standard_normal(batch.indices.shape))
    return (time.perf_counter() - start) / ops


def part_a(ops: int) -> list[dict]:
    rows = []
    for members in (1, 10):
        for capacity in (10_000, 100_000, 1_000_000):
            times = {v: time_add_and_sample(v, capacity, members, ops) for v in VARIANTS}
            for variant, seconds in times.items():
                rows.append(
                    {
                        "K": members,
                        "capacity": capacity,
                        "kind": variant,
                        "us": round(seconds * 1e6, 1),
                        "ratio_to_uniform": round(seconds / times["uniform"], 2),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def training_steps_per_s(variant: str, steps: int, threads: int) -> float:
    """Env steps/s of the trainer with its buffer pre-filled to 1e6 transitions."""
    from ddpglab.config import load_config
    from ddpglab.training import Trainer

    kind, options = VARIANTS[variant]
    config = load_config(
        "pendulum-2023",
        overrides={
            **{f"replay.{key}": value for key, value in options.items()},
            "replay.kind": kind,
            "replay.capacity": 1_000_000,
            "train.steps": steps,
            "train.eval_every": 0,
            "train.eval_episodes": 1,
            "train.checkpoint_every": 0,
            "train.torch_threads": threads,
        },
    )
    trainer = Trainer(config)
    prefill(trainer.buffer)
    start = time.perf_counter()
    trainer.run()
    return steps / (time.perf_counter() - start)


def part_b(steps: int, rounds: int, threads: int, kinds: list[str]) -> list[dict]:
    """Each strategy against uniform in pairs: per round, one run of each back to back
    (which goes first alternates), so both meet the same drift of the machine; the ratio
    of the pair is the measurement, its median over rounds the figure."""
    rows = []
    for variant in [v for v in kinds if v != "uniform"]:
        ratios, uniform_rates, rates = [], [], []
        for r in range(rounds):
            pair = ("uniform", variant) if r % 2 == 0 else (variant, "uniform")
            rate = {v: training_steps_per_s(v, steps, threads) for v in pair}
            uniform_rates.append(rate["uniform"])
            rates.append(rate[variant])
            ratios.append(rate[variant] / rate["uniform"])
        rows.append(
            {
                "kind": variant,
                "ratio_median": round(statistics.median(ratios), 3),
                "ratio_min": round(min(ratios), 3),
                "ratio_max": round(max(ratios), 3),
                "steps_per_s_median": round(statistics.median(rates), 1),
                "uniform_steps_per_s_median": round(statistics.median(uniform_rates), 1),
                "ratios": [round(x, 3) for x in ratios],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["a", "b", "both"], default="both")
    parser.add_argument("--ops", type=int, default=2000, help="add+sample pairs per cell (a)")
    parser.add_argument("--steps", type=int, default=1500, help="env steps per training run (b)")
    parser.add_argument("--rounds", type=int, default=5, help="pairs with uniform per strategy (b)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--kinds", default=",".join(VARIANTS), help="variants paired with uniform in (b)"
    )
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    if unknown := set(kinds) - set(VARIANTS):
        parser.error(f"--kinds: unknown {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    torch.set_num_threads(args.threads)
    print(json.dumps({"torch_threads": args.threads, "cores": os.cpu_count()}))
    if args.part in ("a", "both"):
        part_a(args.ops)
    if args.part in ("b", "both"):
        part_b(args.steps, args.rounds, args.threads, kinds)


if __name__ == "__main__":
    main()
