"""``ddpglab report``: files, table values against a direct computation, determinism, refusals."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from cli_support import assert_refused, run_cli
from report_support import SyntheticRun, learning_curve, make_store, two_variant_study

from ddpglab.config import ConfigError
from ddpglab.report import study_figures
from ddpglab.report.study_report import write_report
from ddpglab.report.study_rows import first_crossings
from ddpglab.store import ResultsStore

N_BOOT = 300


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The synthetic study and its report, written once for the read-only tests."""
    folder, runs = two_variant_study(tmp_path_factory.mktemp("study") / "s")
    report = write_report(folder, n_boot=N_BOOT)
    return folder, runs, report


def read_table(report) -> dict[str, dict[str, str]]:
    with open(report / "table.csv", newline="") as f:
        return {row["variant"]: row for row in csv.DictReader(f)}


def done(runs, variant):
    return [r for r in runs if r.variant == variant and r.status == "done"]


def direct_crossing(returns: np.ndarray, threshold: float = -400.0) -> int | None:
    # NaN until the first full window of 10, and NaN > threshold is False.
    rolling = pd.Series(returns).rolling(10).mean().to_numpy()
    above = np.flatnonzero(rolling > threshold)
    return int(above[0]) + 1 if above.size else None  # episodes count from 1


def test_a_crossing_needs_a_full_window():
    # One lucky first episode above -400, then nothing near it: never crossed.
    lucky_start = np.array([-350.0, *[-1500.0] * 99])
    steady = np.array([*[-1500.0] * 20, *[-300.0] * 30])  # full window above from episode 30
    runs = [
        SimpleNamespace(returns=r, episodes=np.arange(1, len(r) + 1)) for r in (lucky_start, steady)
    ]
    assert first_crossings(runs, threshold=-400.0, window=10) == [None, 30]


def test_report_writes_every_file(study):
    _, _, report = study
    names = sorted(p.name for p in report.iterdir())
    assert names == [
        "curves.png",
        "curves_steps.png",
        "final.png",
        "table.csv",
        "table.md",
        "thresholds.png",
    ]
    for name in names:
        assert (report / name).stat().st_size > 0
    assert not any(p.name.startswith(".report") for p in report.parent.iterdir())


