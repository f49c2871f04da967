"""The trainer's time per member-update as a multiple of the FLOP floor, measured in one run.

The floor of one DDPG update is its matrix-product FLOPs divided by the rate this
machine multiplies 2048 x 2048 matrices at, both taken here: the FLOPs counted by hand
(every forward and backward product of critic, target critic, actor and target actor)
and checked against ``torch.utils.flop_counter``, the GEMM rate measured with the same
torch thread count, in float32 and in bfloat16. Then, for each member count K and each
precision of ``--precision`` (``train.precision``; they alternate, K by K, ``--rounds``
times, and the median is kept), the agent's update alone and the whole trainer (act,
step, store, sample, update) are timed, and each member-update's time is reported against
the floor at fp32's GEMM rate and at bf16's.

    python benchmarks/floor.py [--members 1,30] [--threads 1] [--updates 300] [--steps 2000]
                               [--precision fp32,bf16] [--rounds 1] [--device cpu|cuda]
                               [--gemm-size 2048]

On a GPU (``--device cuda``) the floor's rate is that of the same product on the GPU, and
every timing waits for the GPU to finish (``torch.cuda.synchronize``).

Pendulum-v1 with the pendulum-2023 preset's networks (hidden 256 x 256, batch 64) by
default; ``--preset`` and ``--set key=value`` change that.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def linear_flops(batch: int, sizes: list[int]) -> list[int]:
    """Forward FLOPs of each layer of an MLP with layer sizes ``sizes``: 2 B in out."""
    return [2 * batch * i * o for i, o in zip(sizes[:-1], sizes[1:], strict=True)]


def ddpg_update_flops(obs: int, act: int, hidden: list[int], batch: int) -> dict[str, int]:
    """Matrix-product FLOPs of one DDPG update (``DDPGAgent.update``), term by term.

    A layer's backward costs its forward twice over (input and weight gradients), less
    what nothing needs: the input gradient of a network's first layer, and, in the actor
    step, the critic's weight gradients (the backward runs for the actor's inputs only).
    """
    actor = linear_flops(batch, [obs, *hidden, act])
    critic = linear_flops(batch, [obs + act, *hidden, 1])
    a, c = sum(actor), sum(critic)
    return {
        "target actor forward": a,
        "target critic forward": c,
        "critic forward": c,
        "critic backward (weights, inputs after layer 1)": c + (c - critic[0]),
        "actor forward": a,
        "critic forward on mu(s)": c,
        "critic backward to the action (inputs only)": c,
        "actor backward (weights, inputs after layer 1)": a + (a - actor[0]),
    }


def counted_flops(agent, batch) -> int:
    """FLOPs of one ``agent.update(batch)`` as torch's flop counter sees them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        agent.update(batch)
    return counter.get_total_flops()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_rate(
    threads: int,
    device: torch.device,
    size: int = 2048,
    repeats: int = 10,
    dtype: torch.dtype = torch.float32,
) -> float:
    """FLOP/s of a ``size`` x ``size`` matrix product in ``dtype``, best of ``repeats``."""
    torch.set_num_threads(threads)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def random_batch(members: int, batch: int, obs: int, act: int, device: str = "cpu"):
    """A fixed random minibatch, drawn on the CPU (the same on every device), then moved."""
    from ddpglab.replay import Batch

    gen = torch.Generator().manual_seed(0)
    on_cpu = Batch(
        obs=torch.randn(members, batch, obs, generator=gen),
        actions=torch.rand(members, batch, act, generator=gen) * 2 - 1,
        rewards=torch.randn(members, batch, generator=gen),
        next_obs=torch.randn(members, batch, obs, generator=gen),
        terminated=torch.zeros(members, batch),
        indices=np.zeros((members, batch), dtype=np.int64),
        weights=torch.ones(members, batch),
        discounts=torch.full((members, batch), 0.99),
    )
    tensors = {k: v.to(device) for k, v in on_cpu._asdict().items() if isinstance(v, torch.Tensor)}
    return on_cpu._replace(**tensors)


