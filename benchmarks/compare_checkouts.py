"""Throughput of two checkouts of ddpglab, alternating in one run: did a change cost speed?

Runs ``benchmarks/throughput.py``'s ddpglab worker of each checkout (its own source first
on PYTHONPATH, so each measures its own code) in fresh subprocesses, before and after
taking turns, and reports the median member env steps/s of each and their ratio. Wall
times on a shared 2-core VM drift by 10-20 % over minutes; alternating keeps the drift out
of the ratio.

    git worktree add /tmp/before <commit>
    python benchmarks/compare_checkouts.py /tmp/before . --members 1 --steps 3000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def member_steps_per_s(checkout: Path, members: int, steps: int, threads: int) -> float:
    """One throughput measurement of ``checkout``'s trainer, in a fresh process."""
    cmd = [sys.executable, str(checkout / "benchmarks" / "throughput.py"), "--worker", "ddpglab"]
    cmd += ["--steps", str(steps), "--members", str(members), "--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return float(json.loads(out.strip().splitlines()[-1])["steps_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="checkout measured first in each round")
    parser.add_argument("after", type=Path, help="checkout measured second in each round")
    parser.add_argument("--members", type=int, default=1, help="K members trained together")
    parser.add_argument("--steps", type=int, default=3000, help="env steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of before, after")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    args = parser.parse_args()

    rates: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for name in rates:
            checkout = getattr(args, name).resolve()
            rates[name].append(member_steps_per_s(checkout, args.members, args.steps, args.threads))
    med = {name: statistics.median(values) for name, values in rates.items()}
    print(f"K={args.members}, {args.steps} steps, {args.threads} threads, {args.repeats} rounds")
    for name, values in rates.items():
        print(f"{name:>6}: median {med[name]:8.1f} member-steps/s  {[round(v, 1) for v in values]}")
    print(f"after / before: {med['after'] / med['before']:.3f}")


if __name__ == "__main__":
    main()
