"""Replay diagnostics (issue 20): each member's stored count, E[age] and H(P) of its sampling
law at its episode ends, exact against closed forms and against laws computed by hand, and
kept in the store (a run's, a study's), rewound and deleted with the run, drawn by the report.
"""

from __future__ import annotations

import itertools
import sqlite3
from contextlib import closing
from functools import partial

import numpy as np
import pytest
from cli_support import FAST, assert_refused, run_cli
from law_support import add_transitions, stored_steps
from report_support import SyntheticRun, make_store, two_variant_study

from ddpglab.replay import make_buffer
from ddpglab.replay.diagnostics import ReplayDiagnostics, law_stats
from ddpglab.report import study_figures
from ddpglab.report.study_report import write_report
from ddpglab.state_files import load_state, save_state
from ddpglab.store import EpisodeRow, ReplayStatsRow, ResultsStore

CAPACITY = 150


def by_hand(weights: np.ndarray, ages: np.ndarray) -> tuple[float, float]:
    """E[age] and H(P) of P = weights / sum(weights), summed slot by slot."""
    law = weights / weights.sum()
    expected = sum(p * a for p, a in zip(law, ages, strict=True))
    entropy = -sum(p * np.log(p) for p in law if p > 0)
    return float(expected), float(entropy)


def ages_by_hand(buf, k: int) -> np.ndarray:
    """Age of each ring slot from the step each one stores (obs[0], see add_transitions)."""
    steps = stored_steps(buf)[k]
    return steps[buf.newest_slot()] - steps


# -- exact values ---------------------------------------------------------------------------


def test_every_row_of_a_uniform_run_is_ln_n_and_half_n_minus_one(tmp_path, capsys):
    # 30-step episodes into a 150-transition ring: rows before and after it wraps.
    out = tmp_path / "run"
    argv = ["train", "--episodes", "8", "--quiet", *FAST, "--seeds", "0,1"]
    argv += ["--set", f"replay.capacity={CAPACITY}", "--set", "env.max_episode_steps=30"]
    rc, _, err = run_cli([*argv, "--out", str(out)], capsys)
    assert rc == 0, err
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        rows = conn.execute("SELECT * FROM replay_stats ORDER BY run_id, env_steps").fetchall()
        episode_steps = conn.execute("SELECT run_id, env_steps FROM episodes").fetchall()
    assert sorted((run_id, steps) for run_id, steps, *_ in rows) == sorted(episode_steps)
    assert len(rows) == 16
    for _, env_steps, stored, volume, expected_age, entropy in rows:
        n = min(env_steps, CAPACITY)
        assert stored == n
        assert volume == 16  # batch size 16, one update per step
        assert expected_age == pytest.approx((n - 1) / 2, rel=1e-12)
        assert entropy == pytest.approx(np.log(n), rel=1e-12)
    assert {min(r[1], CAPACITY) for r in rows} == {30, 60, 90, 120, 150}  # wrapped at 150


@pytest.mark.parametrize(
    ("adds", "window", "combined"),
    [(100, None, False), (377, None, False), (330, 60, False), (377, None, True)],
    ids=["partly-filled", "after-wraparound", "window-across-the-end", "with-cer"],
)
def test_geometric_stats_match_the_law_summed_by_hand(adds, window, combined):
    p, batch = 0.03, 8
    buf = make_buffer("geometric", CAPACITY, 1, 1, members=2, seed=[1, 2], p=p, combined=combined)
    add_transitions(buf, adds)
    if window is not None:
        buf.set_window(window)
    stats = buf.replay_stats(batch)
    n = min(adds, window or CAPACITY)
    ages = np.arange(n)
    weights = (1 - p) ** ages
    if combined:  # CER: one place of the batch is the newest, the others geometric draws
        weights = (batch - 1) / batch * weights / weights.sum()
        weights[0] += 1 / batch
    expected, entropy = by_hand(weights, ages)
    for k in range(2):
        assert stats.stored[k] == n
        assert stats.expected_age[k] == pytest.approx(expected, rel=1e-9)
        assert stats.entropy[k] == pytest.approx(entropy, rel=1e-9)


