"""Configs: presets, YAML files, ``--set`` overrides and validation at the edge."""

from __future__ import annotations

import pytest

from ddpglab.config import (
    Config,
    ConfigError,
    load_config,
    parse_override,
    preset_names,
    to_yaml,
)


def test_the_three_shipped_presets_are_listed():
    assert {"pendulum", "pendulum-2023", "bipedal"} <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates(name):
    config = load_config(name)
    assert isinstance(config, Config)
    # A preset trains on a budget of episodes or steps, never both or neither.
    assert (config.train.episodes is None) != (config.train.steps is None)


def test_pendulum_2023_has_exactly_the_studys_settings():
    c = load_config("pendulum-2023")
    assert c.env.id == "Pendulum-v1"
    assert c.replay.kind == "uniform"
    assert c.replay.capacity == 1_000_000
    assert c.agent.batch_size == 64
    assert c.agent.gamma == 0.99
    assert c.agent.tau == 1e-3
    assert c.agent.actor_lr == 1e-4
    assert c.agent.critic_lr == 1e-3
    assert c.agent.hidden == [256, 256]
    assert c.agent.updates_per_step == 1
    # "updates start once the buffer holds more than one batch": no random warm-up phase.
    assert c.agent.learning_starts == 0
    assert c.agent.final_layer_init is None
    assert c.noise.kind == "ou"
    assert c.noise.scale == 0.1
    assert (c.noise.theta, c.noise.sigma, c.noise.mu) == (0.15, 0.2, 0.0)
    assert c.train.episodes == 200
    assert c.train.steps is None
    # 200 episodes "of 200 steps": the env's registered time limit is kept.
    assert c.env.max_episode_steps is None


def test_bipedal_preset_trains_bipedalwalker_for_1000_episodes():
    c = load_config("bipedal")
    assert c.env.id == "BipedalWalker-v3"
    assert c.train.episodes == 1000


def test_default_preset_is_pendulum():
    assert load_config().env.id == "Pendulum-v1"


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("agent.hidden=[64, 64]", "agent.hidden", [64, 64]),
        ("agent.batch_size=128", "agent.batch_size", 128),
        ("agent.tau=0.005", "agent.tau", 0.005),
        ("train.steps=null", "train.steps", None),
        ("noise.kind=gaussian", "noise.kind", "gaussian"),
        ("env.id=Pendulum-v1", "env.id", "Pendulum-v1"),
        (" agent.gamma =0.5", "agent.gamma", 0.5),
    ],
)
def test_override_values_are_read_as_yaml(item, key, value):
    assert parse_override(item) == (key, value)


@pytest.mark.parametrize("item", ["agent.tau", "=1", "agent.tau 0.1"])
def test_override_without_key_and_value_is_refused(item):
    with pytest.raises(ConfigError, match="dotted.key=value"):
        parse_override(item)


def test_overrides_reach_the_validated_config():
    items = ["agent.hidden=[64,32]", "agent.tau=1e-3", "train.seeds=[4, 5]", "train.steps=null"]
    c = load_config("pendulum", overrides=dict(parse_override(i) for i in items))
    assert c.agent.hidden == [64, 32]
    # YAML 1.1 reads "1e-3" as a string; validation must still turn it into the float.
    assert c.agent.tau == pytest.approx(1e-3)
    assert c.train.seeds == [4, 5]


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"agent.lrr": 1}, "agent.lrr"),
        ({"agnt.tau": 0.1}, "agnt.tau"),
        ({"agent.tau.x": 0.1}, "agent.tau.x"),
        ({"agent": 1}, "agent"),
        ({"agent.batch_size": "abc"}, "agent.batch_size"),
        ({"agent.hidden": [32, 0]}, "agent.hidden"),
        ({"agent.actor_lr": -1e-3}, "agent.actor_lr"),
        ({"agent.critic_lr": 0}, "agent.critic_lr"),
        ({"agent.tau": 0}, "agent.tau"),
        ({"agent.tau": 1.5}, "agent.tau"),
        ({"agent.gamma": -0.1}, "agent.gamma"),
        ({"agent.gamma": 1.5}, "agent.gamma"),
        ({"agent.gamma": float("nan")}, "agent.gamma"),
        ({"noise.kind": "pink"}, "noise.kind"),
        ({"noise.scale": -0.1}, "noise.scale"),
        ({"replay.kind": "nope"}, "replay.kind"),
        ({"replay.capacity": 0}, "replay.capacity"),
        ({"agent.batch_size": 65, "replay.capacity": 64}, "batch_size"),
        ({"train.seeds": [1, 1]}, "train.seeds"),
        ({"train.seeds": []}, "train.seeds"),
        ({"train.steps": 100, "train.episodes": 5}, "episodes"),
        ({"train.episodes": None}, "episodes"),
        ({"train.episodes": 0}, "train.episodes"),
    ],
)
def test_bad_values_are_refused_with_one_line_naming_the_key(overrides, names):
    with pytest.raises(ConfigError) as info:
        load_config("pendulum", overrides=overrides)
    message = str(info.value)
    assert "\n" not in message
    assert names in message


