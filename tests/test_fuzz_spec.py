"""Fuzz: every study spec for ``ddpglab study SPEC`` either loads or is refused cleanly
(issue 9). The seam, the checks and the config strategies a spec's base and variants draw
from are in fuzz_support.py."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import (
    BAD_LEAF_VALUES,
    FUZZ,
    GOOD_VALUES,
    PRESETS,
    Expect,
    arbitrary_values,
    assert_outcome_refused,
    broken_configs,
    check,
    dump,
    good_configs,
    good_overrides,
    invoke,
    malformed_yaml,
    texts,
    unknown_key,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from ddpglab.study.spec import (
    MAX_SEED_COUNT,
    NAME,
    STUDY_KEYS,
    AxisSpec,
    BaseSpec,
    StudySpec,
    VariantSpec,
    format_value,
)

small_arbitrary = arbitrary_values.filter(
    lambda v: not (isinstance(v, int) and not isinstance(v, bool) and 1000 < v <= MAX_SEED_COUNT)
)  # a valid but large seed count makes every variant's config slow to validate

# Disjoint key pools of a good study, so that no variant sets a key twice.
VARIANT_SET_KEYS = ["replay.kind", "noise.kind", "agent.batch_size"]
STUDY_AXIS_KEYS = ["agent.tau", "agent.gamma"]
VARIANT_AXIS_KEYS = ["noise.scale", "agent.hidden"]


# -- ddpglab study SPEC -------------------------------------------------------------------

variant_names = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)  # no '-': see axes
labels = st.from_regex(r"[a-z]{1,6}", fullmatch=True)


@st.composite
def good_axes(draw: st.DrawFn, pool: list[str]) -> list[dict[str, Any]]:
    """Axes over distinct keys, each with distinct values that name variants distinctly."""
    chosen = draw(st.lists(st.sampled_from(pool), unique=True, max_size=2))
    axes = []
    for key in chosen:
        values = draw(st.lists(GOOD_VALUES[key], min_size=1, max_size=2, unique_by=format_value))
        axis: dict[str, Any] = {"key": key, "values": values}
        if draw(st.booleans()):
            axis["label"] = draw(labels)
        axes.append(axis)
    return axes


@st.composite
def good_specs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(a spec, the base config file it names or None) that together are valid."""
    spec: dict[str, Any] = {
        "name": draw(st.from_regex(NAME, fullmatch=True).filter(lambda n: len(n) < 40)),
        "seeds": draw(
            st.integers(1, 3)
            | st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3, unique=True)
        ),
    }
    budget = draw(st.sampled_from([None, "episodes", "steps"]))
    if budget is not None:
        spec[budget] = draw(st.integers(1, 10**9))
    base: dict[str, Any] = {}
    if preset := draw(st.sampled_from([None, *PRESETS])):
        base["preset"] = preset
    if base_set := draw(good_overrides(list(GOOD_VALUES))):
        base["set"] = base_set
    config_file = None
    if draw(st.booleans()):
        base["config"] = "base.yaml"
        config_file = draw(good_configs())[1]
    if base:
        spec["base"] = base
    variants = []
    for name in draw(st.lists(variant_names, unique=True, max_size=3)):
        variant = {"name": name, "set": draw(good_overrides(VARIANT_SET_KEYS))}
        if axes := draw(good_axes(VARIANT_AXIS_KEYS)):
            variant["axes"] = axes
        variants.append(variant)
    if variants:
        spec["variants"] = variants
    if axes := draw(good_axes(STUDY_AXIS_KEYS)):
        spec["axes"] = axes
    return spec, config_file


BAD_SEEDS = [0, -1, True, [], [1, 1], [-1], [2**32], "abc", 1.5, {"a": 1}, None]
BAD_BUDGETS = [0, -5, math.nan, math.inf, "abc", [3], 2.5]
BAD_NAMES = ["", "a b", "-x", ".x", "x/y", "x\ny", "é", 5, None, ["x"]]