@pytest.mark.parametrize(("adds", "window"), [(100, None), (377, None), (330, 60)])
def test_lap_stats_match_priorities_computed_by_hand(adds, window):
    alpha, floor = 0.4, 1.0
    buf = make_buffer("lap", CAPACITY, 1, 1, members=2, seed=[1, 2])
    rng = np.random.default_rng(5)
    add_transitions(buf, adds - 20)
    slots = np.arange(len(buf))
    td = rng.normal(0.0, 2.0, size=(2, slots.size))  # some below the floor, most not
    buf.update_priorities(np.tile(slots, (2, 1)), td)
    add_transitions(buf, 20, start=adds - 20)  # these enter at the largest priority seen
    if window is not None:
        buf.set_window(window)
    stats = buf.replay_stats(64)
    for k in range(2):
        priority = np.zeros(CAPACITY)
        priority[slots] = np.maximum(np.abs(td[k]), floor) ** alpha
        newest = (buf.pos - 1 - np.arange(20)) % CAPACITY
        priority[newest] = max(np.maximum(np.abs(td[k]), floor) ** alpha)
        ages = ages_by_hand(buf, k)
        inside = ages < (window or CAPACITY)
        inside &= np.arange(CAPACITY) < len(buf)
        expected, entropy = by_hand(priority[inside], ages[inside])
        assert stats.stored[k] == inside.sum()
        assert stats.expected_age[k] == pytest.approx(expected, rel=1e-9)
        assert stats.entropy[k] == pytest.approx(entropy, rel=1e-9)


@pytest.mark.parametrize("combined", [False, True])
def test_ere_stats_are_those_of_its_next_episodes_updates(combined):
    """At an episode end the next draw alone is uniform (k = 0); ERE's stats are the
    mixture over the K updates of an episode as long as the last one."""
    buf = make_buffer(
        "ere", CAPACITY, 1, 1, members=1, seed=0, eta0=0.99, c_min=10, combined=combined
    )
    add_transitions(buf, 377, episode_lengths=(29, 29))  # ends at step 377 - 29 * 13 = 0
    assert buf.episode_length[0] == 0 and buf.last_episode_length[0] == 29
    n, steps, batch = CAPACITY, 29, 16
    law = np.zeros(n)
    for k in range(steps):
        c = min(n, max(int(np.floor(n * 0.99 ** (1000 * k / steps))), 10))
        law[:c] += 1 / (steps * c)
    if combined:
        law = (batch - 1) / batch * law
        law[0] += 1 / batch
    expected, entropy = by_hand(law, np.arange(n))
    stats = buf.replay_stats(batch)
    assert stats.expected_age[0] == pytest.approx(expected, rel=1e-9)
    assert stats.entropy[0] == pytest.approx(entropy, rel=1e-9)


@pytest.mark.parametrize(
    "kind", ["uniform", "geometric", "ere", "stratified", "prioritized", "lap", "softmax"]
)
@pytest.mark.parametrize("window", [None, 40])
def test_closed_forms_agree_with_the_stated_law(kind, window):
    """Every strategy's own replay_stats (closed forms, one pass over leaves or logits, CER
    mixed in) gives what its stated law and the slot ages give."""
    params = {"c_min": 10} if kind == "ere" else {}
    for combined in (False, True):
        buf = make_buffer(kind, CAPACITY, 1, 1, members=2, seed=0, combined=combined, **params)
        add_transitions(buf, 203)  # member 1 is 5 steps into an episode
        if buf.needs_priorities:
            slots = np.tile(np.arange(CAPACITY), (2, 1))
            buf.update_priorities(slots, np.random.default_rng(3).normal(0, 2, slots.shape))
        if window is not None:
            buf.set_window(window)
        if kind == "ere":
            buf.last_episode_length[:] = 0  # no episode ended: the stats are the current law
        stats = buf.replay_stats(8)
        expected, entropy = law_stats(buf.probabilities(8), buf.slot_ages())
        np.testing.assert_allclose(stats.expected_age, expected, rtol=1e-10)
        np.testing.assert_allclose(stats.entropy, entropy, rtol=1e-10)


