"""What the fuzz tests of the CLI's input share: the seam that keeps accepted input from
training, running a command line and judging how it ended, and the hypothesis strategies
for config files that the config and the study spec tests both draw from (issue 9).

hypothesis writes YAML for ``ddpglab train --config FILE`` and ``ddpglab study SPEC`` in
three kinds: built only from parts that are each certainly valid (must be accepted), with
at least one part certainly invalid (must be refused), and arbitrary (either). Refused
means what the README promises: exit status 2, exactly one stderr line that starts with
``ddpglab`` and says ``error``, no traceback, and no ``--out`` folder. Bad paths (missing
files, names too long, an ``--out`` that is a file, below a file, in a read-only folder or
holding another run) get the same check. The tests are in test_fuzz_config.py,
test_fuzz_spec.py and test_fuzz_paths.py.

The seam that keeps valid input from training: ``cmd_train`` imports
``ddpglab.run_folder.train`` when it runs and calls it after every check (config, env,
replay memory, ``--out`` prepared); ``run_study`` checks the spec, ``--out``, every
variant's env and replay memory, creates ``--out`` and then enters
``ddpglab.study.runner._locked(out)`` before its first write. The stand-ins for those two
raise :class:`ReachedTraining`, which ``main`` does not catch: an input the CLI accepts ends
in that exception, any other exception fails the test with its traceback. The
``stop_before_training`` fixture (conftest.py) puts them in place with :func:`patch_the_seam`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
import yaml
from cli_support import assert_refused, run_cli
from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st
from mujoco_support import RUNNABLE_PRESETS
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import ddpglab.run_folder
import ddpglab.study.runner
from ddpglab.config import Config, section_fields
from ddpglab.replay import strategies

STUDIES = Path(__file__).resolve().parents[1] / "studies"

# The replay strategies a valid config may name: every registered one.
REPLAY_KINDS = list(strategies())

Expect = Literal["valid", "invalid", "either"]

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- the seam -----------------------------------------------------------------------------


class ReachedTraining(Exception):
    """Raised by the stand-ins at the seam: the CLI accepted the input."""


def patch_the_seam(monkeypatch: pytest.MonkeyPatch) -> None:
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
        status, _, err = run_cli(argv, capsys)
    except ReachedTraining:
        return Outcome(True, None, capsys.readouterr().err)
    return Outcome(False, status, err)


def assert_outcome_refused(outcome: Outcome, out: Path, *mentions: str) -> None:
    """Status 2, one stderr line "ddpglab...error...", no traceback, no --out written."""
    assert not outcome.accepted
    assert_refused(outcome.status, outcome.stderr, out, *mentions)


def check(outcome: Outcome, out: Path, expect: Expect, what: str) -> None:
    """Accepted (unless certainly invalid) or refused as promised (unless certainly valid)."""
    if currently_in_test_context():  # counted by --hypothesis-show-statistics
        event("accepted" if outcome.accepted else "refused")
    if outcome.accepted:
        assert expect != "invalid", f"bad input was accepted:\n{what}"
        return
    assert expect != "valid", f"valid input was refused ({outcome.stderr.strip()}):\n{what}"
    assert_outcome_refused(outcome, out)


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
    for name, field in section_fields(model).items():
        section = _section(field.annotation)
        if section is None:
            out[f"{prefix}{name}"] = field
        else:
            out.update(leaves(section, f"{prefix}{name}."))
    return out


def sections(model: type[BaseModel] = Config, prefix: str = "") -> dict[str, type[BaseModel]]:
    """Every section, dotted, the top level as "": {"": Config, "replay.window": ..., ...}."""
    out: dict[str, type[BaseModel]] = {prefix.rstrip("."): model}
    for name, field in section_fields(model).items():
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
# and random module names could import anything. Colons get their own cases
# (test_fuzz_config.py).
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
    "replay.kind": st.sampled_from(REPLAY_KINDS),
    "replay.capacity": st.integers(256, 100_000),
    "replay.n_step": st.integers(1, 10),
    "replay.stratified.good_ratio": st.floats(0.0, 1.0),
    "train.eval_every": st.integers(0, 100),
}
# Those whose env this machine can make: the MuJoCo presets need the mujoco extra.
PRESETS = RUNNABLE_PRESETS


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
        lambda key: key not in section_fields(model) and not (isinstance(key, str) and "." in key)
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
