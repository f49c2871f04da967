"""``ddpglab study --backend ray``: the same store as local workers, failures, resume, Ctrl-C.

One local Ray instance (2 CPUs) serves the module. Its workers get this process's sys.path,
so the envs registered below resolve there as ``test_ray_backend:<id>`` (gymnasium imports
this module in the Ray worker). Monkeypatching here does not reach a Ray worker; the
failures come from the envs, and the marker file that makes ``StopsOnce`` stop only once
is named by an environment variable the workers inherit when Ray starts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import yaml
from cli_support import assert_refused, run_cli
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from ddpglab.store import ResultsStore
from ddpglab.study import run_study
from ddpglab.study.display import StudyProgress
from ddpglab.study.ray_backend import RayBackend, unreachable
from ddpglab.study.worker import JobTask

SMOKE = Path(__file__).resolve().parents[1] / "studies" / "smoke.yaml"
MARKER = "DDPGLAB_TEST_RAY_STOP_MARKER"


class TroubledPendulum(PendulumEnv):
    """Pendulum that, after ``after`` steps, raises, kills its process, or (once per marker
    file) sends its process SIGTERM, which makes the Trainer save its state and stop.
    Steps are counted per process and kind (each episode runs in a fresh env)."""

    steps_in_process: dict[str, int] = {}

    def __init__(self, after: int, how: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.after, self.how = after, how

    def step(self, action):
        counts = TroubledPendulum.steps_in_process
        counts[self.how] = counts.get(self.how, 0) + 1
        if counts[self.how] == self.after + 1:
            if self.how == "raise":
                raise RuntimeError("simulated env failure")
            if self.how == "die":
                os._exit(3)
            marker = Path(os.environ[MARKER])
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGTERM)
        return super().step(action)


for env_id, how in (("RayRaises-v0", "raise"), ("RayDies-v0", "die"), ("StopsOnce-v0", "stop")):
    if env_id not in gym.registry:  # Pendulum-v1's own limit: the same episodes as it
        gym.register(
            env_id, TroubledPendulum, max_episode_steps=200, kwargs={"after": 30, "how": how}
        )


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray instance with 2 CPUs for the whole module, shut down at its end."""
    import ray

    from ddpglab.study.ray_backend import init_local_ray

    marker = tmp_path_factory.mktemp("marker") / "stopped"
    os.environ[MARKER] = str(marker)  # before Ray starts: its workers inherit it
    init_local_ray(num_cpus=2)
    yield marker
    ray.shutdown()
    del os.environ[MARKER]


def fast_spec(**changes: Any) -> dict[str, Any]:
    """The smoke study with 20-step episodes."""
    spec = yaml.safe_load(SMOKE.read_text())
    spec["base"]["set"]["env.max_episode_steps"] = 20
    return {**spec, **changes}


def study(spec: dict[str, Any], out: Path, backend: str = "ray", **options: Any):
    """run_study on 2 workers of 1 thread, no report."""
    options = {"workers": 2, "torch_threads": 1, **options}
    return run_study(spec, out, backend=backend, **options)


def store_contents(out: Path) -> dict[tuple[str, int], tuple[str, str | None, list[float]]]:
    """(variant, seed) -> (status, error, episode returns)."""
    with ResultsStore(out / "results.sqlite") as store:
        return {
            (r["variant"], r["seed"]): (r["status"], r["error"], store.returns(r["run_id"]))
            for r in store.runs()
        }


@pytest.mark.slow
def test_a_ray_study_stores_exactly_what_local_workers_store(ray_cluster, tmp_path):
    local = study(fast_spec(), tmp_path / "local", backend="local")
    on_ray = study(fast_spec(), tmp_path / "ray")

    assert (
        (on_ray.done, on_ray.failed, on_ray.skipped) == (local.done, local.failed, 0) == (4, 0, 0)
    )
    contents = store_contents(tmp_path / "ray")
    assert contents == store_contents(tmp_path / "local")
    assert sorted(contents) == [
        ("stratified", 0),
        ("stratified", 1),
        ("uniform", 0),
        ("uniform", 1),
    ]
    assert all(len(returns) == 3 for _, _, returns in contents.values())
    checkpoints = sorted((tmp_path / "ray" / "runs" / "uniform" / "checkpoints").rglob("*.pt"))
    assert len(checkpoints) == 6  # written by the Ray workers into the study folder

    again = study(fast_spec(), tmp_path / "ray")  # a rerun: every pair is done already
    assert (again.done, again.failed, again.skipped) == (0, 0, 4)
    assert store_contents(tmp_path / "ray") == contents


