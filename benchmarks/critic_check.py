"""Does a critic know what its own policy earns? Q(s_0, mu(s_0)) against deterministic returns.

The training episodes in the store pair the critic's Q(s_0, mu(s_0)) with the discounted
return of an episode played *with exploration noise*, while the critic estimates the value
of the noise-free policy mu: noise that costs return inflates the apparent overestimate.
This check removes that bias for one saved training state (``state-*.npz``, written while
a run trains; ``cp`` it to keep one, since a finished run deletes it). Each member's actor
plays ``--episodes`` deterministic episodes with ``ddpglab enjoy``'s code, from the same
start states (``--reset-seed``), and the member's own critic scores each start state:

    overestimate = mean over episodes of  Q(s_0, mu(s_0)) - sum_t gamma^t r_t

with the member's own gamma. An episode the time limit cuts at T leaves out the tail
gamma^T V(s_T) that the critic counts: gamma^T is about 1e-7 for BipedalWalker's 1600
steps at gamma 0.99, but 0.13 for Pendulum's 200, so read short-horizon envs with that in
mind (the store's ``discounted_return`` adds the critic's own tail instead). One Markdown
row per member; nothing is written.

    python benchmarks/critic_check.py runs/bipedal-td3/runs/ddpg/state-*.npz \
        [--episodes 20] [--reset-seed 12345]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
from walker_outcomes import outcome_name


def critic_rows(state_path: Path, episodes: int, reset_seed: int) -> list[str]:
    """One Markdown row per member of the saved run: Q(s_0) against what mu earns."""
    from ddpglab.config import validate
    from ddpglab.report.enjoy import find_policy, play_episodes
    from ddpglab.state_files import load_state
    from ddpglab.training import Trainer

    state = load_state(state_path)
    config = validate(state["config"])
    trainer = Trainer(config)  # no folder: nothing is written
    try:
        trainer.load_state_dict(state)
        members = len(trainer.seeds)
        rows = []
        with tempfile.TemporaryDirectory() as folder:
            for k, member in enumerate(trainer.members):
                actor_file = Path(folder) / f"member{k}.pt"
                trainer.save_actor(k, actor_file)
                played = list(
                    play_episodes(
                        find_policy(actor_file, None, None, None),
                        episodes,
                        reset_seed=reset_seed,
                        gamma=config.agent.gamma,
                    )
                )
                starts = np.stack([outcome.start for outcome in played])
                q_start = [
                    float(trainer.agent.value_estimate(np.repeat(s[None], members, 0))[k])
                    for s in starts
                ]
                q_mean = statistics.fmean(q_start)
                earned = statistics.fmean(outcome.discounted_return for outcome in played)
                falls = sum(outcome_name(o.terminated, o.final_reward) == "fell" for o in played)
                rows.append(
                    f"| {member.seed} | {member.env_steps:,} | {q_mean:.1f} | {earned:.1f} "
                    f"| {q_mean - earned:+.1f} "
                    f"| {statistics.fmean(o.episode_return for o in played):.1f} "
                    f"| {statistics.fmean(o.length for o in played):.0f} "
                    f"| {falls}/{len(played)} |"
                )
    finally:
        trainer.envs.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", type=Path, help="a saved training state (state-*.npz)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--reset-seed", type=int, default=12345)
    args = parser.parse_args()
    print(f"{args.state} ({args.episodes} deterministic episodes per member)\n")
    print(
        "| seed | env steps | Q(s0, mu(s0)) | discounted return | overestimate "
        "| return | length | falls |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in critic_rows(args.state, args.episodes, args.reset_seed):
        print(row)


if __name__ == "__main__":
    main()
