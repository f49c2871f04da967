"""``curve.png`` of a ``train`` run: legend off the data, each seed's evaluations in its
curve's colour, a title naming env, algorithm and replay kind, integer episode ticks."""

from __future__ import annotations

import pytest
from matplotlib.colors import to_rgba
from report_support import SyntheticRun, learning_curve, make_store

from ddpglab.report import curves
from ddpglab.store import ResultsStore


@pytest.fixture
def drawn(monkeypatch):
    """The figures plot_learning_curves draws, kept instead of closed."""
    figures = []
    monkeypatch.setattr(curves.plt, "close", figures.append)
    return figures


@pytest.mark.parametrize("n_seeds", [3, 20])
def test_the_curve_keeps_its_legend_off_the_data_and_colours_evals_by_seed(
    tmp_path, drawn, n_seeds
):
    runs = [
        SyntheticRun("Pendulum-v1", "", s, "uniform", "done", learning_curve(s, 7, 5.0), None)
        for s in range(n_seeds)
    ]
    folder = make_store(tmp_path / "run", runs)
    with ResultsStore(folder / "results.sqlite") as store:
        for run in store.runs():
            store.add_eval(run["run_id"], 5, 1000, [float(run["seed"])])
        curves.plot_learning_curves(store, tmp_path / "curve.png", title="t")
    (fig,) = drawn
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend()
    assert legend is not None, "a legend with many seeds too"
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1
    seed_colours = [to_rgba(line.get_color()) for line in ax.get_lines()[:n_seeds]]
    assert len(set(seed_colours)) == n_seeds, "one colour per seed"
    dots = [tuple(c.get_facecolor()[0]) for c in ax.collections]
    assert dots == seed_colours, "each seed's evaluations in its curve's colour"
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_the_title_names_env_algorithm_replay_and_seeds(tiny_config):
    td3 = {"agent.twin_critics": True, "agent.target_noise": 0.2, "agent.policy_delay": 2}
    assert curves.run_title(tiny_config(**td3, **{"replay.kind": "prioritized"})) == (
        "Pendulum-v1: TD3, prioritized replay, seed 0"
    )
    plain = tiny_config(**{"train.seeds": [0, 1, 2]})
    assert curves.run_title(plain) == "Pendulum-v1: DDPG, uniform replay, 3 seeds"
    assert curves.algorithm_name(tiny_config(**{"agent.twin_critics": True}).agent) == ("DDPG+twin")
    partial = tiny_config(**{"agent.target_noise": 0.2, "agent.policy_delay": 2}).agent
    assert curves.algorithm_name(partial) == "DDPG+smoothing+delay"