@pytest.mark.parametrize(
    "kind", ["uniform", "geometric", "ere", "stratified", "prioritized", "lap", "softmax"]
)
@pytest.mark.parametrize("combined", [False, True])
def test_the_stats_of_chosen_members_are_their_rows_of_everyone_s(kind, combined):
    """The trainer asks only for the members whose episodes ended: each one's row is
    bit for bit its row of all members' stats, in the order asked, in each strategy's own
    replay_stats and in the law-based one every strategy inherits."""
    params = {"c_min": 10} if kind == "ere" else {}
    buf = make_buffer(kind, CAPACITY, 1, 1, members=3, seed=0, combined=combined, **params)
    add_transitions(buf, 203)
    if buf.needs_priorities:
        slots = np.tile(np.arange(CAPACITY), (3, 1))
        buf.update_priorities(slots, np.random.default_rng(3).normal(0, 2, slots.shape))
    buf.set_window(np.array([40, 90, 150]))  # so that even uniform's laws differ
    for stats in (buf.replay_stats, partial(ReplayDiagnostics.replay_stats, buf)):
        everyone = stats(8)
        assert len(set(everyone.entropy.tolist())) == 3, "the members' laws must differ"
        for members in ([2, 0], [1], []):
            chosen = stats(8, members)
            for column, of_all in zip(chosen, everyone, strict=True):
                np.testing.assert_array_equal(column, of_all[members])


def test_each_recorded_row_is_its_own_member_s_when_episodes_end_apart(tmp_path, capsys):
    """LunarLander's seeds end episodes at different steps, so the rows stored at an env
    step are those of a subset of the members: each must be its own run's law (uniform over
    everything it stored)."""
    out = tmp_path / "run"
    argv = ["train", "--env", "LunarLanderContinuous-v3", "--episodes", "3", "--quiet"]
    rc, _, err = run_cli([*argv, *FAST, "--seeds", "1,2,3", "--out", str(out)], capsys)
    assert rc == 0, err
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        rows = conn.execute("SELECT run_id, env_steps, stored, expected_age FROM replay_stats")
        rows = rows.fetchall()
        episode_steps = conn.execute("SELECT run_id, env_steps FROM episodes").fetchall()
    assert sorted(r[:2] for r in rows) == sorted(episode_steps)
    assert len({steps for _, steps in episode_steps}) == 9, "episodes must end apart"
    for _, env_steps, stored, expected_age in rows:
        assert stored == env_steps
        assert expected_age == pytest.approx((env_steps - 1) / 2, rel=1e-12)


def test_stratified_ages_are_env_steps_across_its_fifos_and_survive_a_resume(tmp_path):
    rng = np.random.default_rng(1)
    buf = make_buffer("stratified", 30, 1, 1, members=3, seed=0)
    for t in range(400):  # FIFOs wrap many times; good and bad episodes interleave
        obs = np.full((3, 1), t, np.float32)
        zeros = np.zeros((3, 1), np.float32)
        buf.add(obs, zeros, rng.normal(size=3), obs, np.zeros(3, bool), rng.random(3) < 0.15)
        law = buf.probabilities(16)
        truth = t - buf.obs[..., 0].numpy().astype(np.int64)  # every slot, ring and FIFOs
        assert (buf.slot_ages()[law > 0] == truth[law > 0]).all(), t
        expected, entropy = law_stats(law, truth)  # the closed form from strata and records
        np.testing.assert_allclose(buf.replay_stats(16).expected_age, expected, rtol=1e-12)
        np.testing.assert_allclose(buf.replay_stats(16).entropy, entropy, rtol=1e-12)
    save_state(tmp_path / "state.npz", buf.state_dict())  # through a state file, as resumed
    again = make_buffer("stratified", 30, 1, 1, members=3, seed=0)
    again.load_state_dict(load_state(tmp_path / "state.npz"))
    np.testing.assert_array_equal(again.slot_ages(), buf.slot_ages())
    for resumed, original in zip(again.replay_stats(16), buf.replay_stats(16), strict=True):
        np.testing.assert_array_equal(resumed, original)


# -- the store ------------------------------------------------------------------------------


def replay_rows(path) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT run_id, env_steps FROM replay_stats").fetchall()


