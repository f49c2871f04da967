"""``ddpglab export``: the 2023 csv layout and parquet read back equal the store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cli_support import assert_refused, run_cli
from report_support import SyntheticRun, learning_curve, make_store, two_variant_study

from ddpglab.report.export import PARQUET_TYPES, export


def store_episodes(folder) -> pd.DataFrame:
    import sqlite3

    with sqlite3.connect(folder / "results.sqlite") as conn:
        return pd.read_sql_query(
            "SELECT r.env_id, r.variant, r.seed, r.status, e.* FROM episodes e"
            " JOIN runs r USING (run_id) ORDER BY e.run_id, e.episode",
            conn,
        )


def test_csv_round_trip_equals_the_store(tmp_path, capsys):
    folder, _ = two_variant_study(tmp_path / "s", episodes=25)
    rc, out, err = run_cli(["export", str(folder), "--format", "csv"], capsys)
    assert rc == 0, err
    root = folder / "export" / "runs"
    assert str(root) in out
    episodes = store_episodes(folder)
    finished = episodes[episodes["status"] == "done"]
    expected_dirs = {
        f"Pendulum-v1/{variant}_{seed}"
        for variant, seed in finished[["variant", "seed"]].drop_duplicates().itertuples(index=False)
    }
    written = {str(p.parent.relative_to(root)) for p in root.rglob("loss.csv")}
    assert written == expected_dirs  # only 'done' runs
    for (variant, seed), rows in finished.groupby(["variant", "seed"]):
        path = root / "Pendulum-v1" / f"{variant}_{seed}" / "loss.csv"
        back = np.loadtxt(path, delimiter=",", ndmin=2)  # how the 2023 scripts read it
        assert back[:, 0].tolist() == rows["episode"].tolist()
        assert back[:, 1].tolist() == rows["return"].tolist()  # exact: floats written by repr
        if variant.startswith("stratified"):
            assert back.shape[1] == 3
            stored = rows["threshold"].to_numpy(dtype=float, na_value=np.nan)
            assert np.array_equal(back[:, 2], stored, equal_nan=True)
            assert path.read_text().splitlines()[0].endswith(", nan")  # no threshold yet
        else:
            assert back.shape[1] == 2


def test_csv_export_options(tmp_path, capsys):
    folder = make_store(
        tmp_path / "s",
        [
            SyntheticRun("ns/Env-v0", "", 0, "uniform", "done", learning_curve(0, 3, 1.0), None),
            SyntheticRun("ns/Env-v0", "", 1, "uniform", "failed", learning_curve(1, 2, 1.0), None),
        ],
    )
    to = tmp_path / "elsewhere"
    argv = ["export", str(folder), "--format", "csv", "--to", str(to), "--include-unfinished"]
    assert run_cli(argv, capsys)[0] == 0
    (to / "runs" / "old").mkdir()  # something in the earlier export
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    # a namespaced env id becomes one folder; a plain train run's variant is 'run'
    assert sorted(p.name for p in (to / "runs" / "ns_Env-v0").iterdir()) == ["run_0", "run_1"]
    assert not (to / "runs" / "old").exists()  # a fresh export replaces the earlier one
    assert not (folder / "export").exists()


@pytest.mark.parametrize("where", ["the study folder", "a folder holding studies"])
def test_a_csv_export_never_replaces_a_runs_folder_it_did_not_write(tmp_path, capsys, where):
    """A study's own runs/ (checkpoints, saved states) or a project's runs/ of studies is
    not an earlier export: refused, and every file stays."""
    folder, _ = two_variant_study(tmp_path / "project" / "runs" / "s", episodes=3)
    (folder / "runs" / "v").mkdir(parents=True)
    (folder / "runs" / "v" / "state-0.npz").write_bytes(b"a saved state")
    to = folder if where == "the study folder" else tmp_path / "project"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    rc, _, err = run_cli(["export", str(folder), "--format", "csv", "--to", str(to)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "not an earlier export" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_parquet_columns_have_fixed_types_whatever_the_store_holds(tmp_path, capsys):
    """Columns all NULL in this store (no terminated, q_start or threshold recorded) keep
    the types they have in any other export, so exports of several studies concatenate."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder, _ = two_variant_study(tmp_path / "s", episodes=3)
    target = tmp_path / "episodes.parquet"
    argv = ["export", str(folder), "--format", "parquet", "--to", str(target)]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    schema = pq.read_schema(target)
    assert schema.field("terminated").type == pa.int64()
    for column in ("q_start", "discounted_return", "threshold", "critic_loss"):
        assert schema.field(column).type == pa.float64(), column


