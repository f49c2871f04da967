"""Do seeds train faster as members of one ensemble? Member env steps per second of one
K-member run against one single-member run, on any preset.

Each measurement is a fresh subprocess running the whole trainer (act, step, store,
sample, update) for ``--steps`` env steps with ``--learning-starts`` random steps first;
K = 1 and each K alternate, ``--repeats`` times, and the medians are compared, because
wall times on a shared 2-core VM drift by 10-20 %. No evaluations or checkpoints.

    python benchmarks/ensemble_speed.py --preset bipedal-td3 [--members 3] [--threads 1]
        [--steps 4000] [--learning-starts 1000] [--repeats 3] [--set KEY=VALUE ...]

A ratio above 1 means K seeds in one run finish sooner than K runs one after another on
the same threads. Each measurement runs alone on an idle machine; a study runs one job per
worker at once, and there a Hopper job ran at about half the rate measured here
(BENCHMARKS.md, "Sizing the replay-volume study"). Size a study with ``study_time.py``,
which runs its jobs as the study does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def _subprocess(args: argparse.Namespace, members: int) -> float:
    cmd = [sys.executable, __file__, "--worker", "--preset", args.preset]
    cmd += ["--members", str(members), "--threads", str(args.threads)]
    cmd += ["--steps", str(args.steps), "--learning-starts", str(args.learning_starts)]
    cmd += [f"--set={item}" for item in args.set]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["steps_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="bipedal-td3")
    parser.add_argument("--members", default="3", help="member counts K, comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--steps", type=int, default=4000, help="env steps per measurement")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        from throughput import measure_ddpglab

        from ddpglab.config import parse_override

        overrides = dict(parse_override(item) for item in args.set)
        overrides["agent.learning_starts"] = args.learning_starts
        rate = measure_ddpglab(args.steps, int(args.members), args.threads, args.preset, overrides)
        print(json.dumps({"steps_per_s": rate}))
        return

    counts = [int(k) for k in args.members.split(",")]
    single: list[float] = []
    ensembles: dict[int, list[float]] = {k: [] for k in counts}
    for _ in range(args.repeats):
        single.append(_subprocess(args, 1))
        for k in counts:
            ensembles[k].append(_subprocess(args, k))
    med = statistics.median
    print(f"preset {args.preset}, torch threads {args.threads}, cores {os.cpu_count()}, CPU")
    if args.set:
        print("overrides: " + " ".join(args.set))
    print(f"{args.steps} env steps per measurement ({args.learning_starts} random first)")
    print(f"K=1: {med(single):8.1f} env steps/s          {[round(x, 1) for x in single]}")
    for k, rates in ensembles.items():
        print(
            f"K={k}: {med(rates):8.1f} member-steps/s   {[round(x, 1) for x in rates]}"
            f"   {med(rates) / med(single):.2f}x K=1"
        )


if __name__ == "__main__":
    main()