def time_updates(agent, batch, updates: int) -> float:
    """Seconds per ``agent.update``, median of 5 blocks of ``updates // 5``."""
    for _ in range(10):
        agent.update(batch)
    block = max(1, updates // 5)
    times = []
    for _ in range(5):
        synchronize(agent.device)
        start = time.perf_counter()
        for _ in range(block):
            agent.update(batch)
        synchronize(agent.device)
        times.append((time.perf_counter() - start) / block)
    return float(np.median(times))


def time_trainer(config, steps: int) -> float:
    """Seconds per lockstep env step of the whole trainer, updates included."""
    from ddpglab.training import Trainer

    summary = Trainer(config).run()
    return summary.wall_s / steps


def plain_ddpg_dims(config, parser: argparse.ArgumentParser) -> tuple[int, int]:
    """The env's observation and action sizes; refuses what the hand count does not cover."""
    from ddpglab.envs import make_env

    env = make_env(config.env.id)
    obs, act = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    cfg = config.agent
    if (
        cfg.twin_critics
        or cfg.target_noise
        or cfg.policy_delay != 1
        or cfg.actor != "mlp"
        or cfg.critic != "mlp"
    ):
        parser.error("the hand count is of plain DDPG with MLPs: turn the TD3 options off")
    return obs, act


def measure(
    config, dims: tuple[int, int], members: int, precision: str, args, device
) -> dict[str, float]:
    """Seconds per member-update of the agent alone and per member-step of the trainer."""
    from ddpglab.agent import DDPGAgent

    obs, act = dims
    agent = DDPGAgent(obs, act, config.agent, list(range(members)), device, precision)
    batch = random_batch(members, config.agent.batch_size, obs, act, device)
    times = {"update_s": time_updates(agent, batch, args.updates) / members}
    if args.steps:
        run = config.model_copy(
            update={"train": config.train.model_copy(update={"precision": precision})}
        )
        times["step_s"] = time_trainer(run, args.steps) / members
    return times


def main() -> None:
    from ddpglab.agent import DDPGAgent
    from ddpglab.config import load_config, parse_override

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1,30", help="member counts K, comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--updates", type=int, default=300, help="updates timed per K")
    parser.add_argument("--steps", type=int, default=2000, help="trainer steps per K (0: skip)")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or fp32,bf16")
    parser.add_argument("--rounds", type=int, default=1, help="alternations of the precisions")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--gemm-size", type=int, default=2048, help="n of the n x n product the floor's rate is of"
    )
    parser.add_argument("--preset", default="pendulum-2023")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    precisions = args.precision.split(",")
    if not set(precisions) <= {"fp32", "bf16"}:
        parser.error(f"--precision: expected fp32, bf16 or both, got {args.precision}")

    device = torch.device(args.device)
    rates = {
        "fp32": gemm_rate(args.threads, device, args.gemm_size),
        "bf16": gemm_rate(args.threads, device, args.gemm_size, dtype=torch.bfloat16),
    }
    overrides = dict(parse_override(item) for item in args.set)
    rows = []
    for members in [int(k) for k in args.members.split(",")]:
        config = load_config(
            args.preset,
            overrides={
                **overrides,
                "train.seeds": list(range(members)),
                "train.steps": max(args.steps, 1),
                "train.episodes": None,
                "train.eval_every": 0,
                "train.eval_episodes": 1,
                "train.checkpoint_every": 0,
                "train.state_every": 0,
                "train.torch_threads": args.threads,
                "train.device": args.device,
            },
        )
        obs, act = plain_ddpg_dims(config, parser)
        cfg = config.agent
        by_hand = ddpg_update_flops(obs, act, cfg.hidden, cfg.batch_size)
        flops = sum(by_hand.values())
        counted = counted_flops(
            DDPGAgent(obs, act, cfg, list(range(members)), device),
            random_batch(members, cfg.batch_size, obs, act, device),
        )
        measured: dict[str, list[dict[str, float]]] = {p: [] for p in precisions}
        for r in range(args.rounds):
            for precision in precisions if r % 2 == 0 else precisions[::-1]:
                measured[precision].append(
                    measure(config, (obs, act), members, precision, args, device)
                )
        for precision in precisions:
            update_s = float(np.median([m["update_s"] for m in measured[precision]]))
            row = {
                "members": members,
                "precision": precision,
                "threads": args.threads,
                "device": args.device,
                "flops_by_hand": flops,
                "flops_counted": counted / members,
                "gemm_gflops_fp32": rates["fp32"] / 1e9,
                "gemm_gflops_bf16": rates["bf16"] / 1e9,
                "update_ms_per_member": update_s * 1e3,
                "member_updates_per_s": 1 / update_s,
                "update_over_fp32_floor": update_s * rates["fp32"] / flops,
                "update_over_bf16_floor": update_s * rates["bf16"] / flops,
            }
            if args.steps:
                step_s = float(np.median([m["step_s"] for m in measured[precision]]))
                row |= {
                    "trainer_ms_per_member_step": step_s * 1e3,
                    "member_steps_per_s": 1 / step_s,
                    "trainer_over_fp32_floor": step_s * rates["fp32"] / flops,
                    "trainer_over_bf16_floor": step_s * rates["bf16"] / flops,
                }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print_tables(rows, by_hand, rates, args)


def print_tables(rows: list[dict], by_hand: dict[str, int], rates: dict[str, float], args) -> None:
    """The FLOP count, the GEMM rates and one line per K and precision, as markdown."""
    print("\nFLOPs of one update, by hand (K = 1):")
    for term, flops in by_hand.items():
        print(f"  {term:<48} {flops / 1e6:8.2f} MFLOP")
    print(f"  {'total':<48} {sum(by_hand.values()) / 1e6:8.2f} MFLOP")
    where = f"{args.device}, {args.threads} thread(s)"
    for name, rate in rates.items():
        print(f"GEMM {args.gemm_size}^2 {name} on {where}: {rate / 1e9:.1f} GFLOP/s")
    print(
        "\n| K | precision | member-updates/s | update / fp32 floor | update / bf16 floor "
        "| member-steps/s | step / fp32 floor | step / bf16 floor |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        trainer = (
            f"{r['member_steps_per_s']:.0f} | {r['trainer_over_fp32_floor']:.2f}x | "
            f"{r['trainer_over_bf16_floor']:.2f}x"
            if "member_steps_per_s" in r
            else "- | - | -"
        )
        print(
            f"| {r['members']} | {r['precision']} | {r['member_updates_per_s']:.0f} | "
            f"{r['update_over_fp32_floor']:.2f}x | {r['update_over_bf16_floor']:.2f}x | {trainer} |"
        )


if __name__ == "__main__":
    main()
