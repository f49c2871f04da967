"""The report's three scores of a run (final, auc, drop) against hand computations on tiny
curves, P(improvement)'s direction for the drop, and ``ddpglab report --score``."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from cli_support import assert_refused, run_cli

from ddpglab.config import ConfigError
from ddpglab.report.scores import (
    SCORES,
    area_under_curve,
    largest_drop,
    mean_of_last,
    oriented,
    parse_score_list,
    run_score,
    select_scores,
)
from ddpglab.report.study_report import write_report
from ddpglab.report.study_rows import rng_for, summarise
from ddpglab.store import EpisodeRow, ResultsStore

N_BOOT = 200


# -- each score on a tiny curve ------------------------------------------------------------


def test_final_is_the_mean_of_the_last_episodes():
    assert mean_of_last([1.0, 2.0, 3.0, 4.0], last=2) == 3.5
    assert mean_of_last([1.0, 2.0, 3.0, 4.0], last=10) == 2.5  # fewer: all of them


def test_auc_weighs_each_return_by_the_env_steps_of_its_episode():
    # Episodes of 10, 30 and 10 steps: (1*10 + 3*30 + 2*10) / 50, not the episode mean 2.
    returns, ends = [1.0, 3.0, 2.0], [10.0, 40.0, 50.0]
    assert area_under_curve(returns, ends) == pytest.approx(120 / 50)
    # Nor the trapezoid between episode ends: ((1+3)/2*30 + (3+2)/2*10) / 40 = 2.625.
    assert area_under_curve(returns, ends) != pytest.approx(2.625)
    # A run that started at step 5 spans 45 steps, its first episode 5 of them.
    assert area_under_curve(returns, ends, start_step=5.0) == pytest.approx(115 / 45)
    # Equal lengths: the plain mean of the returns.
    assert area_under_curve([1.0, 3.0, 2.0], [200.0, 400.0, 600.0]) == pytest.approx(2.0)


def test_auc_of_a_run_starts_where_its_first_episode_began():
    run = SimpleNamespace(
        returns=np.array([1.0, 3.0, 2.0]),
        env_steps=np.array([15.0, 45.0, 55.0]),  # a first episode of 10 steps, from step 5
        lengths=np.array([10.0, 30.0, 10.0]),
    )
    got = run_score("auc", run, last=50, window=1, threshold=None)
    assert got == pytest.approx((1 * 10 + 3 * 30 + 2 * 10) / 50)


def test_drop_is_nan_for_a_curve_that_never_crosses():
    assert np.isnan(largest_drop([-900.0, -500.0, -450.0, -420.0], threshold=-400.0, window=1))
    # One lucky episode above the threshold is not a crossing: full windows of 3 only.
    lucky = [-300.0, -900.0, -900.0, -900.0, -900.0]
    assert np.isnan(largest_drop(lucky, threshold=-400.0, window=3))
    run = SimpleNamespace(returns=np.array([0.0, 100.0]))
    assert np.isnan(run_score("drop", run, last=50, window=1, threshold=None))  # no threshold


def test_drop_of_a_curve_that_crosses_collapses_and_recovers():
    # Window 2: full-window means m = [-5, 5, 10, -10, -30, -5, 20]; the first m > 5 is
    # the 10 (c = 2); after it the running peak stays 10 down to -30: a drop of 40, which
    # the recovery to 20 does not undo.
    returns = [-10.0, 0.0, 10.0, 10.0, -30.0, -30.0, 20.0, 20.0]
    assert largest_drop(returns, threshold=5.0, window=2) == pytest.approx(40.0)
    # Its final score (the last 2 episodes) sees none of it.
    assert mean_of_last(returns, last=2) == 20.0


def test_drop_counts_only_falls_after_the_crossing_and_takes_the_largest():
    # Window 1 (m = returns): it crosses at 20 and falls to -10: 30.
    assert largest_drop([5.0, 20.0, -10.0, 12.0, 8.0], threshold=10.0, window=1) == 30.0
    # A fall before the crossing (50 -> 0 below the threshold 60) does not count.
    assert largest_drop([50.0, 0.0, 70.0, 65.0], threshold=60.0, window=1) == 5.0
    # Two falls, 4 then 5 from a new peak: the largest.
    assert largest_drop([0.0, 15.0, 11.0, 30.0, 25.0], threshold=10.0, window=1) == 5.0
    # Never falling after the crossing: 0.
    assert largest_drop([0.0, 15.0, 16.0, 16.0], threshold=10.0, window=1) == 0.0


# -- direction, undefined seeds, selection -------------------------------------------------


def test_the_direction_is_stated_once_and_p_improvement_follows_it():
    assert [s.higher_is_better for s in SCORES.values()] == [True, True, False]
    np.testing.assert_array_equal(oriented("drop", np.array([1.0, 2.0])), [-1.0, -2.0])
    small, large = np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0, 30.0])

    def p(name: str, x: np.ndarray, y: np.ndarray) -> float:
        return summarise(name, x, y, lambda stat: rng_for("t", name, stat), N_BOOT).p_improve[0]

    # Smaller drops than the baseline's: an improvement; a smaller area: not one.
    assert p("drop", small, large) == 1.0 and p("drop", large, small) == 0.0
    assert p("auc", small, large) == 0.0 and p("final", large, small) == 1.0


def test_undefined_drops_are_left_out_and_counted():
    values = np.array([np.nan, 2.0, 4.0, np.nan])
    s = summarise("drop", values, np.array([np.nan, 6.0]), lambda st: rng_for("u", st), N_BOOT)
    assert s.n_scored == 2
    assert s.mean[0] == 3.0 and s.iqm[0] == 3.0
    assert s.p_improve[0] == 1.0
    assert np.isnan(s.p_improve[1])  # one baseline seed crossed: no spread, no CI
    none = summarise("drop", np.array([np.nan]), None, lambda st: rng_for("v", st), N_BOOT)
    assert none.n_scored == 0 and np.isnan(none.mean[0]) and none.p_improve is None


def test_score_selection_and_parsing():
    assert select_scores(None) == ("final", "auc", "drop")
    assert select_scores(["drop", "final", "drop"]) == ("final", "drop")  # SCORES' order
    assert parse_score_list(" auc, drop ") == ["auc", "drop"]
    with pytest.raises(ConfigError, match="unknown score 'area'; choose from final, auc, drop"):
        parse_score_list("final,area")
    with pytest.raises(ConfigError, match="no score given"):
        parse_score_list(",")


# -- in a report ----------------------------------------------------------------------------


def store_with(folder: Path, runs: list[tuple[str, int, list[tuple[float, int]]]]) -> Path:
    """A Pendulum store of done runs, each (variant, seed, [(return, length), ...])."""
    folder.mkdir(parents=True)
    with ResultsStore(folder / "results.sqlite") as store:
        for variant, seed, episodes in runs:
            run_id = store.add_run("Pendulum-v1", seed, {"replay": {"kind": "uniform"}}, variant)
            ends = np.cumsum([length for _, length in episodes])
            store.add_episodes(
                [
                    EpisodeRow(
                        run_id, i + 1, ret, length, int(end), 0.1, None, None, None, 0, None, None
                    )  # fmt: skip
                    for i, ((ret, length), end) in enumerate(zip(episodes, ends, strict=True))
                ]
            )
            store.finish_run(run_id, "done")
    return folder


COLLAPSE = [(-1000.0, 200), (-300.0, 200), (-1200.0, 200), (-200.0, 200)]  # drop 900
NEVER = [(-1000.0, 100), (-900.0, 300), (-800.0, 200), (-700.0, 200)]  # auc weighs lengths


def read_csv(report: Path) -> dict[str, dict[str, str]]:
    with open(report / "table.csv", newline="") as f:
        return {row["variant"]: row for row in csv.DictReader(f)}


def test_the_report_tables_hold_every_score(tmp_path):
    runs = [("base", 0, NEVER), ("base", 1, COLLAPSE), ("new", 0, COLLAPSE)]
    report = write_report(store_with(tmp_path / "s", runs), n_boot=N_BOOT, window=1, last=2)
    table = read_csv(report)
    base, new = table["base"], table["new"]
    never_auc = (-1000 * 100 - 900 * 300 - 800 * 200 - 700 * 200) / 800
    collapse_auc = np.mean([r for r, _ in COLLAPSE])
    assert float(base["auc_mean"]) == pytest.approx((never_auc + collapse_auc) / 2)
    assert base["drop_n_scored"] == "1" and float(base["drop_mean"]) == 900.0
    assert base["drop_mean_ci_low"] == ""  # one seed crossed: no CI
    assert new["drop_n_scored"] == "1" and new["drop_p_improvement"] == "0.5"  # a tie
    assert float(new["mean"]) == -700.0  # the final columns keep their names
    text = (report / "table.md").read_text()
    for score in SCORES.values():
        assert f"## {score.title}" in text
    assert "| Pendulum-v1 | base | uniform | 1 of 2 | 900.0 (1 seed, no CI) |" in text
    assert "P(< base) [95% CI]" in text and "P(> base) [95% CI]" in text


def test_cli_score_option_chooses_the_sections_and_columns(tmp_path, capsys):
    folder = store_with(tmp_path / "s", [("a", 0, COLLAPSE), ("a", 1, NEVER)])
    rc, out, err = run_cli(["report", str(folder), "--score", "auc", "--bootstrap", "50"], capsys)
    assert rc == 0, err
    assert "## Area under" in out and "## Final score" not in out and "## Largest" not in out
    header = (folder / "report" / "table.csv").read_text().splitlines()[0].split(",")
    assert "auc_mean" in header and "mean" not in header and "drop_mean" not in header
    argv = ["report", str(folder), "--score", "drop,final", "--score", "auc"]
    rc, out, err = run_cli([*argv, "--bootstrap", "50"], capsys)
    assert rc == 0, err
    assert out.index("## Final") < out.index("## Area") < out.index("## Largest")


@pytest.mark.parametrize("value", ["nope", "final,nope", ","])
def test_cli_refuses_an_unknown_score(tmp_path, capsys, value):
    folder = store_with(tmp_path / "s", [("a", 0, COLLAPSE)])
    rc, _, err = run_cli(["report", str(folder), "--score", value], capsys)
    assert_refused(rc, err, folder / "report", "--score")
    with pytest.raises(ConfigError, match="unknown score"):
        write_report(folder, scores=["nope"])
    assert not (folder / "report").exists()
