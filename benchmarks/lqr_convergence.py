"""DDPG against the Riccati optimum on ddpglab/LQR-v0: each seed's gain error and return gap.

Trains all seeds as members of one ensemble with the ``lqr`` preset (linear actor,
quadratic critic), the same experiment as ``ddpglab theory lqr --seeds N``, on one torch
thread, and writes the results (with each seed's gain error at every checkpoint) as JSON
for ``python -m ddpglab.theory.plots --lqr-json``.

    python benchmarks/lqr_convergence.py [--seeds 3] [--episodes 200] [--out runs/bench-lqr]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ddpglab.config import load_config
from ddpglab.theory.lqr_ddpg import GAIN_TOLERANCE, RETURN_TOLERANCE, run_lqr_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-lqr"))
    args = parser.parse_args()

    config = load_config(
        "lqr",
        overrides={
            "train.seeds": list(range(args.seeds)),
            "train.episodes": args.episodes,
            "train.torch_threads": 1,
        },
    )
    start = time.perf_counter()
    result = run_lqr_experiment(config, eval_episodes=args.eval_episodes)
    wall = time.perf_counter() - start

    print(f"lqr preset, {args.seeds} seeds x {args.episodes} episodes of 100 steps")
    print(f"torch threads: {torch.get_num_threads()}, cores: {os.cpu_count()}, device: cpu")
    print(f"gamma {result.gamma:g}, K* = {result.optimal_gain}, J(K*) = {result.optimal_cost:.4f}")
    for m in result.members:
        print(
            f"seed {m.seed}: K = {[[round(v, 4) for v in row] for row in m.gain]}, "
            f"|K - K*|/|K*| = {100 * m.gain_error:.2f}%, J(K)/J(K*) - 1 = "
            f"{100 * m.cost_gap:.4f}%, return {m.eval_return:.4f} vs K*'s "
            f"{m.optimal_return:.4f} (shortfall {100 * m.return_shortfall:.3f}%)"
        )
    passed = sum(m.passed for m in result.members)
    print(
        f"{passed} of {len(result.members)} seeds within {100 * GAIN_TOLERANCE:g}% of K* and "
        f"{100 * RETURN_TOLERANCE:g}% of its return; wall {wall:.1f} s"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lqr.json").write_text(json.dumps(asdict(result), indent=2))
    print(f"results in {args.out / 'lqr.json'}")


if __name__ == "__main__":
    main()
