"""Seeing what you will run: ``ddpglab presets``, ``train --print-config``, the kinds and
presets in ``train --help``, ``ddpglab --version``."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

from cli_support import assert_refused, run_cli

import ddpglab
from ddpglab.config import load_config, preset_names
from ddpglab.replay.registry import strategies


def test_presets_lists_each_with_env_algorithm_budget_and_replay(capsys):
    rc, out, err = run_cli(["presets"], capsys)
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == preset_names()
    by_name = dict(line.split(": ", 1) for line in lines)
    assert by_name["bipedal-td3"] == "BipedalWalker-v3, TD3, 1000000 steps, uniform replay"
    pendulum = load_config("pendulum")
    assert by_name["pendulum"] == (
        f"Pendulum-v1, DDPG, {pendulum.train.episodes} episodes, {pendulum.replay.kind} replay"
    )


def test_presets_name_prints_the_yaml_as_shipped(capsys):
    rc, out, err = run_cli(["presets", "bipedal-td3"], capsys)
    assert rc == 0, err
    assert out == resources.files("ddpglab").joinpath("presets", "bipedal-td3.yaml").read_text()


def test_an_unknown_preset_name_is_one_line_and_status_2(tmp_path, capsys):
    rc, out, err = run_cli(["presets", "pendulim"], capsys)
    assert_refused(rc, err, tmp_path / "nothing", "unknown preset 'pendulim'", "pendulum")
    assert out == ""


def test_print_config_prints_the_resolved_config_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--preset", "bipedal-td3", "--seeds", "3", "--set", "agent.tau=0.01"]
    for extra in ([], ["--out", str(out)]):
        rc, stdout, err = run_cli([*argv, *extra, "--print-config"], capsys)
        assert rc == 0 and err == "", err
        expected = load_config(
            "bipedal-td3", overrides={"train.seeds": [0, 1, 2], "agent.tau": 0.01}
        )
        path = tmp_path / "printed.yaml"
        path.write_text(stdout)
        assert load_config(None, file=path) == expected
    assert not out.exists()


def test_train_help_lists_the_replay_kinds_and_presets(capsys):
    rc, out, _ = run_cli(["train", "--help"], capsys)
    assert rc == 0
    flat = " ".join(out.split())
    assert all(kind in flat for kind in strategies()), flat
    assert all(name in flat for name in preset_names()), flat


def test_building_the_parser_does_not_import_torch():
    """The replay kinds in train's help come from the registry only when help is shown."""
    code = (
        "import sys; from ddpglab.cli import build_parser; "
        "build_parser().parse_args(['train', '--out', 'x']); sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_version_prints_the_package_version(capsys):
    rc, out, _ = run_cli(["--version"], capsys)
    assert rc == 0
    assert out.startswith(f"ddpglab {ddpglab.__version__}")
    assert len(out.splitlines()) == 1
