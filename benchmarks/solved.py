"""When each run of a study first reaches a target mean return over N deterministic episodes.

The training-time evaluations (a few episodes each) screen the saved actors; every actor
whose evaluation reached ``--screen`` plays ``--episodes`` deterministic episodes
(``ddpglab enjoy``'s code), in training order, until one's mean reaches ``--target``: its
env steps and the run's wall time at that checkpoint are "first solved". Then the
``--best`` most promising of the other screened actors play too, and the best mean found
is reported with the file it came from (the walker shipped in docs/ is chosen this way).

    python benchmarks/solved.py runs/bipedal-td3 --variant td3 [--target 300]
        [--episodes 100] [--screen 250] [--best 3] [--reset-seed 12345]

BipedalWalker-v3 counts as solved at 300 over 100 consecutive episodes. One JSON line per
seed, with the settings it was found with; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import time
from contextlib import closing
from pathlib import Path


def candidates(study: Path, variant: str, seed: int, screen: float) -> list[dict]:
    """The run's checkpoints whose training-time evaluation reached ``screen``, in order."""
    with closing(sqlite3.connect(f"file:{study / 'results.sqlite'}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT c.episode, c.env_steps, c.path, v.mean_return, e.wall_s "
            "FROM runs r JOIN checkpoints c ON c.run_id = r.run_id "
            "JOIN evals v ON v.run_id = r.run_id AND v.episode = c.episode "
            "JOIN episodes e ON e.run_id = r.run_id AND e.episode = c.episode "
            "WHERE r.variant = ? AND r.seed = ? AND v.mean_return >= ? ORDER BY c.episode",
            (variant, seed, screen),
        ).fetchall()
    return [dict(row) for row in rows]


def play(study: Path, variant: str, seed: int, episode: int, episodes: int, reset_seed: int):
    """Mean and standard deviation of ``episodes`` deterministic returns of one checkpoint."""
    from ddpglab.report.enjoy import episode_returns, find_policy

    policy = find_policy(study, variant, seed, episode)
    returns = list(episode_returns(policy, episodes, reset_seed=reset_seed))
    return statistics.fmean(returns), statistics.pstdev(returns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--seeds", default=None, help="comma-separated (default: all)")
    parser.add_argument("--target", type=float, default=300.0)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--screen", type=float, default=250.0)
    parser.add_argument("--best", type=int, default=3, help="further candidates to play")
    parser.add_argument("--reset-seed", type=int, default=12345)
    args = parser.parse_args()

    with closing(sqlite3.connect(f"file:{args.study / 'results.sqlite'}?mode=ro", uri=True)) as db:
        all_seeds = [
            s for (s,) in db.execute("SELECT seed FROM runs WHERE variant = ?", (args.variant,))
        ]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else all_seeds
    for seed in seeds:
        start = time.perf_counter()
        pool = candidates(args.study, args.variant, seed, args.screen)
        played: dict[int, tuple[float, float]] = {}
        first = None
        for row in pool:
            played[row["episode"]] = play(
                args.study, args.variant, seed, row["episode"], args.episodes, args.reset_seed
            )
            if played[row["episode"]][0] >= args.target:
                first = row
                break
        rest = sorted(
            (row for row in pool if row["episode"] not in played),
            key=lambda row: row["mean_return"],
            reverse=True,
        )
        for row in rest[: args.best]:
            played[row["episode"]] = play(
                args.study, args.variant, seed, row["episode"], args.episodes, args.reset_seed
            )
        best = max(played, key=lambda episode: played[episode][0], default=None)
        by_episode = {row["episode"]: row for row in pool}
        result = {
            "variant": args.variant,
            "seed": seed,
            "target": args.target,
            "episodes": args.episodes,
            "reset_seed": args.reset_seed,
            "screen": args.screen,
            "screened": len(pool),
            "played": len(played),
            "first_solved": None
            if first is None
            else {
                "episode": first["episode"],
                "env_steps": first["env_steps"],
                "wall_min": round(first["wall_s"] / 60, 1),
                "mean": round(played[first["episode"]][0], 1),
                "std": round(played[first["episode"]][1], 1),
            },
            "best": None
            if best is None
            else {
                "episode": best,
                "env_steps": by_episode[best]["env_steps"],
                "mean": round(played[best][0], 1),
                "std": round(played[best][1], 1),
                "path": str(args.study / by_episode[best]["path"]),
            },
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
