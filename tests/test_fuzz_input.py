"""Fuzz: every config file and study spec either loads or is refused cleanly (issue 9).

hypothesis writes YAML for ``ddpglab train --config FILE`` and ``ddpglab study SPEC`` in
three kinds: built only from parts that are each certainly valid (must be accepted), with
at least one part certainly invalid (must be refused), and arbitrary (either). Refused
means what the README promises: exit status 2, exactly one stderr line that starts with
``ddpglab`` and says ``error``, no traceback, and no ``--out`` folder. Bad paths (missing
files, names too long, an ``--out`` that is a file, below a file, in a read-only folder or
holding another run) get the same check.

The seam that keeps valid input from training: ``cmd_train`` imports
``ddpglab.run_folder.train`` when it runs and calls it after every check (config, env,
replay memory, ``--out`` prepared); ``run_study`` checks the spec, ``--out``, every
variant's env and replay memory, creates ``--out`` and then enters
``ddpglab.study.runner._locked(out)`` before its first write. The stand-ins for those two
raise :class:`ReachedTraining`, which ``main`` does not catch: an input the CLI accepts ends
in that exception, any other exception fails the test with its traceback.
"""

from __future__ import annotations

import errno
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
import yaml
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import ddpglab.run_folder
import ddpglab.study.runner
from ddpglab.cli import main
from ddpglab.config import Config, preset_names
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

STUDIES = Path(__file__).resolve().parents[1] / "studies"

Expect = Literal["valid", "invalid", "either"]

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- the seam -----------------------------------------------------------------------------


class ReachedTraining(Exception):
    """Raised by the stand-ins at the seam: the CLI accepted the input."""


@pytest.fixture
def stop_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace training (train) and the study's first write (_locked) by ReachedTraining."""

    def train_stand_in(config: Config, out_dir: Path, **options: Any) -> None:
        assert isinstance(config, Config) and out_dir.is_dir()
        raise ReachedTraining

    @contextmanager
    def locked_stand_in(out: Path) -> Iterator[None]:
        assert out.is_dir()
        raise ReachedTraining
        yield  # a generator, as the real context manager is

    # raising=True (the default) fails the test if a seam is renamed away
    monkeypatch.setattr(ddpglab.run_folder, "train", train_stand_in)
    monkeypatch.setattr(ddpglab.study.runner, "_locked", locked_stand_in)


@dataclass
class Outcome:
    """How a command line ended: accepted (reached the seam), or an exit status and stderr."""

    accepted: bool
    status: int | str | None
    stderr: str


def invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    """main(argv), where argparse's SystemExit counts as a status and ReachedTraining as
    acceptance; any other exception propagates and fails the test."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    except ReachedTraining:
        return Outcome(True, None, capsys.readouterr().err)
    return Outcome(False, status, capsys.readouterr().err)


def assert_refused(outcome: Outcome, out: Path, *mentions: str) -> None:
    """Status 2, one stderr line "ddpglab...error...", no traceback, no --out written."""
    assert not outcome.accepted
    assert outcome.status == 2, outcome
    assert "Traceback" not in outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("ddpglab") and "error" in lines[0], lines[0]
    for text in mentions:
        assert text in lines[0]
    # lexists, not Path.exists: a name too long makes the latter raise
    assert not os.path.lexists(out), "nothing may be written for bad input"


def check(outcome: Outcome, out: Path, expect: Expect, what: str) -> None:
    """Accepted (unless certainly invalid) or refused as promised (unless certainly valid)."""
    if currently_in_test_context():  # counted by --hypothesis-show-statistics
        event("accepted" if outcome.accepted else "refused")
    if outcome.accepted:
        assert expect != "invalid", f"bad input was accepted:\n{what}"
        return
    assert expect != "valid", f"valid input was refused ({outcome.stderr.strip()}):\n{what}"
    assert_refused(outcome, out)


# -- what the config holds ----------------------------------------------------------------


def _section(annotation: Any) -> type[BaseModel] | None:
    """The config section a field holds (also an optional one, like replay.window)."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def leaves(model: type[BaseModel] = Config, prefix: str = "") -> dict[str, FieldInfo]:
    """Every key that holds a value, dotted: {"agent.tau": FieldInfo, ...}; read from the
    models, so fields added later are fuzzed too."""
    out: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        section = _section(field.annotation)
        if section is None:
            out[f"{prefix}{name}"] = field
        else:
            out.update(leaves(section, f"{prefix}{name}."))
    return out


