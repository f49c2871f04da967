"""``ddpglab theory check`` and ``ddpglab theory lqr`` from the command line."""

from __future__ import annotations

import json

import pytest
from cli_support import run_cli

from ddpglab.theory import checks


def test_theory_check_passes_and_prints_the_table(capsys):
    rc, out, err = run_cli(["theory", "check"], capsys)
    assert rc == 0, err
    for text in ("metric", "method", "max abs error", "rel error", "pass"):
        assert text in out
    assert "Thm 9.2" in out and "deterministic policy gradient" in out and "Riccati" in out
    assert f"{len(checks.CHECKS)} of {len(checks.CHECKS)} checks pass" in out
    assert "NO" not in out


def test_theory_check_json_rows(capsys):
    rc, out, _ = run_cli(["theory", "check", "--json"], capsys)
    rows = json.loads(out)
    assert rc == 0
    assert len(rows) == len(checks.CHECKS)
    assert all(r["passed"] and r["rel_error"] <= r["tolerance"] for r in rows)


def test_theory_check_exits_1_when_a_check_fails(capsys, monkeypatch):
    failing = checks.Check("always off", "by construction", 1e-9, lambda: iter([(1.0, 1.0)]))
    monkeypatch.setattr(checks, "CHECKS", (*checks.CHECKS[:1], failing))
    rc, out, _ = run_cli(["theory", "check"], capsys)
    assert rc == 1
    assert "always off" in out and "NO" in out and "1 of 2 checks pass" in out


def test_theory_lqr_short_run_prints_gain_errors_and_writes_json(tmp_path, capsys):
    path = tmp_path / "lqr.json"
    args = ["theory", "lqr", "--seeds", "1", "--episodes", "3", "--eval-episodes", "2"]
    rc, out, err = run_cli([*args, "--set", "train.torch_threads=1", "--json", str(path)], capsys)
    assert rc == 1, err  # 3 episodes are far from K*: reported, not passed
    assert "K*" in out and "|K - K*| / |K*|" in out and "0 of 1 seeds" in out
    result = json.loads(path.read_text())
    (member,) = result["members"]
    assert member["seed"] == 0 and member["gain_error"] > 0.05
    assert len(result["optimal_gain"][0]) == 2


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--set", "agent.gamma=1.0"], ["gamma"]),
        (["--set", "agent.gamma=1.5"], ["agent.gamma"]),
        (["--set", "agent.actor=mlp"], ["linear"]),
        (["--set", "agent.actor=cubic"], ["agent.actor"]),
        (["--set", "env.id=Pendulum-v1"], ["LQR-v0"]),
        (["--set", "agent.nope=1"], ["agent.nope"]),
        (["--preset", "nope"], ["nope"]),
        (["--seeds", "0"], ["--seeds"]),
        (["--episodes", "-3"], ["--episodes"]),
    ],
)
def test_theory_lqr_bad_input_exits_2_with_one_line(capsys, args, mentions):
    rc, out, err = run_cli(["theory", "lqr", *args], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in err
    for text in mentions:
        assert text in lines[0]


@pytest.mark.parametrize("args", [["theory"], ["theory", "prove"], ["theory", "check", "--x"]])
def test_malformed_theory_commands_exit_2(capsys, args):
    rc, _, err = run_cli(args, capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1


def test_plots_are_written_from_lqr_json(tmp_path):
    from ddpglab.theory import plots

    results = {
        "gamma": 0.9,
        "members": [{"seed": 0, "history": [[0, 1.0], [10, 0.3], [20, 0.04]]}],
    }
    path = tmp_path / "lqr.json"
    path.write_text(json.dumps(results))
    plots.main(["--out", str(tmp_path / "fig"), "--lqr-json", str(path)])
    for name in ("estimator_variance.png", "theorem_9_3_error.png", "lqr_gain_error.png"):
        assert (tmp_path / "fig" / name).stat().st_size > 10_000
