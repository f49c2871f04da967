"""Full-state checkpoints: size, write and read time, and extra peak memory for a full 1e6
replay buffer; and the throughput cost of saving the state every 10 episodes.

    .venv/bin/python benchmarks/checkpoint.py [--episodes 30] [--repeats 2]

Part 1 fills a Trainer's buffer (capacity 1e6, one member) with 1e6 transitions, then
times ``Trainer.save_state`` and ``load_state``, and reads the process's peak resident
memory before and after the save (the save must not copy the buffer). Part 2 trains the
``pendulum`` preset (capacity 1e6) with ``train.state_every`` 0 and 10, alternating, and
compares env steps per second.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ddpglab.config import load_config
from ddpglab.run_folder import train
from ddpglab.state_files import load_state
from ddpglab.training import Trainer


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def full_buffer_checkpoint(preset: str, env_id: str, kind: str, folder: Path) -> dict:
    overrides = {"env.id": env_id, "replay.kind": kind, "replay.capacity": 1_000_000}
    trainer = Trainer(load_config(preset, overrides=overrides), folder)
    buffer = trainer.buffer
    rng = np.random.default_rng(0)
    chunk = 50_000  # small temporaries, so that the peak before the save is the buffer's
    for array in buffer.storage_arrays():  # every slot written: no zero pages left
        for start in range(0, array.shape[1], chunk):
            part = array[:, start : start + chunk]
            part[...] = rng.standard_normal(part.shape).astype(array.dtype)
    buffer.pos, buffer.size = 0, buffer.capacity
    before = peak_rss_mib()
    start = time.perf_counter()
    trainer.save_state()
    write_s = time.perf_counter() - start
    after_save = peak_rss_mib()
    start = time.perf_counter()
    state = load_state(trainer.state_path)
    read_s = time.perf_counter() - start
    del state
    size = trainer.state_path.stat().st_size
    trainer.envs.close()
    return {
        "env": env_id,
        "replay": kind,
        "file_mib": size / 2**20,
        "buffer_mib": sum(a.nbytes for a in buffer.storage_arrays()) / 2**20,
        "write_s": write_s,
        "read_s": read_s,
        "peak_rss_increase_during_save_mib": after_save - before,
    }


def throughput(state_every: int, episodes: int, folder: Path) -> float:
    overrides = {"train.state_every": state_every, "train.episodes": episodes}
    overrides.update({"train.seeds": [0], "train.eval_every": 0, "train.checkpoint_every": 0})
    config = load_config("pendulum", overrides=overrides)
    summary = train(config, folder / f"every{state_every}-{time.monotonic_ns()}")
    return summary.env_steps_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("| env | replay | buffer MiB | file MiB | write s | read s | peak RSS +MiB (save) |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for env_id, kind in [
            ("Pendulum-v1", "uniform"),
            ("Pendulum-v1", "prioritized"),
            ("BipedalWalker-v3", "uniform"),
        ]:
            row = full_buffer_checkpoint("pendulum", env_id, kind, folder / env_id / kind)
            print(
                f"| {row['env']} | {row['replay']} | {row['buffer_mib']:.0f} "
                f"| {row['file_mib']:.0f} | {row['write_s']:.2f} | {row['read_s']:.2f} "
                f"| {row['peak_rss_increase_during_save_mib']:.0f} |"
            )
        rates: dict[int, list[float]] = {0: [], 10: []}
        for _ in range(args.repeats):
            for every in (0, 10):
                rates[every].append(throughput(every, args.episodes, folder))
        plain, saving = np.mean(rates[0]), np.mean(rates[10])
        print(
            f"\nPendulum-v1, pendulum preset (capacity 1e6), {args.episodes} episodes x "
            f"{args.repeats}: state_every 0: {plain:.1f} env steps/s, state_every 10: "
            f"{saving:.1f} env steps/s, overhead {100 * (1 - saving / plain):.1f} %"
        )


if __name__ == "__main__":
    main()
