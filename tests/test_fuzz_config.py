"""Fuzz: every config file for ``ddpglab train --config FILE`` either loads or is refused
cleanly (issue 9). The seam, the checks and the config strategies are in fuzz_support.py."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import (
    FUZZ,
    LEAVES,
    PRESETS,
    SECTIONS,
    STUDIES,
    Expect,
    arbitrary_values,
    assert_outcome_refused,
    broken_configs,
    check,
    dump,
    good_configs,
    invoke,
    keys,
    malformed_yaml,
    nest,
)
from hypothesis import given, settings
from hypothesis import strategies as st


@st.composite
def arbitrary_configs(draw: st.DrawFn) -> dict[Any, Any]:
    """Known and unknown keys, sections or leaves, with values of any kind."""
    dotted = draw(st.dictionaries(st.sampled_from(sorted(LEAVES)), arbitrary_values, max_size=4))
    data: dict[Any, Any] = nest(dotted)
    for _ in range(draw(st.integers(0, 2))):
        data[draw(st.sampled_from(sorted(SECTIONS)) | keys)] = draw(arbitrary_values)
    return data


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


# -- the seam is reached ------------------------------------------------------------------


def test_valid_input_reaches_the_seam(stop_before_training, capsys, tmp_path):
    """Without this, an "accepted" outcome in the fuzz tests (these and test_fuzz_spec.py's)
    could never happen and the valid-input tests would pass vacuously; a shipped preset and
    the smoke study must get there."""
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
    assert_outcome_refused(outcome, out, r"a\nb\u2028c")