def test_rewind_forgets_later_rows_and_delete_removes_the_run(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        ids = [store.add_run("Pendulum-v1", seed, {}) for seed in (0, 1)]
        for run_id in ids:
            for episode in (1, 2, 3):
                steps = 200 * episode
                row = EpisodeRow(run_id, episode, -1.0, 200, steps, 0.1, *[None] * 4, None, None)
                stats = ReplayStatsRow(run_id, steps, steps, 64, (steps - 1) / 2, np.log(steps))
                store.add_episodes([row], [stats])
        store.rewind_run(ids[0], episodes=1, env_steps=200)
        store.delete_runs([ids[1]])
        frame = store.replay_stats_frame()
    assert replay_rows(path) == [(ids[0], 200)]
    assert list(frame["env_steps"]) == [200] and list(frame["seed"]) == [0]


def test_a_store_written_before_the_table_gains_it_on_open(tmp_path):
    path = tmp_path / "results.sqlite"
    ResultsStore(path).close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP TABLE replay_stats")
    with ResultsStore(path) as store:
        assert store.replay_stats_frame().empty


# -- a study and the report -----------------------------------------------------------------


def test_the_report_draws_the_replay_figures_only_from_stores_with_rows(tmp_path):
    folder, _ = two_variant_study(tmp_path / "study", episodes=30)
    report = write_report(folder, n_boot=200)
    assert not (report / "replay_stats.png").exists()  # an older store: no rows, no figures
    assert not (report / "recency_entropy.png").exists()
    with ResultsStore(folder / "results.sqlite") as store:
        for run in store.runs():
            ages = 500.0 * (1 + len(run["variant"]))  # one level per variant
            store.add_episodes(
                [],
                [
                    ReplayStatsRow(run["run_id"], 200 * e, 200 * e, 64, ages + e, 8.0 + e / 100)
                    for e in range(1, 31)
                ],
            )
    report = write_report(folder, n_boot=200)
    assert (report / "replay_stats.png").stat().st_size > 0
    assert (report / "recency_entropy.png").stat().st_size > 0


@pytest.fixture
def drawn_figures(monkeypatch):
    """The figures the report draws, kept open to be inspected, and closed afterwards."""
    figures = []
    monkeypatch.setattr(study_figures.plt, "close", figures.append)
    yield figures
    monkeypatch.undo()
    study_figures.plt.close("all")


def study_with_ages(folder, ages: dict[str, float]):
    """A two-seed study whose variants replay at the given expected ages (entropy 5)."""
    runs = [
        SyntheticRun("Pendulum-v1", variant, seed, "uniform", "done", np.full(10, -200.0), None)
        for variant in ages
        for seed in range(2)
    ]
    folder = make_store(folder, runs)
    with ResultsStore(folder / "results.sqlite") as store:
        for run in store.runs():
            age = ages[run["variant"]]
            rows = [ReplayStatsRow(run["run_id"], 200 * e, 200 * e, 64, age, 5.0) for e in (1, 2)]
            store.add_episodes([], rows)
    return folder


def test_recency_entropy_colours_variants_by_a_name_label(tmp_path, drawn_figures):
    folder = study_with_ages(
        tmp_path / "s", {"a-vol16": 100.0, "b-vol16": 100.0, "a-vol256": 100.0}
    )
    write_report(folder, n_boot=50, colour_by="vol")
    (figure,) = [f for f in drawn_figures if "recency" in f.get_suptitle()]
    assert [t.get_text() for t in figure.legends[0].texts] == ["vol16", "vol256"]
    colours = [line.get_color() for line in figure.axes[0].lines if line.get_marker() == "o"]
    assert colours[0] == colours[1] != colours[2]  # a-vol16, b-vol16 alike; a-vol256 not


def test_a_colour_label_no_variant_has_is_refused_and_nothing_written(tmp_path, capsys):
    folder, _ = two_variant_study(tmp_path / "study", episodes=30)
    for label in ("nope", ""):
        rc, _, err = run_cli(["report", str(folder), "--colour-by", label], capsys)
        assert_refused(rc, err, folder / "report", "--colour-by", "no variant's name")


@pytest.mark.parametrize(
    "ages", [(16_500.0, 17_500.0, 19_600.0), (300.0, 4_000.0, 60_000.0), (30.0, 5e5, 2e5)]
)
def test_recency_axis_labels_are_readable_whatever_span_the_ages_have(
    tmp_path, drawn_figures, ages
):
    """A log axis over less than half a decade labels every minor tick by default, and the
    labels ran into each other; over several decades it must still label some ticks."""
    folder = study_with_ages(tmp_path / "s", {f"v{i}": age for i, age in enumerate(ages)})
    write_report(folder, n_boot=50)
    (figure,) = [f for f in drawn_figures if "recency" in f.get_suptitle()]
    renderer = figure.canvas.get_renderer()
    axis = figure.axes[0].xaxis
    low, high = figure.axes[0].get_xlim()
    labels = [
        t.label1.get_window_extent(renderer)
        for t in axis.get_major_ticks() + axis.get_minor_ticks()
        if t.label1.get_visible() and t.label1.get_text() and low <= t.get_loc() <= high
    ]
    assert len(labels) >= 2
    labels.sort(key=lambda box: box.x0)
    assert all(a.x1 < b.x0 for a, b in itertools.pairwise(labels))
