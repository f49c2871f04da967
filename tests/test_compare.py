"""``ddpglab report DIR1 DIR2 ... --out DIR``: several run and study folders in one table and
one set of curves, each a variant named by its folder or ``--label``; bad input refused."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from cli_support import assert_refused, run_cli
from report_support import SyntheticRun, learning_curve, make_store

N_BOOT = "200"


def single_run(folder: Path, kind: str, slope: float, seeds=(0, 1)) -> Path:
    """A ``train``-like folder: one plain run (variant '') per seed."""
    runs = [
        SyntheticRun("Pendulum-v1", "", s, kind, "done", learning_curve(s, 30, slope), None)
        for s in seeds
    ]
    return make_store(folder, runs)


def a_study(folder: Path) -> Path:
    runs = [
        SyntheticRun("Pendulum-v1", v, s, "uniform", "done", learning_curve(s + 9, 30, 8.0), None)
        for v in ("a", "b")
        for s in (0, 1)
    ]
    return make_store(folder, runs)


def table(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "table.csv", newline="") as f:
        return {row["variant"]: row for row in csv.DictReader(f)}


def test_two_runs_and_a_study_in_one_report(tmp_path, capsys):
    uniform = single_run(tmp_path / "runs" / "uniform", "uniform", 10.0)
    softmax = single_run(tmp_path / "runs" / "softmax", "softmax", 20.0)
    study = a_study(tmp_path / "runs" / "study")
    out = tmp_path / "compare"
    argv = ["report", str(uniform), str(softmax), str(study), "--out", str(out)]
    rc, stdout, err = run_cli([*argv, "--bootstrap", N_BOOT], capsys)
    assert rc == 0, err
    rows = table(out)
    assert list(rows) == ["uniform", "softmax", "study/a", "study/b"]
    assert rows["softmax"]["replay_kind"] == "softmax"
    assert rows["uniform"]["n_seeds"] == "2"
    # each run's score is its own folder's: the mean of its seeds' last 50 (all 30) returns
    expected = np.mean([learning_curve(s, 30, 20.0).mean() for s in (0, 1)])
    assert float(rows["softmax"]["mean"]) == pytest.approx(expected, abs=0.05)
    for name in ("curves.png", "curves_steps.png", "final.png", "table.md", "inputs.txt"):
        assert (out / name).stat().st_size > 0, name
    assert "| softmax |" in stdout
    assert not (uniform / "report").exists(), "the inputs are only read"

    # labels name the variants; a second comparison replaces the first whole
    rc, _, err = run_cli(
        [*argv, "--label", "U", "--label", "S", "--label", "T", "--bootstrap", N_BOOT], capsys
    )
    assert rc == 0, err
    assert list(table(out)) == ["U", "S", "T/a", "T/b"]
    assert "S\t" in (out / "inputs.txt").read_text()


def test_one_folder_without_out_writes_its_own_report_as_before(tmp_path, capsys):
    run = single_run(tmp_path / "run", "uniform", 10.0)
    rc, _, err = run_cli(["report", str(run), "--bootstrap", N_BOOT], capsys)
    assert rc == 0, err
    assert list(table(run / "report")) == ["run"]


@pytest.mark.parametrize(
    "extra, mentions",
    [
        (["--label", "x"], ["--label given 1 time(s) for 2 folders"]),
        (["--label", "x", "--label", "x"], ["two inputs have the label 'x'"]),
    ],
)
def test_refuses_labels_that_are_not_one_per_folder_and_distinct(tmp_path, capsys, extra, mentions):
    a = single_run(tmp_path / "a", "uniform", 1.0)
    b = single_run(tmp_path / "b", "uniform", 2.0)
    out = tmp_path / "out"
    rc, _, err = run_cli(["report", str(a), str(b), "--out", str(out), *extra], capsys)
    assert_refused(rc, err, out, *mentions)


def test_refuses_folders_of_one_name_without_labels(tmp_path, capsys):
    a = single_run(tmp_path / "x" / "run", "uniform", 1.0)
    b = single_run(tmp_path / "y" / "run", "uniform", 2.0)
    out = tmp_path / "out"
    rc, _, err = run_cli(["report", str(a), str(b), "--out", str(out)], capsys)
    assert_refused(rc, err, out, "two inputs have the label 'run'", "--label")


def test_refuses_a_folder_without_a_store(tmp_path, capsys):
    a = single_run(tmp_path / "a", "uniform", 1.0)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    rc, _, err = run_cli(["report", str(a), str(tmp_path / "empty"), "--out", str(out)], capsys)
    assert_refused(rc, err, out, "holds no results.sqlite")


def test_refuses_several_folders_without_out(tmp_path, capsys):
    a = single_run(tmp_path / "a", "uniform", 1.0)
    b = single_run(tmp_path / "b", "uniform", 2.0)
    rc, _, err = run_cli(["report", str(a), str(b)], capsys)
    assert_refused(rc, err, a / "report", "needs --out")


@pytest.mark.parametrize("where", ["input", "parent", "inside"])
def test_refuses_an_out_that_would_clobber_an_input_or_other_files(tmp_path, capsys, where):
    a = single_run(tmp_path / "runs" / "a", "uniform", 1.0)
    b = single_run(tmp_path / "runs" / "b", "uniform", 2.0)
    (a / "checkpoints").mkdir()
    (a / "checkpoints" / "seed0.pt").write_text("weights")
    out = {"input": a, "parent": tmp_path / "runs", "inside": a / "checkpoints"}[where]
    before = sorted(p.name for p in out.iterdir())
    rc, _, err = run_cli(["report", str(a), str(b), "--out", str(out)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "--out" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == before
