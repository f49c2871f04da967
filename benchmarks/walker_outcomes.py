"""How a study's walkers end their episodes: a fall, the far end of the course, or the clock.

BipedalWalker-v3 ends an episode in one of three ways: the hull touches the ground (a fall,
whose last reward is the env's -100 penalty; walking backwards off the start counts the same),
the walker passes the far end of the course (the env ends it without the penalty), or the
1600-step time limit truncates it. A walker that has learned to stand still shows up as
episodes that reach the time limit with a return near zero.

Every ``--every``-th saved actor of each run (and the last) plays ``--episodes``
deterministic episodes with ``ddpglab enjoy``'s code, from the same start states
(``--reset-seed``). One JSON line per actor, then two Markdown tables per variant by
stretch of ``--bin`` env steps, over all the variant's seeds: the shares of each outcome of
those deterministic episodes, and, from the store, the training episodes' mean length,
share ended by the env, critic estimate Q(s_0, mu(s_0)) at their start and the discounted
return they then earned.

    python benchmarks/walker_outcomes.py runs/bipedal-td3 --variants ddpg,td3 \
        [--seeds 0,1,2] [--every 5] [--episodes 10] [--bin 100000] [--reset-seed 12345]

Nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import time
from collections import defaultdict
from contextlib import closing
from pathlib import Path

FALL_PENALTY = -100.0


def outcome_name(terminated: bool, final_reward: float) -> str:
    """'fell' (ended by the env with the fall penalty), 'finished' (ended by the env
    without it: the far end reached) or 'time limit' (truncated)."""
    if not terminated:
        return "time limit"
    return "fell" if final_reward <= FALL_PENALTY else "finished"


def play_actor(study: Path, variant: str, seed: int, episode: int, episodes: int, reset_seed: int):
    """Outcome counts, mean length and mean return of one saved actor's episodes."""
    from ddpglab.report.enjoy import find_policy, play_episodes

    policy = find_policy(study, variant, seed, episode)
    played = list(play_episodes(policy, episodes, reset_seed=reset_seed))
    counts = {"fell": 0, "finished": 0, "time limit": 0}
    for outcome in played:
        counts[outcome_name(outcome.terminated, outcome.final_reward)] += 1
    return (
        counts,
        statistics.fmean(o.length for o in played),
        statistics.fmean(o.episode_return for o in played),
    )


def markdown_table(variant: str, rows: list[dict], bin_steps: int) -> str:
    """Shares of each outcome, mean length and mean return per stretch of env steps."""
    by_bin: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_bin[row["env_steps"] // bin_steps].append(row)
    lines = [
        f"| {variant}: env steps | actors | fell | finished | time limit | length | return |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for index in sorted(by_bin):
        group = by_bin[index]
        total = sum(sum(r["outcomes"].values()) for r in group)
        shares = [
            sum(r["outcomes"][name] for r in group) / total
            for name in ("fell", "finished", "time limit")
        ]
        length = statistics.fmean(r["mean_length"] for r in group)
        ret = statistics.fmean(r["mean_return"] for r in group)
        low, high = index * bin_steps, (index + 1) * bin_steps
        lines.append(
            f"| {low:,}-{high:,} | {len(group)} | "
            + " | ".join(f"{share:.0%}" for share in shares)
            + f" | {length:.0f} | {ret:.1f} |"
        )
    return "\n".join(lines)


def training_table(study: Path, variant: str, seeds: list[int], bin_steps: int) -> str:
    """The variant's training episodes (with exploration noise) by stretch of env steps:
    mean length, share ended by the env, mean Q(s_0, mu(s_0)) and discounted return."""
    marks = ",".join("?" * len(seeds))
    with closing(sqlite3.connect(f"file:{study / 'results.sqlite'}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT e.env_steps / ?, COUNT(*), AVG(e.length), AVG(e.terminated), "
            "AVG(e.q_start), AVG(e.discounted_return), AVG(e.return) "
            "FROM episodes e JOIN runs r ON r.run_id = e.run_id "
            f"WHERE r.variant = ? AND r.seed IN ({marks}) GROUP BY 1 ORDER BY 1",
            (bin_steps, variant, *seeds),
        ).fetchall()
    lines = [
        f"| {variant}: env steps | episodes | length | ended by env | Q(s0) | discounted return "
        "| return |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for index, count, length, ended, q, discounted, ret in rows:
        low, high = index * bin_steps, (index + 1) * bin_steps
        lines.append(
            f"| {low:,}-{high:,} | {count} | {length:.0f} | {ended:.0%} | {q:.1f} | "
            f"{discounted:.1f} | {ret:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--variants", required=True, help="comma-separated")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated")
    parser.add_argument("--every", type=int, default=5, help="play every N-th saved actor")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--bin", type=int, default=100_000, help="env steps per table row")
    parser.add_argument("--reset-seed", type=int, default=12345)
    args = parser.parse_args()

    from ddpglab.report.animate import pick_checkpoints, run_checkpoints

    seeds = [int(s) for s in args.seeds.split(",")]
    tables = []
    for variant in args.variants.split(","):
        rows = []
        for seed in seeds:
            _, _, checkpoints = run_checkpoints(args.study, variant, seed)
            for checkpoint in pick_checkpoints(checkpoints, args.every):
                start = time.perf_counter()
                counts, length, ret = play_actor(
                    args.study, variant, seed, checkpoint["episode"], args.episodes, args.reset_seed
                )
                row = {
                    "variant": variant,
                    "seed": seed,
                    "episode": checkpoint["episode"],
                    "env_steps": checkpoint["env_steps"],
                    "outcomes": counts,
                    "mean_length": round(length, 1),
                    "mean_return": round(ret, 1),
                    "seconds": round(time.perf_counter() - start, 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        tables.append(markdown_table(variant, rows, args.bin))
        tables.append(training_table(args.study, variant, seeds, args.bin))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
