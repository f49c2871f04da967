"""The replay registry: a strategy is one file (or one entry point), found with no other
edit; kinds are unique; configs validate and dump whatever the registry holds."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from pydantic import Field

import ddpglab.replay
from ddpglab.config import ConfigError, load_config, to_yaml
from ddpglab.replay import StrategyParams, make_buffer, registry, strategies
from ddpglab.replay.prioritized import PrioritizedReplay
from ddpglab.replay.uniform import UniformReplay

ENTRY_POINT_KIND = "wide-uniform-from-an-entry-point"


class WideUniformReplay(UniformReplay):
    """A strategy of another package, with a parameter of its own."""

    kind = ENTRY_POINT_KIND

    class Params(StrategyParams):
        width: int = Field(3, ge=1, description="a parameter only this strategy has")

    def __init__(self, *args, width: int = 3, **options):
        super().__init__(*args, **options)
        self.width = width


class NotAStrategy:
    pass


def entry_point(cls: type, name: str = "wide") -> metadata.EntryPoint:
    return metadata.EntryPoint(name, f"{__name__}:{cls.__name__}", registry.ENTRY_POINT_GROUP)


@pytest.fixture
def installed(monkeypatch):
    """Factory: pretend installed distributions register these entry points."""

    def install(*points: metadata.EntryPoint) -> None:
        def entry_points(*, group: str):
            return list(points) if group == registry.ENTRY_POINT_GROUP else []

        monkeypatch.setattr(registry.metadata, "entry_points", entry_points)
        registry.rediscover()

    yield install
    registry.rediscover()  # the patch is undone after this: the next call looks again


def test_the_shipped_strategies_are_found_uniform_first_in_the_order_they_were_added():
    assert list(strategies()) == [
        "uniform",
        "prioritized",
        "stratified",
        "softmax",
        "lap",
        "geometric",
        "ere",
    ]
    assert strategies()["prioritized"] is PrioritizedReplay


def test_a_subclass_that_does_not_declare_its_kind_is_not_a_strategy():
    class Recording(UniformReplay):
        pass

    assert registry.declares_kind(UniformReplay)
    assert not registry.declares_kind(Recording)


def test_two_classes_claiming_one_kind_are_refused():
    class AnotherUniform(UniformReplay):
        kind = "uniform"

    with pytest.raises(registry.RegistryError, match="'uniform' is claimed by both"):
        registry.collect([UniformReplay, AnotherUniform])


def test_an_entry_point_claiming_a_shipped_kind_is_refused(installed):
    class Impostor(UniformReplay):
        kind = "prioritized"

    globals()["Impostor"] = Impostor  # importable by the entry point, for this test only
    try:
        installed(entry_point(Impostor))
        with pytest.raises(registry.RegistryError, match="'prioritized' is claimed by both"):
            registry.discover()
    finally:
        del globals()["Impostor"]


def test_an_entry_point_that_names_no_strategy_is_refused(installed):
    installed(entry_point(NotAStrategy))
    with pytest.raises(registry.RegistryError, match="not a ReplayBuffer subclass"):
        registry.discover()


def test_a_strategy_from_an_entry_point_is_found_configured_and_built(installed):
    installed(entry_point(WideUniformReplay))
    assert list(strategies()) == [
        "uniform",
        "prioritized",
        "stratified",
        "softmax",
        "lap",
        "geometric",
        "ere",
        ENTRY_POINT_KIND,
    ]
    config = load_config(None, overrides={"replay.kind": ENTRY_POINT_KIND})
    # its section is validated and dumped after the shipped ones, with its defaults
    assert list(config.model_dump()["replay"])[-2:] == ["ere", ENTRY_POINT_KIND]
    assert getattr(config.replay, ENTRY_POINT_KIND).width == 3
    wide = load_config(None, overrides={f"replay.{ENTRY_POINT_KIND}.width": 5})
    assert yaml.safe_load(to_yaml(wide))["replay"][ENTRY_POINT_KIND] == {"width": 5}
    with pytest.raises(ConfigError, match=rf"replay\.{ENTRY_POINT_KIND}\.width: Input should"):
        load_config(None, overrides={f"replay.{ENTRY_POINT_KIND}.width": 0})
    buf = make_buffer(ENTRY_POINT_KIND, 10, 2, 1, width=7)
    assert type(buf) is WideUniformReplay and buf.width == 7


def test_dropping_a_strategy_file_into_the_package_makes_train_replay_work(tmp_path):
    """The whole recipe for a new strategy: one file, no other edit."""
    name = f"drop_in_{uuid.uuid4().hex[:12]}"
    kind = f"foo-{name}"
    folder = Path(ddpglab.replay.__file__).parent
    module = folder / f"{name}.py"
    module.write_text(
        "from ddpglab.replay.uniform import UniformReplay\n\n\n"
        f"class FooReplay(UniformReplay):\n    kind = {kind!r}\n"
    )
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "ddpglab", "train", "--replay", kind, "--episodes", "2"]
    argv += ["--set", "agent.hidden=[16,16]", "--set", "agent.batch_size=16"]
    argv += ["--set", "replay.capacity=1000", "--set", "env.max_episode_steps=30"]
    argv += ["--set", "train.eval_every=0", "--set", "train.eval_episodes=1"]
    argv += ["--set", "train.torch_threads=1", "--quiet", "--out", str(out)]
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    try:
        done = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=300)
    finally:
        module.unlink()
        for cached in (folder / "__pycache__").glob(f"{name}.*"):
            cached.unlink()
    assert done.returncode == 0, done.stderr
    assert (out / "summary.json").is_file()
    assert yaml.safe_load((out / "config.yaml").read_text())["replay"]["kind"] == kind