def sections(model: type[BaseModel] = Config, prefix: str = "") -> dict[str, type[BaseModel]]:
    """Every section, dotted, the top level as "": {"": Config, "replay.window": ..., ...}."""
    out: dict[str, type[BaseModel]] = {prefix.rstrip("."): model}
    for name, field in model.model_fields.items():
        section = _section(field.annotation)
        if section is not None:
            out.update(sections(section, f"{prefix}{name}."))
    return out


LEAVES = leaves()
SECTIONS = sections()


def _plain_type(annotation: Any) -> Any:
    """int for ``int | None``, list for ``list[int]``, Literal for a Literal."""
    if get_origin(annotation) is Literal:
        return Literal
    if get_origin(annotation) is list:
        return list
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, type(int | None)) and len(args) == 1:
        return _plain_type(args[0])
    return annotation


# Values that no leaf of a given type accepts. Not "1e-3" or true for numbers: pydantic's
# lax mode reads numeric strings and booleans as numbers.
ALWAYS_WRONG: list[Any] = [{"nested": 1}, math.nan, math.inf, -math.inf]
WRONG_FOR_TYPE: dict[Any, list[Any]] = {
    int: ["abc", [1], 1.5],
    float: ["abc", [1.0]],
    str: [5, 1.5, [1]],
    Literal: ["no-such-choice", 5],
    list: ["abc", 5, ["abc"]],
}


def wrong_values(field: FieldInfo) -> list[Any]:
    """Values the field refuses: of a wrong type, or outside its bounds."""
    values = ALWAYS_WRONG + WRONG_FOR_TYPE.get(_plain_type(field.annotation), [])
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Gt):
            values += [rule.gt, rule.gt - 1, -(10**30)]
        elif isinstance(rule, annotated_types.Ge):
            values += [rule.ge - 1, -(10**30)]
        elif isinstance(rule, annotated_types.Lt):
            values += [rule.lt, 10**30]
        elif isinstance(rule, annotated_types.Le):
            values += [rule.le + 1, 10**30]
        elif isinstance(rule, annotated_types.MinLen) and rule.min_length > 0:
            values += [[]]
    return values


BAD_LEAF_VALUES = [(key, value) for key, field in LEAVES.items() for value in wrong_values(field)]


# -- strategies ---------------------------------------------------------------------------

# No ':' in generated text: gymnasium reads an env id "module:name" as "import module",
# and random module names could import anything. Colons get their own cases below.
texts = st.text(st.characters(blacklist_characters=":", blacklist_categories=["Cs"]), max_size=12)
keys = st.one_of(texts, st.integers(-5, 5), st.none(), st.booleans())
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and +-inf included
    texts,
    st.dates(),
)
arbitrary_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)
small_arbitrary = arbitrary_values.filter(
    lambda v: not (isinstance(v, int) and not isinstance(v, bool) and 1000 < v <= MAX_SEED_COUNT)
)  # a valid but large seed count makes every variant's config slow to validate

