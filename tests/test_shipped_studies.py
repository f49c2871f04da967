"""The shipped study specs (studies/*.yaml): each expands to the variants its comment
promises, and variants differ only in what their names say."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddpglab.config.overrides import flatten
from ddpglab.study.variants import load_study

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def names(study) -> list[str]:
    return [v.name for v in study.variants]


def test_pendulum_2023_is_the_12_variants_of_the_2023_study():
    study = load_study(STUDIES / "pendulum-2023.yaml")
    assert study.seeds == list(range(30))
    assert study.budget == 200 and not study.by_steps
    assert names(study)[:4] == [
        "uniform-cap1e4",
        "uniform-cap1e6",
        "softmax-cap1e4",
        "softmax-cap1e6",
    ]
    stratified = [v for v in study.variants if v.name.startswith("stratified")]
    assert len(study.variants) == 12 and len(stratified) == 8
    strat = study.variant("stratified-cap1e6-thr-0.5-good0.7").config
    assert strat.replay.kind == "stratified"
    assert strat.replay.capacity == 1_000_000
    assert strat.replay.stratified.threshold_std == -0.5
    assert strat.replay.stratified.good_ratio == 0.7
    assert study.variant("stratified-cap1e4-thr+0.5-good0.5").config.replay.capacity == 10_000
    softmax = study.variant("softmax-cap1e4").config
    assert softmax.replay.softmax.beta == 1.0 and softmax.replay.capacity == 10_000
    # The preset's settings underneath every variant.
    assert strat.agent.hidden == [256, 256] and strat.noise.scale == 0.1
    assert strat.train.episodes == 200 and strat.train.seeds == list(range(30))


def test_pendulum_2023_as_run_differs_from_the_bounds_correct_study_only_in_its_torque():
    """Two of the 2023 study's variants, rerun as the 2023 code ran them: every resolved
    setting equal but env.action_bounds, [-1, 1] (1 of Pendulum-v1's 2 N m)."""
    as_run = load_study(STUDIES / "pendulum-2023-as-run.yaml")
    correct = load_study(STUDIES / "pendulum-2023.yaml")
    assert names(as_run) == ["uniform-cap1e6", "softmax-cap1e4"]
    assert as_run.seeds == list(range(30)) and as_run.budget == 200 and not as_run.by_steps
    for variant in as_run.variants:
        ran = variant.config.model_dump(mode="json")
        meant = correct.variant(variant.name).config.model_dump(mode="json")
        assert meant["env"]["action_bounds"] is None
        assert ran["env"].pop("action_bounds") == [-1.0, 1.0]
        meant["env"].pop("action_bounds")
        assert ran == meant


@pytest.mark.parametrize(
    ("spec", "preset_env", "seeds", "budget"),
    [
        ("precision-pendulum.yaml", "Pendulum-v1", list(range(10)), 200),
        ("precision-bipedal.yaml", "BipedalWalker-v3", [0], 300_000),
    ],
)
def test_precision_studies_differ_only_in_train_precision(spec, preset_env, seeds, budget):
    study = load_study(STUDIES / spec)
    assert names(study) == ["fp32", "bf16"]
    assert study.seeds == seeds and study.budget == budget
    fp32, bf16 = (study.variant(n).config.model_dump(mode="json") for n in ("fp32", "bf16"))
    assert (fp32["train"].pop("precision"), bf16["train"].pop("precision")) == ("fp32", "bf16")
    assert fp32 == bf16 and fp32["env"]["id"] == preset_env


#: What each sampler's name says it changes from uniform replay at the same volume
#: (a key, or every key under a section written with its trailing dot).
REPLAY_VOLUME_SAMPLERS = {
    "uniform": set(),
    "prioritized": {"replay.kind", "replay.prioritized."},
    "lap": {"replay.kind", "replay.lap.", "agent.critic_loss", "agent.huber_delta"},
    "uniform+pal": {"agent.critic_loss", "agent.pal."},
    "geometric": {"replay.kind", "replay.geometric."},
    "ere": {"replay.kind", "replay.ere."},
    "stratified": {"replay.kind", "replay.stratified."},
    "softmax": {"replay.kind", "replay.softmax."},
}
#: The sampler each variant runs and the settings its spec comment promises (the papers').
REPLAY_VOLUME_SETTINGS = {
    "uniform": ("uniform", {}),
    "prioritized": (
        "prioritized",
        {"replay.prioritized.alpha": 0.6, "replay.prioritized.beta0": 0.4},
    ),
    "lap": (
        "lap",
        {"replay.lap.alpha": 0.4, "replay.lap.min_priority": 1.0, "agent.critic_loss": "huber"},
    ),
    "uniform+pal": ("uniform", {"agent.critic_loss": "pal", "agent.pal.alpha": 0.4}),
    "geometric": ("geometric", {"replay.geometric.expected_age": 10_000}),
    "ere": ("ere", {"replay.ere.eta0": 0.996, "replay.ere.c_min": 5000}),
    "stratified": ("stratified", {"replay.stratified.threshold_std": 0.5}),
    "softmax": ("softmax", {"replay.softmax.beta": 1.0}),
}
REPLAY_VOLUMES = {"vol16": (64, 0.25), "vol256": (256, 1.0)}
_ABSENT = object()


def changed_keys(config, other) -> set[str]:
    """The dotted keys whose resolved values differ between two configs."""
    a, b = (flatten(c.model_dump(mode="json")) for c in (config, other))
    return {key for key in a.keys() | b.keys() if a.get(key, _ABSENT) != b.get(key, _ABSENT)}


def named_by(key: str, allowed: set[str]) -> bool:
    return any(key == a or (a.endswith(".") and key.startswith(a)) for a in allowed)


def test_replay_volume_variants_differ_only_in_what_their_names_say():
    """8 samplers x 2 volumes on Hopper: a variant differs from uniform at its volume only in
    its sampler's keys, and from its twin at the other volume only in batch and update rate."""
    study = load_study(STUDIES / "replay-volume.yaml")
    assert names(study) == [f"{s}-{v}" for s in REPLAY_VOLUME_SAMPLERS for v in REPLAY_VOLUMES]
    assert study.seeds == list(range(5)) and study.budget == 100_000 and study.by_steps
    for sampler, allowed in REPLAY_VOLUME_SAMPLERS.items():
        for volume, (batch, rate) in REPLAY_VOLUMES.items():
            config = study.variant(f"{sampler}-{volume}").config
            assert config.env.id == "Hopper-v5" and config.train.precision == "fp32"
            kind, settings = REPLAY_VOLUME_SETTINGS[sampler]
            values = flatten(config.model_dump(mode="json"))
            assert values["replay.kind"] == kind
            assert {key: values[key] for key in settings} == settings, sampler
            assert (config.agent.batch_size, config.agent.updates_per_step) == (batch, rate)
            changed = changed_keys(config, study.variant(f"uniform-{volume}").config)
            assert all(named_by(key, allowed) for key in changed), (sampler, changed)
            assert bool(changed) == (sampler != "uniform")
        low, high = (study.variant(f"{sampler}-{v}").config for v in REPLAY_VOLUMES)
        assert changed_keys(low, high) == {"agent.batch_size", "agent.updates_per_step"}
    lap = study.variant("lap-vol16").config
    assert lap.agent.critic_loss == "huber"
    assert lap.agent.huber_delta == lap.replay.lap.min_priority  # LAP as it is meant
    pal = study.variant("uniform+pal-vol16").config.agent.pal
    assert (pal.alpha, pal.min_priority) == (lap.replay.lap.alpha, lap.replay.lap.min_priority)
    stratified = study.variant("stratified-vol16").config.replay.stratified  # as 2023 ran it
    assert (stratified.threshold_std, stratified.good_ratio) == (0.5, 0.5)
    assert study.variant("softmax-vol16").config.replay.softmax.beta == 1.0


def test_walker_lap_differs_from_uniform_only_in_lap_and_its_loss():
    study = load_study(STUDIES / "walker-lap.yaml")
    assert names(study) == ["uniform", "lap"]
    assert study.seeds == [0, 1, 2] and study.budget == 500_000 and study.by_steps
    uniform, lap = (study.variant(n).config for n in ("uniform", "lap"))
    assert uniform.env.id == "BipedalWalker-v3" and uniform.replay.kind == "uniform"
    assert lap.replay.kind == "lap"
    changed = changed_keys(lap, uniform)
    assert changed and all(named_by(k, REPLAY_VOLUME_SAMPLERS["lap"]) for k in changed)
    assert lap.agent.critic_loss == "huber" and lap.agent.huber_delta == 1.0


def test_bipedal_2023_is_4_variants_with_a_1e6_buffer():
    study = load_study(STUDIES / "bipedal-2023.yaml")
    assert names(study) == ["uniform", "softmax", "stratified-thr+0.5", "stratified-thr-0.5"]
    assert study.seeds == list(range(10)) and study.budget == 1000
    for variant in study.variants:
        assert variant.config.env.id == "BipedalWalker-v3"
        assert variant.config.replay.capacity == 1_000_000
    assert study.variant("stratified-thr-0.5").config.replay.stratified.good_ratio == 0.5


def test_bipedal_td3_compares_the_two_presets_on_equal_step_budgets():
    study = load_study(STUDIES / "bipedal-td3.yaml")
    assert names(study) == ["td3", "ddpg"]
    assert study.seeds == [0, 1, 2] and study.by_steps and study.budget == 1_000_000
    td3, ddpg = study.variant("td3").config, study.variant("ddpg").config
    assert (td3.agent.twin_critics, td3.agent.target_noise, td3.agent.policy_delay) == (
        True,
        0.2,
        2,
    )
    assert (ddpg.agent.twin_critics, ddpg.agent.target_noise, ddpg.agent.policy_delay) == (
        False,
        0,
        1,
    )
    for config in (td3, ddpg):  # the base's evaluation schedule applies over both presets
        assert (config.train.eval_every, config.train.eval_episodes) == (20, 10)
        assert config.train.steps == 1_000_000 and config.train.episodes is None


def test_bipedal_td3_ablation_switches_each_td3_option_off_alone():
    study = load_study(STUDIES / "bipedal-td3-ablation.yaml")
    options = {
        variant.name: (
            variant.config.agent.twin_critics,
            variant.config.agent.target_noise > 0,
            variant.config.agent.policy_delay > 1,
        )
        for variant in study.variants
    }
    assert options == {
        "td3": (True, True, True),
        "no-twin": (False, True, True),
        "no-smoothing": (True, False, True),
        "no-delay": (True, True, False),
        "ddpg-tuned": (False, False, False),
        "td3-on-2023": (True, True, True),
    }

    def without_options(config) -> dict:
        data = config.model_dump()
        for option in ("twin_critics", "target_noise", "policy_delay"):
            del data["agent"][option]
        return data

    tuned = without_options(study.variant("td3").config)
    for name in ("no-twin", "no-smoothing", "no-delay", "ddpg-tuned"):
        assert without_options(study.variant(name).config) == tuned, name
    on_2023 = study.variant("td3-on-2023").config
    assert (on_2023.agent.gamma, on_2023.agent.actor_lr, on_2023.noise.kind) == (0.99, 1e-4, "ou")
    assert study.seeds == [0, 1, 2] and study.by_steps and study.budget == 1_000_000


def test_smoke_is_2_variants_x_2_seeds_x_3_tiny_episodes():
    study = load_study(STUDIES / "smoke.yaml")
    assert names(study) == ["uniform", "stratified"]
    assert study.seeds == [0, 1] and study.budget == 3
    config = study.variants[0].config
    assert config.agent.hidden == [32, 32] and config.replay.capacity == 1000
