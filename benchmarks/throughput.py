"""Env steps per second of ddpglab's trainer next to Stable-Baselines3 DDPG, in one run.

Pendulum-v1, hidden 256x256, batch 64, one gradient update per env step, replay 1e6,
training from the first step past one batch. Every measurement runs in a fresh
subprocess with the same torch thread count; ours and SB3's alternate, and the median of
``--repeats`` is reported, because wall times on a shared 2-core VM drift by 10-20 %.

    python benchmarks/throughput.py [--steps 3000] [--repeats 3] [--members 30] [--threads N]
                                    [--precision fp32|bf16]

``--precision`` sets ddpglab's ``train.precision`` (SB3 runs in fp32 either way).

Needs the ``bench`` extra (stable-baselines3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def measure_ddpglab(
    steps: int,
    members: int,
    threads: int,
    preset: str = "pendulum-2023",
    overrides: dict | None = None,
) -> float:
    """Member env steps per second of ``ddpglab.run_folder.train`` on ``preset`` (with
    ``overrides``), no evaluations or checkpoints."""
    from ddpglab.config import load_config
    from ddpglab.run_folder import train

    config = load_config(
        preset,
        overrides={
            **(overrides or {}),
            "train.steps": steps,
            "train.episodes": None,
            "train.seeds": list(range(members)),
            "train.eval_every": 0,
            "train.eval_episodes": 1,
            "train.checkpoint_every": 0,
            "train.torch_threads": threads,
        },
    )
    return train(config).env_steps_per_s


def measure_sb3(steps: int, threads: int) -> float:
    """Env steps per second of Stable-Baselines3 DDPG on the same hyperparameters."""
    import time

    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import DDPG
    from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

    torch.set_num_threads(threads)
    env = gym.make("Pendulum-v1")
    model = DDPG(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        buffer_size=1_000_000,
        learning_starts=65,
        batch_size=64,
        tau=1e-3,
        gamma=0.99,
        train_freq=1,
        gradient_steps=1,
        action_noise=OrnsteinUhlenbeckActionNoise(np.zeros(1), 0.2 * np.ones(1)),
        policy_kwargs={"net_arch": [256, 256]},
        seed=0,
        device="cpu",
    )
    start = time.perf_counter()
    model.learn(steps)
    return steps / (time.perf_counter() - start)


def _subprocess(kind: str, steps: int, members: int, threads: int, precision: str) -> float:
    cmd = [sys.executable, __file__, "--worker", kind, "--steps", str(steps)]
    cmd += ["--members", str(members), "--threads", str(threads), "--precision", precision]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["steps_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="env steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--members", type=int, default=30, help="K for the ensemble run")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--worker", choices=["ddpglab", "sb3"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "ddpglab":
        overrides = {"train.precision": args.precision}
        rate = measure_ddpglab(args.steps, args.members, args.threads, overrides=overrides)
        print(json.dumps({"steps_per_s": rate}))
        return
    if args.worker == "sb3":
        print(json.dumps({"steps_per_s": measure_sb3(args.steps, args.threads)}))
        return

    ours, sb3, ensemble = [], [], []
    for _ in range(args.repeats):
        ours.append(_subprocess("ddpglab", args.steps, 1, args.threads, args.precision))
        sb3.append(_subprocess("sb3", args.steps, 1, args.threads, "fp32"))
        ensemble.append(
            _subprocess("ddpglab", args.steps, args.members, args.threads, args.precision)
        )
    med = statistics.median
    print(f"torch threads: {args.threads}, cores: {os.cpu_count()}, device: cpu")
    print(f"ddpglab precision: {args.precision}")
    print(f"steps per measurement: {args.steps}, repeats: {args.repeats} (median shown)")
    print(f"ddpglab K=1:        {med(ours):8.1f} env steps/s   {[round(x) for x in ours]}")
    print(f"SB3 DDPG:           {med(sb3):8.1f} env steps/s   {[round(x) for x in sb3]}")
    print(f"ratio ddpglab/SB3:  {med(ours) / med(sb3):8.2f}x   (target >= 3)")
    print(
        f"ddpglab K={args.members}:       {med(ensemble):8.1f} member-steps/s"
        f"   {[round(x) for x in ensemble]}"
    )
    # K single-member runs one after another take K times one run's time per member-step.
    ratio = med(ensemble) / med(ours)
    print(f"ratio K={args.members}/K=1:      {ratio:8.2f}x   (target >= 8 at K=30)")


if __name__ == "__main__":
    main()
