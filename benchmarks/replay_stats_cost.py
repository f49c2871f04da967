"""Cost of the replay diagnostics: one member's ``replay_stats`` at capacity 1e6, full ring.

The trainer computes them once per step on which some member's episode ended, never per
step. For each strategy: the median time of ``buffer.replay_stats(64)`` with K = 1 and the
buffer pre-filled as in ``replay_sampling.py`` (stratified: both FIFOs full of 200-step
episodes, good and bad alternating), in ms per member per episode end, and that as a share
of a 200-step Pendulum episode at ``--ms-per-step`` (about 3 ms per env step at K = 1).
Then the memory of stratified replay's FIFO age records at 1e6 x 30 members, beside what a
per-slot write step would cost. Last, for the strategies whose law takes a pass over the
buffer, a K-member buffer (``--members``, ``--capacity``: the replay-volume study's 5 x 1e5
by default) asked for all members' stats, as the trainer did at every episode end, and for
one member's, as it does now for the member whose episode ended. A few seconds in all:

    python benchmarks/replay_stats_cost.py [--repeats 5] [--ms-per-step 3] [--members 5]
        [--capacity 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc

from replay_sampling import ACT_DIM, OBS_DIM, prefill

from ddpglab.replay import make_buffer
from ddpglab.replay.stratified import StratifiedReplay

KINDS = ("uniform", "prioritized", "lap", "softmax", "stratified", "geometric", "ere")
CAPACITY, EPISODE = 1_000_000, 200


def fill_fifo_records(buf: StratifiedReplay, members: range) -> None:
    """Both FIFOs full of 200-step episodes that alternated good, bad, good, ...: the age
    records a run leaves after 2 C steps (the ring has wrapped twice)."""
    per_fifo = buf.capacity // EPISODE
    buf.adds = 2 * buf.capacity + buf.capacity
    for k in members:
        for fifo, episodes in enumerate(buf.fifo_episodes[k]):
            episodes.clear()
            for i in range(per_fifo):
                end = buf.capacity + (2 * i + fifo + 1) * EPISODE
                episodes.append([end, EPISODE])


def stats_ms(kind: str, repeats: int) -> float:
    buf = make_buffer(kind, CAPACITY, OBS_DIM, ACT_DIM, 1, seed=0)
    prefill(buf)
    if isinstance(buf, StratifiedReplay):
        fill_fifo_records(buf, range(1))
    buf.last_episode_length[:] = EPISODE  # ERE's mixture runs over the last episode's length
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        buf.replay_stats(64)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def asked_ms(kind: str, members: int, capacity: int, repeats: int) -> tuple[float, float]:
    """Median ms of ``replay_stats(64)`` for all ``members`` of a full buffer, and of
    ``replay_stats(64, [0])`` for one of them, alternating."""
    buf = make_buffer(kind, capacity, OBS_DIM, ACT_DIM, members, seed=0)
    prefill(buf)
    every, one = [], []
    for _ in range(repeats):
        for asked, times in ((None, every), ([0], one)):
            start = time.perf_counter()
            buf.replay_stats(64, asked)
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(every), 1e3 * statistics.median(one)


def record_bytes(members: int) -> int:
    """Bytes the FIFO age records of ``members`` members take when both FIFOs are full."""
    buf = StratifiedReplay(8, OBS_DIM, ACT_DIM, members, seed=0)  # the records only matter
    buf.capacity = CAPACITY  # the records' count follows capacity / episode length
    tracemalloc.start()
    fill_fifo_records(buf, range(members))
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ms-per-step", type=float, default=3.0)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--capacity", type=int, default=100_000)
    args = parser.parse_args()
    episode_ms = EPISODE * args.ms_per_step
    for kind in KINDS:
        ms = stats_ms(kind, args.repeats)
        row = {"kind": kind, "capacity": CAPACITY, "ms_per_member_per_episode_end": round(ms, 3)}
        row["share_of_a_200_step_episode"] = round(ms / episode_ms, 5)
        print(json.dumps(row), flush=True)
    members = 30
    records = record_bytes(members)
    per_slot = 8 * 2 * CAPACITY * members  # an int64 write step per FIFO slot
    print(
        json.dumps(
            {
                "stratified_age_records_mb_at_1e6_x_30": round(records / 2**20, 1),
                "per_slot_write_step_mb_at_1e6_x_30": round(per_slot / 2**20, 1),
            }
        )
    )
    for kind in ("prioritized", "lap", "softmax"):
        every, one = asked_ms(kind, args.members, args.capacity, args.repeats)
        row = {"kind": kind, "members": args.members, "capacity": args.capacity}
        row |= {"ms_all_members": round(every, 3), "ms_one_member": round(one, 3)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