# Keys with values each valid alone and together (batch_size <= 256 <= capacity).
GOOD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "env.id": st.sampled_from(["Pendulum-v1", "ddpglab/LQR-v0", "MountainCarContinuous-v0"]),
    "env.max_episode_steps": st.none() | st.integers(1, 10_000),
    "agent.hidden": st.lists(st.integers(1, 64), min_size=1, max_size=3),
    "agent.actor": st.sampled_from(["mlp", "linear"]),
    "agent.actor_lr": st.floats(1e-6, 1.0),
    "agent.gamma": st.floats(0.0, 1.0),
    "agent.tau": st.floats(1e-4, 1.0),
    "agent.batch_size": st.integers(1, 256),
    "agent.final_layer_init": st.none() | st.floats(1e-4, 1.0),
    "noise.kind": st.sampled_from(["ou", "gaussian", "none"]),
    "noise.scale": st.floats(0.0, 10.0),
    "replay.kind": st.sampled_from(["uniform", "prioritized", "stratified", "softmax"]),
    "replay.capacity": st.integers(256, 100_000),
    "replay.n_step": st.integers(1, 10),
    "replay.stratified.good_ratio": st.floats(0.0, 1.0),
    "train.eval_every": st.integers(0, 100),
}
# Disjoint key pools of a good study, so that no variant sets a key twice.
VARIANT_SET_KEYS = ["replay.kind", "noise.kind", "agent.batch_size"]
STUDY_AXIS_KEYS = ["agent.tau", "agent.gamma"]
VARIANT_AXIS_KEYS = ["noise.scale", "agent.hidden"]
PRESETS = preset_names()


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """{"agent.tau": 1} -> {"agent": {"tau": 1}}."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


@st.composite
def good_overrides(draw: st.DrawFn, pool: list[str]) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(pool), unique=True, max_size=4))
    return {key: draw(GOOD_VALUES[key]) for key in chosen}


@st.composite
def good_configs(draw: st.DrawFn) -> tuple[str | None, dict[str, Any]]:
    """(preset or None, a config file's mapping) that together are valid."""
    dotted = draw(good_overrides(list(GOOD_VALUES)))
    budget = draw(st.sampled_from([None, "train.episodes", "train.steps"]))
    if budget is not None:
        dotted[budget] = draw(st.integers(1, 10**9))
    if draw(st.booleans()):
        dotted["train.seeds"] = draw(
            st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3, unique=True)
        )
    return draw(st.sampled_from([None, *PRESETS])), nest(dotted)