@pytest.mark.parametrize(
    "overrides",
    [
        {"agent.tau": True},
        {"agent.batch_size": True},
        {"train.eval_every": False},
        {"agent.hidden": [True, 64]},
        {"env.action_bounds": [True, 2]},
        {"replay.kind": "prioritized", "replay.prioritized.alpha": True},
    ],
)
def test_a_yes_or_no_where_a_number_is_expected_is_refused(overrides):
    """YAML reads `yes`, `true` and `on` as booleans, and pydantic would take them as 1."""
    (key,) = [k for k, v in overrides.items() if isinstance(v, bool | list)]
    with pytest.raises(ConfigError, match=f"{key}.*number, not true or false"):
        load_config("pendulum", overrides=overrides)


def test_a_yes_or_no_among_a_mappings_numbers_is_refused():
    """No shipped section has a dict of numbers yet; the first one must not let yes/no in."""
    from pydantic import ValidationError

    from ddpglab.strict_model import StrictModel

    class Weights(StrictModel):
        by_name: dict[str, float] = {}
        by_name_or_flag: dict[str, float | bool] = {}

    with pytest.raises(ValidationError, match="number, not true or false"):
        Weights(by_name={"a": 1.0, "b": True})
    assert Weights(by_name_or_flag={"a": True}).by_name_or_flag == {"a": True}


def test_booleans_and_json_values_still_take_true_and_false():
    config = load_config(
        "pendulum", overrides={"agent.twin_critics": True, "env.kwargs": {"g": 9.8, "x": True}}
    )
    assert config.agent.twin_critics is True and config.env.kwargs == {"g": 9.8, "x": True}


@pytest.mark.parametrize(
    "overrides",
    [
        {"agent.tau": 1.0},
        {"agent.gamma": 0.0},
        {"agent.gamma": 1.0},
        {"agent.batch_size": 64, "replay.capacity": 64},
        {"train.steps": 100, "train.episodes": None},
    ],
)
def test_values_on_the_edge_of_the_valid_range_are_accepted(overrides):
    config = load_config("pendulum", overrides=overrides)
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        loaded = getattr(getattr(config, section), key)
        assert loaded == value and type(loaded) is type(value), (dotted, loaded)


@pytest.mark.parametrize("key", ["agent.actor_lr", "agent.critic_lr"])
def test_infinite_learning_rate_is_refused(key):
    with pytest.raises(ConfigError, match=key):
        load_config("pendulum", overrides={key: float("inf")})


def test_config_file_is_merged_over_the_preset_section_by_section(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("agent:\n  tau: 0.01\ntrain:\n  seeds: [7]\n")
    c = load_config("pendulum-2023", file=path)
    assert c.agent.tau == 0.01
    assert c.train.seeds == [7]
    # Keys of the same section that the file does not mention keep the preset's value.
    assert c.agent.batch_size == 64
    assert c.agent.actor_lr == 1e-4
    assert c.train.episodes == 200


def test_overrides_win_over_the_config_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("agent:\n  tau: 0.01\n")
    assert load_config(None, file=path, overrides={"agent.tau": 0.02}).agent.tau == 0.02


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("agent: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "mapping"),
        ("agent:\n  lrr: 1\n", "lrr"),
    ],
)
def test_bad_config_file_gives_one_line_error(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(None, file=path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("env:\n  id: Pendulum-v1\nagent: {tau: 0.1\n", 4),  # unclosed: stops at the end
        ("env:\n  id: a: b\n", 2),
        ("env: {}\nagent: \x07\n", 2),  # a character PyYAML refuses to read
    ],
)
def test_a_yaml_error_names_the_line_where_reading_stopped(tmp_path, text, line):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"bad.yaml: not valid YAML \(.*, line {line}\)$"):
        load_config(None, file=path)


def test_missing_config_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(None, file=tmp_path / "nope.yaml")


def test_unknown_preset_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError, match="pendulum-2023"):
        load_config("nope")


@pytest.mark.parametrize("name", preset_names())
def test_resolved_yaml_loads_back_into_an_equal_config(tmp_path, name):
    config = load_config(name, overrides={"agent.hidden": [16], "train.seeds": [2, 9]})
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(config))
    assert load_config(None, file=path) == config


def test_setting_one_budget_clears_the_other():
    """Episodes and steps are alternatives: the layer that names one wins over the preset."""
    by_steps = load_config("pendulum", overrides={"train.steps": 500})
    assert (by_steps.train.steps, by_steps.train.episodes) == (500, None)
    by_episodes = load_config(None, file=None, overrides={"train.episodes": 7})
    assert (by_episodes.train.steps, by_episodes.train.episodes) == (None, 7)


def test_a_config_file_budget_overrides_the_presets(tmp_path):
    path = tmp_path / "steps.yaml"
    path.write_text("train:\n  steps: 1234\n")
    config = load_config("pendulum", file=path)
    assert (config.train.steps, config.train.episodes) == (1234, None)


def test_a_step_budget_replaces_the_default_episode_budget_without_a_preset(tmp_path):
    path = tmp_path / "steps.yaml"
    path.write_text("train:\n  steps: 500\n")
    config = load_config(None, file=path)
    assert (config.train.steps, config.train.episodes) == (500, None)
    config = load_config(None, overrides={"train.steps": 300})
    assert (config.train.steps, config.train.episodes) == (300, None)
