"""Study specs: validation, expansion of variants and axes, names, canonical form, jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ddpglab.config import ConfigError
from ddpglab.study.plan import default_seeds_per_job, plan_jobs
from ddpglab.study.spec import format_value, parse_spec
from ddpglab.study.variants import load_study, resolve

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def study_of(**spec: Any):
    """Resolve a spec given as keyword arguments (name and seeds have defaults)."""
    return resolve(parse_spec({"name": "t", "seeds": 1, **spec}))


def names(study) -> list[str]:
    return [v.name for v in study.variants]


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (10_000, "1e4"),
        (1_000_000, "1e6"),
        (1e6, "1e6"),
        (2500, "2500"),
        (64, "64"),
        (0.5, "0.5"),
        (-0.5, "-0.5"),
        (0.001, "1e-3"),
        (3e-4, "3e-4"),
        (1.0, "1"),
        (0, "0"),
        ([64, 64], "64x64"),
        ("uniform", "uniform"),
        (True, "true"),
    ],
)
def test_values_show_compactly_in_names(value, text):
    assert format_value(value) == text


def test_axes_alone_give_their_product_named_by_labels():
    study = study_of(
        axes=[
            {"key": "replay.kind", "label": "", "values": ["uniform", "softmax"]},
            {"key": "agent.tau", "values": [1e-3, 5e-3]},
        ]
    )
    assert names(study) == [
        "uniform-tau1e-3",
        "uniform-tau5e-3",
        "softmax-tau1e-3",
        "softmax-tau5e-3",
    ]
    assert study.variant("softmax-tau5e-3").config.agent.tau == 0.005


def test_listed_variants_cross_the_axes_then_their_own():
    study = study_of(
        axes=[{"key": "replay.capacity", "label": "cap", "values": [1e4, 1e6]}],
        variants=[
            {"name": "u", "set": {"replay.kind": "uniform"}},
            {
                "name": "s",
                "set": {"replay.kind": "stratified"},
                "axes": [{"key": "replay.stratified.good_ratio", "label": "g", "values": [0.7]}],
            },
        ],
    )
    assert names(study) == ["u-cap1e4", "u-cap1e6", "s-cap1e4-g0.7", "s-cap1e6-g0.7"]
    assert study.variant("s-cap1e6-g0.7").overrides == {
        "replay.kind": "stratified",
        "replay.capacity": 1_000_000,
        "replay.stratified.good_ratio": 0.7,
    }


def test_axis_values_given_as_a_mapping_are_named_by_its_keys():
    study = study_of(
        axes=[{"key": "agent.tau", "label": "", "values": {"slow": 1e-3, "fast": 0.1}}]
    )
    assert names(study) == ["slow", "fast"]
    assert study.variant("fast").config.agent.tau == 0.1


def test_an_axis_without_a_key_sets_each_named_bundle_of_keys():
    volume = {
        "label": "vol",
        "values": {
            "16": {"agent.batch_size": 64, "agent.updates_per_step": 0.25},
            "256": {"agent.batch_size": 256, "agent.updates_per_step": 1},
        },
    }
    study = study_of(
        axes=[volume],
        variants=[{"name": "u"}, {"name": "p", "set": {"replay.kind": "prioritized"}}],
    )
    assert names(study) == ["u-vol16", "u-vol256", "p-vol16", "p-vol256"]
    assert study.variant("p-vol16").overrides == {
        "replay.kind": "prioritized",
        "agent.batch_size": 64,
        "agent.updates_per_step": 0.25,
    }
    low = study.variant("u-vol16").config.agent
    assert (low.batch_size, low.updates_per_step) == (64, 0.25)


def test_axis_value_names_written_as_numbers_name_all_the_same():
    volume = {"label": "vol", "values": {16: {"agent.batch_size": 64}, 256: {"agent.tau": 0.1}}}
    assert names(study_of(axes=[volume])) == ["vol16", "vol256"]
    assert names(study_of(axes=[{"key": "agent.tau", "values": {1: 0.1, 2.5: 0.2}}])) == [
        "tau1",
        "tau2.5",
    ]


@pytest.mark.parametrize(
    "axis",
    [
        {"label": "", "values": {"high-var": {"agent.tau": 0.1}}},
        {"label": "my-", "values": {"a": {"agent.tau": 0.1}}},
        {"key": "env.id", "values": ["Pendulum-v1"]},
        {"key": "agent.tau", "label": "t-x", "values": [0.1]},
        {"label": "", "values": {"16": {"agent.tau": 0.1}}},
        {"key": "agent.tau", "label": "", "values": [0.1]},
    ],
    ids=["bundle-name", "label-and-name", "listed-value", "label", "digit", "no-label"],
)
def test_an_axis_value_name_that_reports_would_not_read_back_is_refused(axis):
    """name_parts ends a part where '-' precedes a letter, and starts one only there: a
    name with such a '-' would be split, one starting with a digit glued to the last."""
    with pytest.raises(ConfigError, match="reports read a variant's name as parts"):
        study_of(variants=[{"name": "lap"}], axes=[axis])


def test_the_refusal_of_a_label_says_to_change_the_label():
    with pytest.raises(ConfigError, match="change its label"):
        study_of(axes=[{"key": "agent.tau", "label": "t-x", "values": [0.1]}])


def test_a_minus_before_a_digit_stays_in_its_part():
    axes = [{"key": "agent.tau", "label": "thr", "values": {"-0.5": 0.1, "+0.5": 0.2}}]
    axes += [{"key": "agent.actor_lr", "values": [3e-4]}]
    assert names(study_of(axes=axes)) == ["thr-0.5-actor_lr3e-4", "thr+0.5-actor_lr3e-4"]


@pytest.mark.parametrize(
    ("axis", "message"),
    [
        ({"values": [1, 2]}, "an axis without a key sets several keys"),
        ({"values": {"a": 1}}, "an axis without a key sets several keys"),
        ({"values": {"a": {}}}, "an axis without a key sets several keys"),
        ({"values": {"a": {"train.seeds": [1]}}}, "set by the study"),
    ],
)
def test_a_keyless_axis_needs_named_bundles(axis, message):
    with pytest.raises(ConfigError, match=message):
        study_of(axes=[axis])


def test_a_key_set_by_a_bundle_and_a_variant_is_refused():
    with pytest.raises(ConfigError, match="'agent.batch_size' is set twice"):
        study_of(
            axes=[{"values": {"big": {"agent.batch_size": 256}}}],
            variants=[{"name": "a", "set": {"agent.batch_size": 64}}],
        )


def test_no_variants_and_no_axes_is_one_variant_called_base():
    assert names(study_of()) == ["base"]


# -- seeds and budget ----------------------------------------------------------------------


def test_seeds_are_a_count_or_a_list():
    assert study_of(seeds=3).seeds == [0, 1, 2]
    assert study_of(seeds=[5, 2]).seeds == [5, 2]
    assert study_of(seeds=[5, 2]).variants[0].config.train.seeds == [5, 2]


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        (0, "at least 1"),
        ([], "at least one"),
        ([1, 1], "distinct"),
        ([-1], "seeds.0"),
        (True, "expected a number, not true or false"),
    ],
)
def test_bad_seeds_are_refused(seeds, message):
    with pytest.raises(ConfigError, match=message):
        study_of(seeds=seeds)


def test_the_budget_comes_from_the_spec_or_else_the_base():
    assert study_of(episodes=7).variants[0].config.train.episodes == 7
    by_steps = study_of(steps=500)
    assert by_steps.by_steps and by_steps.budget == 500
    assert by_steps.variants[0].config.train.episodes is None
    assert study_of(base={"preset": "pendulum"}).budget == 60  # the preset's episodes
    with pytest.raises(ConfigError, match="at most one of episodes and steps"):
        study_of(episodes=3, steps=100)


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"variant": []}, "unknown key 'variant'"),
        ({"variants": [{"name": "a", "sett": {}}]}, "unknown key 'variants.0.sett'"),
        ({"base": {"preset": "pendulum", "overrides": {}}}, "unknown key 'base.overrides'"),
        ({"axes": [{"key": "agent.tau", "values": []}]}, "axes.0.values"),
        ({"variants": [{"name": "a b"}]}, "variants.0.name"),
        ({"variants": [{"name": "a", "set": {"train.seeds": [1]}}]}, "set by the study"),
        ({"episodes": True}, "episodes: expected a number, not true or false"),
    ],
)
def test_bad_spec_keys_are_refused_naming_the_key(spec, message):
    with pytest.raises(ConfigError, match=message):
        study_of(**spec)


def test_an_unknown_config_key_in_a_variant_names_the_variant_and_key():
    with pytest.raises(ConfigError, match=r"variant 'a'.*unknown config key 'replay.capacty'"):
        study_of(variants=[{"name": "a", "set": {"replay.capacty": 10}}])


def test_a_bad_value_in_any_expanded_variant_is_refused_at_load_time():
    spec = {"axes": [{"key": "replay.capacity", "label": "cap", "values": [1000, -1]}]}
    with pytest.raises(ConfigError, match=r"variant 'cap-1'.*replay.capacity"):
        study_of(**spec)


def test_duplicate_variant_names_are_refused():
    with pytest.raises(ConfigError, match="duplicate variant name 'a'"):
        study_of(variants=[{"name": "a"}, {"name": "a", "set": {"agent.tau": 0.1}}])
    with pytest.raises(ConfigError, match="duplicate variant name 'tau0.1'"):
        study_of(axes=[{"key": "agent.tau", "values": [0.1, 0.1]}])


def test_a_key_set_by_a_variant_and_an_axis_is_refused():
    with pytest.raises(ConfigError, match="'agent.tau' is set twice"):
        study_of(
            axes=[{"key": "agent.tau", "values": [0.1]}],
            variants=[{"name": "a", "set": {"agent.tau": 0.2}}],
        )


def test_missing_and_invalid_spec_files_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="study spec not found"):
        load_study(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_study(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_study(bad)


def test_a_variant_preset_replaces_the_base_preset_under_the_base_set():
    study = study_of(
        base={"preset": "pendulum", "set": {"agent.tau": 0.02}},
        variants=[{"name": "lqr", "preset": "lqr"}, {"name": "pend"}],
    )
    lqr, pend = study.variant("lqr").config, study.variant("pend").config
    assert lqr.env.id != pend.env.id == "Pendulum-v1"
    assert lqr.agent.actor == "linear" and pend.agent.actor == "mlp"
    assert lqr.agent.tau == pend.agent.tau == 0.02
    assert study.canonical["variants"][0]["preset"] == "lqr"
    assert "preset" not in study.canonical["variants"][1]
    assert (
        study.spec_hash
        != study_of(
            base={"preset": "pendulum", "set": {"agent.tau": 0.02}},
            variants=[{"name": "lqr"}, {"name": "pend"}],
        ).spec_hash
    )


def test_an_unknown_variant_preset_is_refused_naming_the_variant():
    with pytest.raises(ConfigError, match=r"variant 'a'.*unknown preset 'nope'"):
        study_of(variants=[{"name": "a", "preset": "nope"}])


# -- canonical form ------------------------------------------------------------------------


def test_the_canonical_spec_is_a_spec_of_the_same_study(tmp_path):
    study = load_study(STUDIES / "pendulum-2023.yaml")
    copy = tmp_path / "spec.yaml"
    copy.write_text(study.to_yaml())
    again = load_study(copy)
    assert again.spec_hash == study.spec_hash
    assert names(again) == names(study)


def test_equal_values_hash_equally_and_changes_do_not():
    a = study_of(base={"set": {"replay.capacity": 10_000}})
    assert study_of(base={"set": {"replay.capacity": 1e4}}).spec_hash == a.spec_hash
    assert study_of(base={"set": {"replay.capacity": 20_000}}).spec_hash != a.spec_hash
    assert study_of(seeds=2, base={"set": {"replay.capacity": 10_000}}).spec_hash != a.spec_hash


def test_a_base_config_file_is_read_relative_to_the_spec(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "base.yaml").write_text(
        yaml.safe_dump({"agent": {"tau": 0.02}, "train": {"seeds": [9], "steps": 300}})
    )
    spec = {"name": "f", "seeds": 2, "base": {"config": "cfg/base.yaml"}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    study = load_study(tmp_path / "spec.yaml")
    config = study.variants[0].config
    assert config.agent.tau == 0.02
    assert config.train.seeds == [0, 1]  # the study's seeds, not the file's
    assert study.by_steps and study.budget == 300
    assert study.canonical["base"]["set"] == {"agent.tau": 0.02}


# -- jobs ----------------------------------------------------------------------------------


def test_default_seeds_per_job_keeps_ensembles_whole_unless_workers_would_idle():
    assert default_seeds_per_job({"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}, workers=2) == 4
    assert default_seeds_per_job({"a": list(range(30))}, workers=4) == 8
    assert default_seeds_per_job({"a": list(range(10)), "b": []}, workers=2) == 5


def test_plan_groups_pending_seeds_and_shares_cores_among_workers():
    study = study_of(seeds=5, variants=[{"name": "a"}, {"name": "b"}])
    plan = plan_jobs(study, {"a": [0, 1, 2, 3, 4], "b": [3]}, workers=8, seeds_per_job=2, cores=8)
    assert [(j.variant.name, j.seeds) for j in plan.jobs] == [
        ("a", (0, 1)),
        ("a", (2, 3)),
        ("a", (4,)),
        ("b", (3,)),
    ]
    assert plan.workers == 4 and plan.torch_threads == 2
    one = plan_jobs(study, {"a": [0], "b": []}, cores=2)
    assert one.workers == 1 and one.torch_threads == 2
    config = plan.jobs[0].variant.config_for([0, 1], plan.torch_threads)
    assert config.train.seeds == [0, 1] and config.train.torch_threads == 2