@st.composite
def broken_specs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A good spec with one certain mistake."""
    spec, config_file = draw(good_specs())
    variants = spec.setdefault("variants", [{"name": "v"}])
    variant = variants[0]
    base = spec.setdefault("base", {})
    mistake = draw(
        st.sampled_from(
            [
                "unknown top", "unknown base", "unknown variant", "unknown axis",
                "name", "variant name", "duplicate variant", "seeds", "huge seed count",
                "budget", "both budgets", "variants not a list", "study key",
                "unknown config key", "bad config value", "bad axis value", "empty axis",
                "set twice", "bad label", "preset", "missing base config", "bad base config",
                "base not a mapping",
            ]
        )
    )  # fmt: skip
    if mistake == "unknown top":
        spec[draw(unknown_key(StudySpec))] = draw(arbitrary_values)
    elif mistake == "unknown base":
        base[draw(unknown_key(BaseSpec))] = draw(arbitrary_values)
    elif mistake == "unknown variant":
        variant[draw(unknown_key(VariantSpec))] = draw(arbitrary_values)
    elif mistake == "unknown axis":
        axis = {"key": "agent.tau", "values": [0.5], draw(unknown_key(AxisSpec)): 1}
        spec["axes"] = [axis]
    elif mistake == "name":
        spec["name"] = draw(
            st.sampled_from(BAD_NAMES) | texts.filter(lambda n: not NAME.fullmatch(n))
        )
    elif mistake == "variant name":
        variant["name"] = draw(st.sampled_from(BAD_NAMES))
    elif mistake == "duplicate variant":
        variants.append(dict(variant))
    elif mistake == "seeds":
        spec["seeds"] = draw(st.sampled_from(BAD_SEEDS))
    elif mistake == "huge seed count":
        # not 1e9: without the limit, that much would be allocated before the refusal
        spec["seeds"] = draw(st.sampled_from([MAX_SEED_COUNT + 1, 10**12, 2**63, 10**40]))
    elif mistake == "budget":
        spec[draw(st.sampled_from(["episodes", "steps"]))] = draw(st.sampled_from(BAD_BUDGETS))
    elif mistake == "both budgets":
        spec.update(episodes=3, steps=30)
    elif mistake == "variants not a list":
        spec["variants"] = draw(st.sampled_from(["uniform", 5, {"name": "x"}, [5], [[]]]))
    elif mistake == "study key":
        key = draw(st.sampled_from(STUDY_KEYS))
        where = draw(st.sampled_from(["base", "variant", "axis"]))
        if where == "axis":
            spec["axes"] = [{"key": key, "values": [1]}]
        else:
            (base if where == "base" else variant).setdefault("set", {})[key] = 1
    elif mistake == "unknown config key":
        key = draw(
            st.sampled_from(
                ["agent.nope", "nope", "agent.tau.x", "agent..tau", "", "replay.window.zz"]
            )
        )
        (base if draw(st.booleans()) else variant).setdefault("set", {})[key] = 1
    elif mistake == "bad config value":  # keys a study sets itself are refused anyway
        key, value = draw(st.sampled_from(BAD_LEAF_VALUES))
        (base if draw(st.booleans()) else variant).setdefault("set", {})[key] = value
    elif mistake == "bad axis value":
        key, value = draw(st.sampled_from(BAD_LEAF_VALUES))
        spec["axes"] = [{"key": key, "values": [value], "label": "x"}]
    elif mistake == "empty axis":
        spec["axes"] = [{"key": "agent.tau", "values": draw(st.sampled_from([[], {}]))}]
    elif mistake == "set twice":
        variant["set"] = {"agent.tau": 0.5}
        spec["axes"] = [{"key": "agent.tau", "values": [0.1]}]
    elif mistake == "bad label":
        label = draw(st.sampled_from(["a b", "x/", "\n", "é"]))
        variant["axes"] = [{"key": "noise.scale", "values": [0.1], "label": label}]
    elif mistake == "preset":
        base["preset"] = draw(st.sampled_from(["nope", "../presets/pendulum", 5]))
    elif mistake == "missing base config":
        base["config"] = draw(st.sampled_from(["missing.yaml", ".", "x" * 300, "a\nb"]))
        config_file = None
    elif mistake == "bad base config":
        base["config"] = "base.yaml"
        # the study drops a config file's seeds and threads: it sets them itself
        config_file = draw(broken_configs(spared=("train.seeds", "train.torch_threads")))
    else:
        spec["base"] = draw(st.sampled_from([[1], "pendulum", 5]))
    return spec, config_file


@st.composite
def arbitrary_specs(draw: st.DrawFn) -> tuple[dict[Any, Any], None]:
    """A good spec whose fields are replaced, or added to, by values of any kind."""
    spec, _ = draw(good_specs())
    spec.pop("base", None)  # its config file is not written here
    fields = [*StudySpec.model_fields, "base.preset", "base.set", "variants.0", "axes.0"]
    for where in draw(st.lists(st.sampled_from(fields), max_size=3)):
        value = draw(small_arbitrary)
        if where.startswith("base."):
            if not isinstance(spec.get("base"), dict):  # replaced by a value before
                spec["base"] = {}
            spec["base"][where.removeprefix("base.")] = value
        elif where.endswith(".0"):
            spec[where.removesuffix(".0")] = [value]
        else:
            spec[where] = value
    return spec, None


def run_study_spec(
    capsys: pytest.CaptureFixture[str],
    text: bytes,
    config_file: dict[str, Any] | None,
    expect: Expect,
) -> None:
    """Write the spec (and its base config file), run ``ddpglab study`` on it, check."""
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "spec.yaml", Path(tmp) / "out"
        spec.write_bytes(text)
        if config_file is not None:
            (Path(tmp) / "base.yaml").write_text(dump(config_file))
        argv = ["study", str(spec), "--out", str(out), "--quiet", "--no-report"]
        what = text.decode(errors="replace")[:2000] + f"\nbase.yaml: {config_file}"
        check(invoke(argv, capsys), out, expect, what)


@settings(FUZZ, max_examples=40)
@given(case=good_specs())
def test_a_valid_study_spec_is_accepted(stop_before_training, capsys, case):
    spec, config_file = case
    run_study_spec(capsys, dump(spec).encode(), config_file, "valid")


@settings(FUZZ, max_examples=150)
@given(case=broken_specs())
def test_a_study_spec_with_a_mistake_is_refused(stop_before_training, capsys, case):
    spec, config_file = case
    run_study_spec(capsys, dump(spec).encode(), config_file, "invalid")


@settings(FUZZ, max_examples=80)
@given(case=arbitrary_specs())
def test_any_study_spec_is_accepted_or_refused(stop_before_training, capsys, case):
    spec, _ = case
    run_study_spec(capsys, dump(spec).encode(), None, "either")


@FUZZ
@given(
    text=st.one_of(
        st.builds(dump, good_specs().map(lambda case: case[0])).flatmap(malformed_yaml),
        st.sampled_from([dump([1, 2]), dump("smoke"), "5\n", "null\n", ""]).map(str.encode),
    )
)
def test_unreadable_or_non_mapping_study_spec_is_refused(stop_before_training, capsys, text):
    run_study_spec(capsys, text, None, "invalid")


def test_an_unknown_empty_section_in_a_study_base_config_is_refused(
    stop_before_training, capsys, tmp_path
):
    """A study flattened {"zz": {}} away, so it accepted a key that train --config refuses;
    an empty known section still sets nothing."""
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(dump({"name": "s", "seeds": 1, "base": {"config": "base.yaml"}}))
    (tmp_path / "base.yaml").write_text(dump({"agent": {}, "zz": {}}))
    assert_outcome_refused(invoke(["study", str(spec), "--out", str(out)], capsys), out, "'zz'")
    (tmp_path / "base.yaml").write_text(dump({"agent": {}, "replay": {"prioritized": {}}}))
    assert invoke(["study", str(spec), "--out", str(out)], capsys).accepted


@pytest.mark.parametrize("command", ["train", "study"])
def test_a_huge_seeds_option_is_refused(stop_before_training, capsys, tmp_path, command):
    """--seeds N is expanded into a list first; 10^12 raised MemoryError."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(dump({"name": "s", "seeds": 1}))
    out = tmp_path / "out"
    argv = ["train"] if command == "train" else ["study", str(spec)]
    outcome = invoke([*argv, "--seeds", str(10**12), "--out", str(out)], capsys)
    assert_outcome_refused(outcome, out, "--seeds", str(MAX_SEED_COUNT))