def test_failing_tasks_fail_their_runs_with_the_reason_and_the_others_finish(ray_cluster, tmp_path):
    variants = [
        {"name": "ok"},
        {"name": "raises", "set": {"env.id": "test_ray_backend:RayRaises-v0"}},
        {"name": "dies", "set": {"env.id": "test_ray_backend:RayDies-v0"}},
    ]
    result = study(fast_spec(seeds=1, variants=variants), tmp_path)

    assert (result.done, result.failed) == (1, 2)
    runs = {variant: run for (variant, _), run in store_contents(tmp_path).items()}
    assert runs["ok"][0] == "done" and len(runs["ok"][2]) == 3
    assert runs["raises"][:2] == ("failed", "RuntimeError: simulated env failure")
    assert runs["dies"][0] == "failed"
    assert runs["dies"][1].startswith("WorkerDied: the Ray worker process died")
    # Episodes finished before the failure (20 steps each, failure at step 31) are kept.
    assert len(runs["raises"][2]) == len(runs["dies"][2]) == 1
    assert "simulated env failure" in (tmp_path / "errors.log").read_text()


@pytest.mark.slow
def test_a_rerun_skips_done_pairs_and_continues_a_stopped_job_from_its_state(ray_cluster, tmp_path):
    variants = [
        {"name": "plain", "set": {"replay.kind": "uniform"}},
        {
            "name": "stopped",
            "set": {"replay.kind": "uniform", "env.id": "test_ray_backend:StopsOnce-v0"},
        },
    ]
    spec = fast_spec(seeds=1, variants=variants)
    first = study(spec, tmp_path)
    assert (first.done, first.failed) == (1, 1) and ray_cluster.exists()
    assert store_contents(tmp_path)["stopped", 0][:2] == (
        "failed",
        "TrainingInterrupted: stopped by SIGTERM",
    )
    assert list((tmp_path / "runs" / "stopped").glob("state-*.npz"))

    second = study(spec, tmp_path)

    assert (second.done, second.failed, second.skipped) == (1, 0, 1)
    contents = store_contents(tmp_path)
    assert contents["stopped", 0][0] == "done"
    # StopsOnce is Pendulum-v1 until it stops: resumed, it ends as if it never had.
    assert contents["stopped", 0][2] == contents["plain", 0][2]


def test_ctrl_c_cancels_the_tasks_and_fails_their_runs_with_the_drivers_reason(
    ray_cluster, tmp_path, monkeypatch
):
    advance, stored, interrupted = StudyProgress.advance, [], []

    def interrupt_once_4_episodes_are_stored(self, units: int) -> None:
        """Ctrl-C in the driver (not again while it stops the jobs)."""
        advance(self, units)
        stored.append(units)
        if sum(stored) >= 4 and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt

    monkeypatch.setattr(StudyProgress, "advance", interrupt_once_4_episodes_are_stored)
    with pytest.raises(KeyboardInterrupt):
        study(fast_spec(episodes=500), tmp_path)

    contents = store_contents(tmp_path)
    assert {status for status, _, _ in contents.values()} == {"failed"}
    assert {error for _, error, _ in contents.values()} == {"KeyboardInterrupt: study interrupted"}
    assert all(len(returns) < 500 for _, _, returns in contents.values())
    # A job that was training saved its state when cancelled: a rerun continues it.
    assert list((tmp_path / "runs").rglob("state-*.npz"))


