"""Learning quality on Pendulum-v1: mean of the last episodes' returns per seed and overall.

Trains all seeds as members of one ensemble (``ddpglab train --seeds N``) into ``--out``
and reads the returns back from its results store.

    python benchmarks/pendulum_quality.py [--preset pendulum-2023] [--seeds 5]
        [--episodes 200] [--last 50] [--target -250] [--out runs/bench-quality]
"""

from __future__ import annotations

import argparse
import os
import shutil

import numpy as np
import torch

from ddpglab.config import load_config
from ddpglab.run_folder import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="pendulum-2023")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--last", type=int, default=50, help="episodes averaged per seed")
    parser.add_argument("--target", type=float, default=-250.0)
    parser.add_argument("--out", default="runs/bench-quality")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    config = load_config(
        args.preset,
        overrides={"train.seeds": list(range(args.seeds)), "train.episodes": args.episodes},
    )
    summary = train(config, out=args.out)
    tails = [float(np.mean(m.returns[-args.last :])) for m in summary.members]
    print(f"preset {args.preset}, {args.seeds} seeds x {args.episodes} episodes")
    print(f"torch threads: {torch.get_num_threads()}, cores: {os.cpu_count()}, device: cpu")
    for m, tail in zip(summary.members, tails, strict=True):
        print(f"seed {m.seed}: mean of last {args.last} returns {tail:8.1f}")
    overall = float(np.mean(tails))
    verdict = "meets" if overall > args.target else "misses"
    print(f"overall: {overall:.1f} ({verdict} target > {args.target:g})")
    print(f"wall {summary.wall_s:.0f} s, {summary.env_steps_per_s:.0f} member-steps/s")


if __name__ == "__main__":
    main()