def test_parquet_round_trip_equals_the_store(tmp_path, capsys):
    folder, _ = two_variant_study(tmp_path / "s", episodes=8)
    target = tmp_path / "out" / "episodes.parquet"
    rc, _, err = run_cli(
        ["export", str(folder), "--format", "parquet", "--to", str(target)], capsys
    )
    assert rc == 0, err
    back = pd.read_parquet(target)
    stored = store_episodes(folder)
    stored = stored[stored["status"] == "done"].reset_index(drop=True)
    stored = stored.astype({c: t for c, t in PARQUET_TYPES.items() if c in stored.columns})
    assert list(back.columns[:4]) == ["env_id", "variant", "seed", "status"]
    pd.testing.assert_frame_equal(back, stored, check_dtype=False)
    assert not list(target.parent.glob(".*"))  # no temporary file left
    default = export(folder, "parquet", include_unfinished=True)
    assert default == folder / "export" / "episodes.parquet"
    assert len(pd.read_parquet(default)) == len(store_episodes(folder))


def test_refusals(tmp_path, capsys):
    rc, _, err = run_cli(["export", str(tmp_path), "--format", "csv"], capsys)
    assert_refused(rc, err, tmp_path / "export", "no results.sqlite")
    assert not (tmp_path / "results.sqlite").exists()
    rc, _, err = run_cli(["export", str(tmp_path), "--format", "xlsx"], capsys)
    assert_refused(rc, err, tmp_path / "export", "--format")
    folder, _ = two_variant_study(tmp_path / "s", episodes=3)
    (tmp_path / "dir.parquet").mkdir()
    argv = ["export", str(folder), "--format", "parquet", "--to", str(tmp_path / "dir.parquet")]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2 and "is a folder" in err
    assert not list((tmp_path / "dir.parquet").iterdir())


def test_parquet_needs_pyarrow(tmp_path, capsys, monkeypatch):
    folder, _ = two_variant_study(tmp_path / "s", episodes=3)
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    rc, _, err = run_cli(["export", str(folder), "--format", "parquet"], capsys)
    assert_refused(rc, err, folder / "export", "ddpglab[parquet]")


@pytest.mark.parametrize("status", ["failed", "running"])
def test_refuses_a_store_without_finished_runs(tmp_path, capsys, status):
    folder = make_store(
        tmp_path / "s",
        [SyntheticRun("Pendulum-v1", "a", 0, "uniform", status, learning_curve(0, 3, 1.0), None)],
    )
    for fmt in ("csv", "parquet"):
        rc, _, err = run_cli(["export", str(folder), "--format", fmt], capsys)
        assert_refused(rc, err, folder / "export", "no run to export")


def with_replay_stats(folder, run_ids: list[int]) -> pd.DataFrame:
    """Add three replay_stats rows to each of ``run_ids``; returns them as the store has them."""
    from ddpglab.store import ReplayStatsRow, ResultsStore

    rows = [
        ReplayStatsRow(run_id, 200 * k, 150 * k, 16 * run_id, 0.1 * k + 1 / 3, np.log(150 * k))
        for run_id in run_ids
        for k in (1, 2, 3)
    ]
    with ResultsStore(folder / "results.sqlite") as store:
        store.add_episodes([], rows)
    return pd.DataFrame(rows, columns=ReplayStatsRow._fields)


def test_replay_stats_export_as_csv_beside_loss_csv_and_as_parquet(tmp_path, capsys):
    """Each run that recorded its sampling law gets replay_stats.csv (exact floats, a header);
    a run without any gets none; the parquet table equals the store's rows."""
    folder, _ = two_variant_study(tmp_path / "s", episodes=5)
    done = store_episodes(folder).query("status == 'done'")
    recorded, silent = (int(i) for i in done["run_id"].drop_duplicates()[:2])
    expected = with_replay_stats(folder, [recorded])
    rc, _, err = run_cli(["export", str(folder), "--format", "csv"], capsys)
    assert rc == 0, err
    written = list((folder / "export" / "runs").rglob("replay_stats.csv"))
    assert len(written) == 1
    back = pd.read_csv(written[0])  # pandas reads floats back exactly (round trip)
    assert list(back.columns) == ["env_steps", "stored", "volume", "expected_age", "entropy"]
    pd.testing.assert_frame_equal(back, expected.drop(columns="run_id"), check_exact=True)
    first = done[done["run_id"] == recorded].iloc[0]
    assert written[0].parent.name == f"{first['variant']}_{first['seed']}"

    rc, _, err = run_cli(
        ["export", str(folder), "--format", "parquet", "--table", "replay_stats"], capsys
    )
    assert rc == 0, err
    table = pd.read_parquet(folder / "export" / "replay_stats.parquet")
    assert list(table.columns[:5]) == ["env_id", "variant", "seed", "status", "run_id"]
    assert set(table["run_id"]) == {recorded} and silent not in set(table["run_id"])
    pd.testing.assert_frame_equal(
        table[list(expected.columns)], expected, check_dtype=False, check_exact=True
    )


def test_replay_stats_export_refusals(tmp_path, capsys):
    folder, _ = two_variant_study(tmp_path / "s", episodes=3)
    argv = ["export", str(folder), "--format", "parquet", "--table", "replay_stats"]
    rc, _, err = run_cli(argv, capsys)
    assert_refused(rc, err, folder / "export", "no replay_stats row")
    argv = ["export", str(folder), "--format", "csv", "--table", "replay_stats"]
    rc, _, err = run_cli(argv, capsys)
    assert_refused(rc, err, folder / "export", "--table is for parquet")