class SlowQueue:
    """The driver's queue, with puts that take ``PUT_S`` each (an async actor, like Ray's
    queue: the driver takes messages while a put is under way)."""

    PUT_S = 0.5

    def __init__(self, ray: Any):
        @ray.remote(num_cpus=0)
        class Items:
            def __init__(self):
                self.items: list[Any] = []
                self.putting = 0

            async def put(self, item: Any) -> None:
                self.putting += 1
                await asyncio.sleep(SlowQueue.PUT_S)
                self.items.append(item)
                self.putting -= 1

            async def take(self) -> list[Any]:
                items, self.items = self.items, []
                return items

            async def put_under_way(self) -> bool:
                return self.putting > 0

        self.ray, self.actor = ray, Items.remote()

    def put(self, item: Any) -> None:
        self.ray.get(self.actor.put.remote(item))

    def put_under_way(self) -> bool:
        return self.ray.get(self.actor.put_under_way.remote())

    def qsize(self) -> int:
        return 1  # take everything there is

    def get_nowait_batch(self, _size: int) -> list[Any]:
        return self.ray.get(self.actor.take.remote())

    def shutdown(self, force: bool = False) -> None:
        self.ray.kill(self.actor)


def send_until_stopped(_task: Any, key: int, queue: Any) -> None:
    """A Ray task that sends numbered messages until a stop request reaches its SIGINT
    handler, as a Trainer does (it ends its step, then stops), then says how many it sent."""
    from ddpglab.study.ray_backend import _QueueSender

    stop: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: stop.append(signum))
    sender, sent = _QueueSender(queue, key), 0
    while not stop:
        sender.send(("sent", (sent,)))
        sent += 1
    sender.send(("stopped", (sent,)))


class SlowQueueBackend(RayBackend):
    """The Ray backend with :class:`SlowQueue` and :func:`send_until_stopped` as its jobs."""

    def _make_queue(self) -> SlowQueue:
        self.slow_queue = SlowQueue(self.ray)
        return self.slow_queue

    def connect(self, workers: int | None, threads: int | None) -> int:
        cpus = super().connect(workers, threads)
        self._train = self.ray.remote(max_retries=0)(send_until_stopped)
        return cpus


def test_stopping_a_task_lets_the_queue_puts_it_is_waiting_on_finish(ray_cluster):
    """ray.cancel's default also cancels the task's children: the put it waits on. Its send
    then failed as if the driver's queue were gone, and a Trainer stopped by Ctrl-C lost the
    state it was about to save."""
    backend = SlowQueueBackend()
    backend.connect(workers=1, threads=1)
    try:
        key = backend.launch(JobTask({"train": {"torch_threads": 1}}, {}, "", "", ""))
        received = []
        while len(received) < 2 or not backend.slow_queue.put_under_way():
            received += backend.poll(timeout=0.01)
        received += backend.stop([key])  # while the task waits on its put
        ended = backend.finish(key)
    finally:
        backend.close()

    assert ended == "WorkerDied: the job's Ray task ended without reporting its end"  # no error
    *numbered, (_, (last, (sent,))) = received
    assert last == "stopped" and sent >= 3
    assert numbered == [(key, ("sent", (number,))) for number in range(sent)]


# -- refusals ------------------------------------------------------------------------------


def test_without_ray_the_ray_backend_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    out = tmp_path / "study"
    rc, _, err = run_cli(["study", str(SMOKE), "--out", str(out), "--backend", "ray"], capsys)
    assert_refused(rc, err, out, "pip install 'ddpglab[ray]'")


def test_an_address_without_the_ray_backend_is_refused(tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", str(SMOKE), "--out", str(out), "--address", "auto"]
    rc, _, err = run_cli(argv, capsys)
    assert_refused(rc, err, out, "--address needs --backend ray")


@pytest.mark.parametrize(
    ("address", "mention"),
    [("nonsense", "expected 'auto' or HOST:PORT"), ("127.0.0.1:1", "nothing answers there")],
)
def test_an_address_where_no_ray_head_can_answer_is_explained(address, mention):
    assert mention in unreachable(address)  # refused at once, not after Ray's minutes of retries
