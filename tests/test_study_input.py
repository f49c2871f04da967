"""ddpglab study: bad input is refused in one line with exit status 2, writing nothing;
a store a killed study left empty is used."""

from __future__ import annotations

import json

import pytest
from cli_support import assert_refused, run_cli
from study_support import SMOKE, fast_spec, runs_of, write_spec

from ddpglab.store import ResultsStore


@pytest.mark.parametrize(
    ("text", "mention"),
    [
        (None, "not found"),
        ("name: [unclosed\n", "not valid YAML"),
        ("name: x\nseeds: 1\nvariantz: []\n", "unknown key 'variantz'"),
        ("name: x\nseeds: 1\nbase: {set: {agent.tau: -1}}\n", "agent.tau"),
        ("name: x\nseeds: 1\nbase: {set: {env.id: NoSuchEnv-v0}}\n", "NoSuchEnv-v0"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, text, mention):
    spec = tmp_path / "spec.yaml"
    if text is not None:
        spec.write_text(text)
    out = tmp_path / "study"
    rc, _, err = run_cli(["study", str(spec), "--out", str(out), "--quiet"], capsys)
    assert_refused(rc, err, out, mention)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nseeds: 1\nvariants: [{nme: a}]\n",
            "unknown key 'variants.0.nme' (a 'variants.0.name' is required)",
        ),
        (
            "name: x\nseeds: two\n",
            "seeds: expected a count N (seeds 0..N-1) or a list of seeds, got 'two'",
        ),
    ],
    ids=["misspelt-required-key", "seed-count-in-words"],
)
def test_spec_mistakes_are_named_in_one_line(tmp_path, capsys, text, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    out = tmp_path / "study"
    rc, _, err = run_cli(["study", str(spec), "--out", str(out), "--quiet"], capsys)
    assert_refused(rc, err, out)
    assert err.strip() == f"ddpglab: error: {spec}: {message}"


def test_a_folder_holding_a_train_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with ResultsStore(out / "results.sqlite") as store:
        store.add_run("Pendulum-v1", 0, {})
    rc, _, err = run_cli(["study", str(SMOKE), "--out", str(out), "--quiet"], capsys)
    assert rc == 2 and "not a study's" in err and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == ["results.sqlite"]


def test_a_store_left_empty_by_a_study_killed_at_its_start_is_used(tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    ResultsStore(out / "results.sqlite").close()  # tables, no study row, no runs
    spec = write_spec(tmp_path, fast_spec(seeds=1, episodes=1))
    rc, _, err = run_cli(["study", str(spec), "--out", str(out), "--quiet", "--no-report"], capsys)
    assert rc == 0, err
    assert [r["status"] for r in runs_of(out)] == ["done", "done"]


@pytest.mark.parametrize(
    ("setting", "mention"),
    [
        ("train.precisio=bf16", "unknown config key 'train.precisio'"),
        ("train.precision=fp8", "train.precision"),
        ("nonsense", "--set expects dotted.key=value"),
        ("train.steps=100", "'train.steps' is set by the study itself"),
        ("train.seeds=[0,1]", "'train.seeds' is set by the study itself"),
    ],
)
def test_a_bad_study_set_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, setting, mention):
    out = tmp_path / "study"
    rc, _, err = run_cli(
        ["study", str(SMOKE), "--out", str(out), "--quiet", "--set", setting], capsys
    )
    assert_refused(rc, err, out, mention)


def test_study_set_changes_the_base_and_a_variants_own_set_wins(tmp_path, capsys):
    spec = write_spec(
        tmp_path,
        fast_spec(
            variants=[
                {"name": "plain", "set": {}},
                {"name": "own", "set": {"agent.tau": 0.5}},
            ]
        ),
    )
    out = tmp_path / "study"
    args = ["study", str(spec), "--out", str(out), "--quiet", "--no-report"]
    rc, _, err = run_cli(
        [*args, "--set", "agent.tau=0.25", "--set", "train.precision=bf16"], capsys
    )
    assert rc == 0, err
    configs = {run["variant"]: json.loads(run["config_json"]) for run in runs_of(out)}
    assert configs["plain"]["agent"]["tau"] == 0.25
    assert configs["own"]["agent"]["tau"] == 0.5
    assert {c["train"]["precision"] for c in configs.values()} == {"bf16"}
    rc, printed, err = run_cli(
        [*args, "--set", "agent.tau=0.25", "--set", "train.precision=bf16"], capsys
    )
    assert rc == 0, err
    assert json.loads(printed)["skipped"] == 4, "the same command resumes the study it made"