def test_table_matches_a_direct_computation(study):
    _, runs, report = study
    table = read_table(report)
    assert list(table) == ["softmax-b1", "uniform-cap1e4", "stratified-thr0.5"]
    baseline = np.array([r.returns[-50:].mean() for r in done(runs, "uniform-cap1e4")])
    for variant, row in table.items():
        scores = np.array([r.returns[-50:].mean() for r in done(runs, variant)])
        assert int(row["n_seeds"]) == scores.size  # the failed and running runs are left out
        assert float(row["mean"]) == pytest.approx(scores.mean(), rel=1e-12)
        ordered = np.sort(scores)
        k = scores.size // 4
        assert float(row["iqm"]) == pytest.approx(ordered[k : scores.size - k].mean(), rel=1e-12)
        for stat in ("mean", "iqm"):
            low, high = float(row[f"{stat}_ci_low"]), float(row[f"{stat}_ci_high"])
            # the mean of one score repeated n times may differ from it in the last bit
            slack = 1e-9 * abs(scores).max()
            assert scores.min() - slack <= low <= float(row[stat]) <= high
            assert high <= scores.max() + slack
        crossings = [direct_crossing(r.returns) for r in done(runs, variant)]
        assert int(row["not_reached"]) == sum(c is None for c in crossings)
        times = sorted(np.inf if c is None else c for c in crossings)
        median = times[len(times) // 2] if len(times) % 2 else np.mean(times[1:3])
        assert float(row["median_first_episode"]) == median
        assert row["baseline"] == "uniform-cap1e4"  # the first uniform variant, not the first
        if variant == "uniform-cap1e4":
            assert row["p_improvement"] == ""
        else:
            wins = [(x > y) + 0.5 * (x == y) for x in scores for y in baseline]
            assert float(row["p_improvement"]) == pytest.approx(np.mean(wins))
            assert float(row["p_ci_low"]) <= float(row["p_improvement"]) <= float(row["p_ci_high"])


def test_markdown_says_what_was_counted(study):
    _, _, report = study
    text = (report / "table.md").read_text()
    assert "runs with status 'done' only (10 of 12 runs in the store; 1 failed, 1 running)" in text
    assert "Pendulum-v1: -400" in text
    assert "not reached by 1/3" in text  # the slow stratified seed
    assert "| Pendulum-v1 | uniform-cap1e4 | uniform | 4 |" in text
    assert "| baseline |" in text


def test_report_is_deterministic_and_replaces_the_old_one(study, tmp_path):
    folder, _, report = study
    before = {n: (report / n).read_bytes() for n in ("table.md", "table.csv", "curves.png")}
    (report / "stale.txt").write_text("from an older report")
    again = write_report(folder, n_boot=N_BOOT)
    assert again == report
    for name, content in before.items():
        assert (report / name).read_bytes() == content, name
    assert not (report / "stale.txt").exists()


def test_a_failing_report_leaves_the_previous_one(tmp_path, monkeypatch):
    folder, _ = two_variant_study(tmp_path / "s", episodes=12)
    report = write_report(folder, n_boot=50)
    table = (report / "table.md").read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(study_figures, "plot_final", broken)
    with pytest.raises(RuntimeError):
        write_report(folder, baseline="softmax-b1", n_boot=50)
    assert (report / "table.md").read_text() == table
    assert sorted(p.name for p in folder.iterdir()) == ["report", "results.sqlite"]


def test_include_unfinished_counts_every_run(tmp_path):
    folder, _ = two_variant_study(tmp_path / "s", episodes=12)
    table = read_table(write_report(folder, n_boot=50, include_unfinished=True))
    assert table["uniform-cap1e4"]["n_seeds"] == "5"
    assert table["softmax-b1"]["n_seeds"] == "4"


def test_single_run_folder_other_env_and_one_seed(tmp_path):
    walker = make_store(
        tmp_path / "walker",
        [SyntheticRun("BipedalWalker-v3", "", s, "uniform", "done",
                      learning_curve(s, 30, 12.0, start=-120.0), None) for s in (0, 1)],
    )  # fmt: skip
    row = read_table(write_report(walker, n_boot=50))["run"]
    assert row["threshold"] == "300.0" and row["n_seeds"] == "2"
    assert row["mean_ci_low"] != ""
    alone = make_store(
        tmp_path / "alone",
        [SyntheticRun("Pendulum-v1", "", 0, "uniform", "done", learning_curve(0, 5, 1.0), None)],
    )
    report = write_report(alone, solve_threshold=-1500.0, n_boot=50)
    assert read_table(report)["run"]["mean_ci_low"] == ""
    text = (report / "table.md").read_text()
    assert "(1 seed, no CI)" in text and "Pendulum-v1: -1500" in text
    assert not (report / "thresholds.png").exists()


def test_cli_report_with_options(study, capsys):
    folder, _, _ = study
    argv = ["report", str(folder), "--baseline", "softmax-b1", "--last", "20", "--window", "5"]
    rc, out, err = run_cli([*argv, "--threshold", "-600", "--bootstrap", str(N_BOOT)], capsys)
    assert rc == 0, err
    assert "P(> softmax-b1)" in out and "report written to" in out
    table = read_table(folder / "report")
    assert table["uniform-cap1e4"]["baseline"] == "softmax-b1"
    assert table["uniform-cap1e4"]["last_episodes"] == "20"
    assert table["uniform-cap1e4"]["threshold"] == "-600.0"
    write_report(folder, n_boot=N_BOOT)  # restore the module's report for other tests


def test_refuses_a_folder_without_a_store(tmp_path, capsys):
    rc, _, err = run_cli(["report", str(tmp_path)], capsys)
    assert_refused(rc, err, tmp_path / "report", "no results.sqlite")
    assert not (tmp_path / "results.sqlite").exists()
    rc, _, err = run_cli(["report", str(tmp_path / "missing")], capsys)
    assert_refused(rc, err, tmp_path / "missing", "not a folder")


def test_refuses_an_empty_store(tmp_path, capsys):
    ResultsStore(tmp_path / "results.sqlite").close()
    rc, _, err = run_cli(["report", str(tmp_path)], capsys)
    assert_refused(rc, err, tmp_path / "report", "holds no runs")


def test_refuses_a_store_of_unfinished_runs_only(tmp_path, capsys):
    make_store(
        tmp_path,
        [SyntheticRun("Pendulum-v1", "a", 0, "uniform", "failed", learning_curve(0, 5, 1.0), None)],
    )
    rc, _, err = run_cli(["report", str(tmp_path)], capsys)
    assert_refused(rc, err, tmp_path / "report", "none 'done'", "--include-unfinished")


def test_refuses_an_unknown_baseline_and_bad_options(study, tmp_path, capsys):
    folder, _ = two_variant_study(tmp_path / "s", episodes=5)
    rc, _, err = run_cli(["report", str(folder), "--baseline", "nope"], capsys)
    assert_refused(rc, err, folder / "report", "unknown baseline variant 'nope'", "softmax-b1")
    for option in (["--window", "0"], ["--threshold", "inf"], ["--bootstrap", "x"]):
        rc, _, err = run_cli(["report", str(folder), *option], capsys)
        assert_refused(rc, err, folder / "report", option[0])
    with pytest.raises(ConfigError):
        write_report(folder, baseline="nope")


def test_cli_help_states_the_defaults_write_report_uses(capsys):
    from ddpglab.report import study_report

    rc, out, _ = run_cli(["report", "--help"], capsys)
    assert rc == 0
    text = " ".join(out.split())
    for value in (study_report.LAST, study_report.WINDOW, study_report.N_BOOT):
        assert f"({value})" in text


def test_a_trained_run_gets_the_episode_diagnostics_figure(tmp_path, tiny_config, study):
    """Episode length, termination share and Q(s_0) against the discounted return, drawn
    only where the store recorded them (the synthetic study above did not)."""
    from ddpglab.run_folder import train

    folder = tmp_path / "run"
    train(tiny_config(**{"train.seeds": [0, 1], "train.episodes": 4}), out=folder)
    report = write_report(folder, n_boot=50, window=2)
    assert (report / "diagnostics.png").stat().st_size > 0
    _, _, synthetic = study
    assert not (synthetic / "diagnostics.png").exists()


def test_curves_by_env_step_read_each_seed_at_a_common_grid():
    """Between episode ends a seed's rolling mean is interpolated linearly; the grid runs
    from where every seed has a whole window to where the shortest seed ends."""
    from types import SimpleNamespace

    from ddpglab.report.study_figures import _on_a_step_grid, _on_grid

    a = SimpleNamespace(env_steps=np.array([10.0, 20.0, 30.0]), returns=np.array([1.0, 2, 3]))
    b = SimpleNamespace(env_steps=np.array([5.0, 25.0, 40.0]), returns=np.array([0.0, 10, 20]))
    runs, grid = _on_a_step_grid([a, b], window=1, points=3)
    assert runs == [a, b] and grid.tolist() == [10.0, 20.0, 30.0]
    curves = _on_grid([a, b], [a.returns, b.returns], 1, grid)
    np.testing.assert_allclose(curves, [[1.0, 2.0, 3.0], [2.5, 7.5, 40 / 3]])
    # With a window of 2 the first point is where both have two episodes: b's 25 steps.
    assert _on_a_step_grid([a, b], window=2, points=2)[1].tolist() == [25.0, 30.0]
    rolled = _on_grid([a, b], [a.returns, b.returns], 2, np.array([25.0, 30.0]))
    np.testing.assert_allclose(rolled, [[2.0, 2.5], [5.0, 5 + 10 * 5 / 15]])


def test_runs_too_short_for_a_window_are_left_off_the_step_grid():
    """A seed with fewer episodes than the window has no rolling mean to draw; a seed that
    ends before another's first whole window leaves no common stretch at all."""
    from types import SimpleNamespace

    from ddpglab.report.study_figures import _on_a_step_grid

    long = SimpleNamespace(env_steps=np.arange(100.0, 2100.0, 100.0))  # 20 episodes
    short = SimpleNamespace(env_steps=np.array([100.0, 200.0, 300.0]))  # 3 episodes
    runs, grid = _on_a_step_grid([long, short], window=10)
    assert runs == [long] and grid[0] == 1000.0 and grid[-1] == 2000.0
    early = SimpleNamespace(env_steps=np.arange(10.0, 130.0, 10.0))  # ends at 120 steps
    runs, grid = _on_a_step_grid([long, early], window=10)
    assert runs == [] and grid.size == 0  # long's first window is whole at 1000 steps


def test_someone_elses_sqlite_file_is_refused_and_left_as_it_was(tmp_path, capsys):
    import sqlite3
    from contextlib import closing

    folder = tmp_path / "not-ours"
    folder.mkdir()
    with closing(sqlite3.connect(folder / "results.sqlite")) as conn, conn:
        conn.execute("CREATE TABLE mine (x INTEGER)")
    before = (folder / "results.sqlite").read_bytes()
    for argv in (["report", str(folder)], ["export", str(folder), "--format", "csv"]):
        rc, _, err = run_cli(argv, capsys)
        assert rc == 2 and "not a ddpglab results store" in err, err
    assert (folder / "results.sqlite").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["results.sqlite"]


def test_runs_shorter_than_the_score_window_are_named_in_the_notes(tmp_path):
    runs = [
        SyntheticRun("Pendulum-v1", "", 0, "uniform", "done", learning_curve(0, 60, 1.0), None),
        SyntheticRun("Pendulum-v1", "", 1, "uniform", "running", learning_curve(1, 9, 1.0), None),
    ]
    folder = make_store(tmp_path / "s", runs)
    text = (write_report(folder, n_boot=50, include_unfinished=True) / "table.md").read_text()
    assert "last 50 episodes; 1 counted run(s) have fewer" in text
    text = (write_report(folder, n_boot=50) / "table.md").read_text()
    assert "have fewer" not in text  # the running one is not counted


@pytest.mark.parametrize(
    ("env_id", "threshold"),
    [
        ("Pendulum-v1", -400.0),
        ("gymnasium.envs.classic_control:Pendulum-v1", -400.0),
        ("gymnasium.envs.box2d:LunarLanderContinuous-v3", 200.0),  # gymnasium's own
        ("no.such.module:Env-v0", None),
    ],
)
def test_the_threshold_of_an_env_written_with_its_module(env_id, threshold):
    from ddpglab.report.study_rows import solve_threshold_for

    assert solve_threshold_for(env_id, None) == threshold


@pytest.mark.parametrize("episodes", [60, 7])
def test_trains_closing_table_scores_a_run_as_the_report_does(tmp_path, capsys, episodes):
    """One score for one run: the mean of its last 50 episodes (all of them when fewer),
    named so in both places."""
    from ddpglab.report import study_report
    from ddpglab.report.console import print_summary
    from ddpglab.report.study_rows import LAST
    from ddpglab.summary import MemberSummary, TrainSummary

    returns = [float(i) for i in range(episodes)]
    member = MemberSummary(seed=0, episodes=episodes, env_steps=10 * episodes, returns=returns)
    print_summary(TrainSummary("Pendulum-v1", 1.0, 100.0, [member]), tmp_path)
    printed = " ".join(capsys.readouterr().out.split())
    assert LAST == 50
    assert f"mean of the last {LAST} episodes" in printed
    assert f" {np.mean(returns[-LAST:]):.1f} " in printed
    assert study_report.LAST == LAST  # the report's default score