def unknown_key(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Keys the model does not have; without dots, which a study reads as a path of keys."""
    return keys.filter(
        lambda key: key not in model.model_fields and not (isinstance(key, str) and "." in key)
    )


def set_nested(data: dict[Any, Any], dotted: str, key: Any, value: Any) -> None:
    """data[...dotted...][key] = value, making the sections on the way."""
    node = data
    for part in dotted.split(".") if dotted else []:
        node = node.setdefault(part, {})
    node[key] = value


@st.composite
def broken_configs(draw: st.DrawFn, spared: tuple[str, ...] = ()) -> dict[str, Any]:
    """A good config file with one certain mistake, in none of the ``spared`` keys."""
    _, data = draw(good_configs())
    mistake = draw(st.sampled_from(["unknown key", "wrong value", "section", "budgets"]))
    if mistake == "unknown key":
        where = draw(st.sampled_from(sorted(SECTIONS)))
        # {} too: a study once flattened an empty mapping away, unknown key and all
        value = draw(st.just({}) | arbitrary_values)
        set_nested(data, where, draw(unknown_key(SECTIONS[where])), value)
    elif mistake == "wrong value":
        key, value = draw(st.sampled_from([kv for kv in BAD_LEAF_VALUES if kv[0] not in spared]))
        section, _, leaf = key.rpartition(".")
        set_nested(data, section, leaf, value)
    elif mistake == "section":
        section = draw(st.sampled_from([s for s in SECTIONS if s and "." not in s]))
        data[section] = draw(st.sampled_from([[1, 2], 5, "text", True, [], 0.5]))
    else:
        data.setdefault("train", {}).update(episodes=5, steps=50)
    return data


@st.composite
def arbitrary_configs(draw: st.DrawFn) -> dict[Any, Any]:
    """Known and unknown keys, sections or leaves, with values of any kind."""
    dotted = draw(st.dictionaries(st.sampled_from(sorted(LEAVES)), arbitrary_values, max_size=4))
    data: dict[Any, Any] = nest(dotted)
    for _ in range(draw(st.integers(0, 2))):
        data[draw(st.sampled_from(sorted(SECTIONS)) | keys)] = draw(arbitrary_values)
    return data


def malformed_yaml(document: str) -> st.SearchStrategy[bytes]:
    """The document made certainly unreadable: not UTF-8, a control character, a tab that
    starts a token, an unclosed bracket, or nesting deeper than the YAML reader recurses."""
    return st.sampled_from(
        [
            document.encode() + b"\n\xff\xfe\x00\x81",
            (document + "\nx: \x07\n").encode(),
            ("\t" + document).encode(),
            (document + "\nunclosed: [1, {a: 2\n").encode(),
            (document + "\n" + "[" * 5000 + "]" * 5000 + "\n").encode(),
            ("nested: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n").encode(),
            b"\x00\x01\x02 binary",
        ]
    )


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


# -- ddpglab train --config FILE ----------------------------------------------------------


def run_train_config(
    capsys: pytest.CaptureFixture[str], text: bytes, preset: str | None, expect: Expect
) -> None:
    """Write ``text`` as the config file, run ``ddpglab train --config`` on it, check."""
    with tempfile.TemporaryDirectory() as tmp:
        config, out = Path(tmp) / "config.yaml", Path(tmp) / "out"
        config.write_bytes(text)
        argv = ["train", "--config", str(config), "--out", str(out), "--quiet"]
        argv += ["--preset", preset] if preset else []
        check(invoke(argv, capsys), out, expect, text.decode(errors="replace")[:2000])


@FUZZ
@given(case=good_configs())
def test_a_valid_config_file_is_accepted(stop_before_training, capsys, case):
    preset, data = case
    run_train_config(capsys, dump(data).encode(), preset, "valid")


@settings(FUZZ, max_examples=150)
@given(data=broken_configs(), preset=st.sampled_from([None, *PRESETS]))
def test_a_config_file_with_a_mistake_is_refused(stop_before_training, capsys, data, preset):
    run_train_config(capsys, dump(data).encode(), preset, "invalid")


@settings(FUZZ, max_examples=100)
@given(data=arbitrary_configs())
def test_any_config_file_is_accepted_or_refused(stop_before_training, capsys, data):
    run_train_config(capsys, dump(data).encode(), None, "either")


@FUZZ
@given(
    text=st.one_of(
        st.builds(dump, good_configs().map(lambda case: case[1])).flatmap(malformed_yaml),
        st.sampled_from([dump([1, 2]), dump("just text"), "5\n", "true\n", "- env\n"]).map(
            str.encode
        ),
    )
)
def test_unreadable_or_non_mapping_config_file_is_refused(stop_before_training, capsys, text):
    run_train_config(capsys, text, None, "invalid")


@FUZZ
@given(text=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_random_bytes_as_config_file_are_accepted_or_refused(stop_before_training, capsys, text):
    run_train_config(capsys, text, None, "either")


@pytest.mark.parametrize("env_id", ["y::", ":", ".m.:Pendulum-v1", ":Pendulum-v1", "a:b:c-v0"])
def test_a_malformed_module_env_id_is_refused(stop_before_training, capsys, env_id):
    """gymnasium reads "module:name" itself and once raised ValueError or TypeError here."""
    run_train_config(capsys, dump({"env": {"id": env_id}}).encode(), None, "invalid")


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


# -- paths --------------------------------------------------------------------------------


def _read_only_folder(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder nobody may write in. Where permissions do not stop this user (root), the
    refusal the kernel gives anyone else is simulated: creating a folder or opening a file
    to create it right in this folder fails with EACCES (os.mkdir under Path.mkdir and
    os.makedirs, os.open). A write that bypasses both (builtin open, sqlite) really lands
    in the folder, and the test's check that nothing was left finds it."""
    folder = tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    (folder / "probe").unlink()

    def refused(path: Any, dir_fd: int | None) -> bool:
        return dir_fd is None and Path(os.path.abspath(os.fspath(path))).parent == folder

    def denied(path: Any) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    real_mkdir, real_open = os.mkdir, os.open

    def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if refused(path, dir_fd):
            raise denied(path)
        real_mkdir(path, mode, dir_fd=dir_fd)

    def open_(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & os.O_CREAT and refused(path, dir_fd) and not os.path.lexists(path):
            raise denied(path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    return folder


# Each makes (input file, --out) in a temporary folder; at least one of them is bad.
PathCase = Callable[[Path, Path, pytest.MonkeyPatch], tuple[Path, Path]]
PATH_CASES: dict[str, PathCase] = {
    "input missing": lambda tmp, good, mp: (tmp / "missing.yaml", tmp / "out"),
    "input is a folder": lambda tmp, good, mp: (tmp, tmp / "out"),
    "input name too long": lambda tmp, good, mp: (tmp / ("x" * 300), tmp / "out"),
    "input below a file": lambda tmp, good, mp: (good / "spec.yaml", tmp / "out"),
    "out name too long": lambda tmp, good, mp: (good, tmp / ("o" * 300)),
    "out below a file": lambda tmp, good, mp: (good, good / "out"),
    "out in a read-only folder": lambda tmp, good, mp: (
        good,
        _read_only_folder(tmp, mp) / "out",
    ),
}


@pytest.mark.parametrize("command", ["train", "study"])
@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_a_bad_path_is_refused(stop_before_training, capsys, monkeypatch, tmp_path, command, case):
    good = tmp_path / "good.yaml"
    good.write_text(dump({"name": "s", "seeds": 1}) if command == "study" else dump({}))
    given_file, out = PATH_CASES[case](tmp_path, good, monkeypatch)
    if command == "train":
        argv = ["train", "--config", str(given_file), "--out", str(out)]
    else:
        argv = ["study", str(given_file), "--out", str(out)]
    assert_refused(invoke(argv, capsys), out)
    assert good.read_text().startswith(("name", "{}"))  # the file beside is untouched
    # Nothing written anywhere else either (the read-only folder stays empty).
    left = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")}
    assert left <= {"good.yaml", "read-only"}, left


@pytest.mark.parametrize("command", ["train", "study"])
def test_an_out_that_is_a_file_is_refused_and_left_as_it_was(
    stop_before_training, capsys, tmp_path, command
):
    good, out = tmp_path / "good.yaml", tmp_path / "out"
    good.write_text(dump({"name": "s", "seeds": 1}) if command == "study" else dump({}))
    out.write_bytes(b"not a folder")
    argv = ["train", "--config", str(good)] if command == "train" else ["study", str(good)]
    outcome = invoke([*argv, "--out", str(out)], capsys)
    assert outcome.status == 2 and not outcome.accepted
    assert len(outcome.stderr.strip().splitlines()) == 1 and "Traceback" not in outcome.stderr
    assert out.read_bytes() == b"not a folder"


@pytest.mark.parametrize("command", ["train", "study"])
def test_an_out_holding_a_train_run_is_refused_and_left_as_it_was(
    stop_before_training, capsys, tmp_path, command
):
    good, out = tmp_path / "good.yaml", tmp_path / "out"
    good.write_text(dump({"name": "s", "seeds": 1}) if command == "study" else dump({}))
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"a train run's store")
    argv = ["train", "--config", str(good)] if command == "train" else ["study", str(good)]
    outcome = invoke([*argv, "--out", str(out)], capsys)
    assert outcome.status == 2 and not outcome.accepted
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and "--overwrite" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["results.sqlite"]
    assert (out / "results.sqlite").read_bytes() == b"a train run's store"


# -- the seam is reached ------------------------------------------------------------------


def test_valid_input_reaches_the_seam(stop_before_training, capsys, tmp_path):
    """Without this, an "accepted" outcome above could never happen and the valid-input
    tests would pass vacuously; a shipped preset and the smoke study must get there."""
    for preset in ("pendulum", "lqr"):
        outcome = invoke(["train", "--preset", preset, "--out", str(tmp_path / preset)], capsys)
        assert outcome.accepted, outcome.stderr
    smoke = STUDIES / "smoke.yaml"
    outcome = invoke(["study", str(smoke), "--out", str(tmp_path / "smoke")], capsys)
    assert outcome.accepted, outcome.stderr


def test_a_refusal_prints_line_breaks_in_user_input_escaped(stop_before_training, capsys, tmp_path):
    """An unknown key with a line break in it once made the message two lines."""
    config, out = tmp_path / "config.yaml", tmp_path / "out"
    config.write_text(dump({"agent": {"a\nb\u2028c": 1}}))
    outcome = invoke(["train", "--config", str(config), "--out", str(out)], capsys)
    assert_refused(outcome, out, r"a\nb\u2028c")


def test_an_unknown_empty_section_in_a_study_base_config_is_refused(
    stop_before_training, capsys, tmp_path
):
    """A study flattened {"zz": {}} away, so it accepted a key that train --config refuses;
    an empty known section still sets nothing."""
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(dump({"name": "s", "seeds": 1, "base": {"config": "base.yaml"}}))
    (tmp_path / "base.yaml").write_text(dump({"agent": {}, "zz": {}}))
    assert_refused(invoke(["study", str(spec), "--out", str(out)], capsys), out, "'zz'")
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
    assert_refused(outcome, out, "--seeds", str(MAX_SEED_COUNT))
