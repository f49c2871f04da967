"""``ddpglab tune``: search specs and priors, trials end to end, pruning, resume, refusals."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from cli_support import run_cli
from report_support import episode_rows
from tune_support import assert_one_line_refusal, write_spec

from ddpglab.config import ConfigError, load_config
from ddpglab.tune.search import (
    STORAGE,
    open_search,
    requeue_interrupted,
    storage_url,
)
from ddpglab.tune.spec import LogNormal, load_search
from ddpglab.tune.trial import ScoreReporter, TrialPruned, TrialTask, objective_value

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def finished_trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="tiny", storage=storage_url(out))
    return [t for t in study.trials if t.state.is_finished()]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished 3-trial search: the exit status, its folder and the spec's folder."""
    folder = tmp_path_factory.mktemp("tune")
    out = folder / "out"
    rc, _, _ = run_cli(["tune", str(write_spec(folder)), "--out", str(out), "--workers", "1"])
    return rc, out, folder


# -- the search end to end ---------------------------------------------------------------------


def test_a_tiny_search_writes_every_output_and_a_trainable_best_config(searched):
    rc, out, _ = searched
    assert rc == 0
    for name in ("optuna.sqlite3", "best.yaml", "trials.csv", "trials.md", "history.png"):
        assert (out / name).is_file(), name
    trials = finished_trials(out)
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    table = pd.read_csv(out / "trials.csv")
    assert list(table["trial"]) == [0, 1, 2]
    assert set(table.columns) >= {"state", "value", "replay.softmax.beta", "agent.actor_lr"}
    best = max(trials, key=lambda t: t.value)
    config = load_config(None, file=out / "best.yaml")
    params = best.user_attrs["config_params"]
    assert config.replay.softmax.beta == pytest.approx(params["replay.softmax.beta"])
    assert config.agent.actor_lr == pytest.approx(params["agent.actor_lr"])
    assert config.replay.capacity == params["replay.capacity"]
    assert config.train.seeds == [0, 1] and config.train.episodes == 2


def test_a_trial_scores_the_mean_of_its_seeds_last_k_returns(searched):
    _, out, _ = searched
    for trial in finished_trials(out):
        # report_every 1: the score after episode 2 is the final objective (last = 1)
        assert trial.intermediate_values[2] == pytest.approx(trial.value)
        assert -16.3 * 20 <= trial.value <= 0


def test_a_rerun_adds_trials_to_the_same_storage(searched, capsys):
    _, searched_out, folder = searched
    out = folder / "resumed"
    shutil.copytree(searched_out, out)
    before = {t.number: (t.params, t.value) for t in finished_trials(out)}
    argv = ["tune", str(folder / "search.yaml"), "--out", str(out), "--workers", "1"]
    rc, stdout, err = run_cli([*argv, "--trials", "4"], capsys)
    assert rc == 0, err
    after = finished_trials(out)
    assert len(after) == 4
    assert {t.number: (t.params, t.value) for t in after[:3]} == before
    assert "search tiny: 4 trials (" in stdout and "1 run now" in stdout
    assert "[4/4, " in stdout, "each trial's line says where the search stands"


def test_a_different_search_in_the_same_folder_is_refused(searched, capsys):
    _, out, folder = searched
    other = folder / "other"
    other.mkdir()
    argv = ["tune", str(write_spec(other, objective={"seeds": 3, "last": 1})), "--out", str(out)]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2 and "other settings" in err and len(err.strip().splitlines()) == 1


# -- bad specs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "mention"),
    [
        ({"agent.tau": {"prior": "loguniform", "low": -1e-3, "high": 0.1}}, "greater than 0"),
        ({"agent.tau": {"prior": "lognormal", "mu": 0, "sigma": -1}}, "greater than 0"),
        ({"agent.taux": {"prior": "uniform", "low": 0.1, "high": 0.2}}, "agent.taux"),
        ({"agent.tau": {"prior": "uniform", "low": 0.2, "high": 0.1}}, "must be below high"),
        ({"agent.tau": {"prior": "gaussian"}}, "prior"),
        ({"train.seeds": {"prior": "int", "low": 0, "high": 3}}, "set by the search itself"),
        ({"agent.tau": {"prior": "uniform", "low": 0.5, "high": 2.0}}, "agent.tau"),
    ],
)
def test_a_bad_search_space_is_one_line_and_status_2(tmp_path, capsys, space, mention):
    out = tmp_path / "out"
    rc, _, err = run_cli(
        ["tune", str(write_spec(tmp_path, space=space)), "--out", str(out)], capsys
    )
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and mention in err, err
    assert "Traceback" not in err and not out.exists()


def test_address_without_the_ray_backend_is_refused(tmp_path, capsys):
    argv = ["tune", str(write_spec(tmp_path)), "--out", str(tmp_path / "o"), "--address", "auto"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2 and "--backend ray" in err
    assert not (tmp_path / "o").exists()  # refused before the folder is made


# -- pieces ------------------------------------------------------------------------------------


def test_objective_is_the_mean_over_seeds_of_the_last_k_returns():
    assert objective_value([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]], last=2) == (2.5 + 25.0) / 2
    assert objective_value([[4.0]], last=5) == 4.0  # fewer than k episodes: all of them


class FakeTrial:
    def __init__(self, prune_from: int):
        self.reports: list[tuple[float, int]] = []
        self.prune_from = prune_from

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return self.reports[-1][1] >= self.prune_from


def test_scores_are_reported_every_n_episodes_and_pruning_waits_for_prune_after():
    task = TrialTask("", "", 0, {}, last=2, report_every=2, prune_after=4, prune=True, episodes=6)
    trial = FakeTrial(prune_from=2)  # the pruner would stop it at once; prune_after holds it
    reporter = ScoreReporter(task, trial, seeds=2)
    reporter.add_episodes(episode_rows([(0, 1, -10.0), (1, 1, -20.0)]))
    assert trial.reports == []
    reporter.add_episodes(episode_rows([(0, 2, -6.0), (1, 2, -8.0)]))  # both seeds at episode 2
    assert trial.reports == [((-8.0 + -14.0) / 2, 2)]
    reporter.add_episodes(episode_rows([(0, 3, -2.0)]))
    reporter.add_episodes(episode_rows([(1, 3, -2.0), (0, 4, 0.0)]))
    with pytest.raises(TrialPruned):
        reporter.add_episodes(episode_rows([(1, 4, -4.0)]))
    assert trial.reports[-1] == ((-1.0 + -3.0) / 2, 4)


def test_a_trial_that_spent_its_budget_is_never_pruned():
    task = TrialTask("", "", 0, {}, last=1, report_every=1, prune_after=1, prune=True, episodes=2)
    trial = FakeTrial(prune_from=2)  # the pruner would stop it at its last score
    reporter = ScoreReporter(task, trial, seeds=1)
    reporter.add_episodes(episode_rows([(0, 1, -3.0)]))
    reporter.add_episodes(episode_rows([(0, 2, -1.0)]))  # no TrialPruned: the trial is complete
    assert trial.reports == [(-3.0, 1), (-1.0, 2)]


def test_lognormal_prior_draws_exp_of_a_normal():
    prior = LogNormal(prior="lognormal", mu=math.log(0.5), sigma=0.8)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    draws = [prior.suggest(study.ask(), "beta") for _ in range(4000)]
    logs = np.log(draws)
    assert abs(logs.mean() - math.log(0.5)) < 0.05
    assert abs(logs.std() - 0.8) < 0.05  # the 3.09-sigma truncation shrinks it by < 1 %
    assert np.all(np.abs(logs - math.log(0.5)) <= 3.1 * 0.8)


def test_trials_left_running_by_a_stop_are_failed_and_queued_again(tmp_path):
    search = load_search(write_spec(tmp_path))
    study = open_search(search, tmp_path / "out")
    running = study.ask()
    beta = search.spec.space["replay.softmax.beta"].suggest(running, "replay.softmax.beta")
    assert requeue_interrupted(study) == 1
    first = study.trials[0]
    assert first.state.name == "FAIL" and first.user_attrs["interrupted"]
    again = study.ask()
    assert search.spec.space["replay.softmax.beta"].suggest(again, "replay.softmax.beta") == beta
    assert (tmp_path / "out" / STORAGE).is_file()


def test_the_shipped_softmax_beta_search_follows_the_2023_plan():
    search = load_search(STUDIES / "tune-softmax-beta.yaml")
    space = search.spec.space
    assert space["replay.softmax.beta"].prior == "lognormal"
    assert {"agent.actor_lr", "agent.critic_lr", "agent.tau"} <= set(space)
    assert search.spec.sampler == "genetic" and search.spec.pruner == "none"
    assert search.config({}).replay.kind == "softmax"
    assert search.config({}).env.id == "Pendulum-v1"


def test_a_config_error_in_load_search_names_the_search_base(tmp_path):
    bad = write_spec(tmp_path, base={"preset": "pendulum", "set": {"agent.nope": 1}})
    with pytest.raises(ConfigError, match="search base"):
        load_search(bad)


@pytest.mark.slow
def test_the_ray_backend_scores_trials_as_the_local_one_does(searched, tmp_path, capsys):
    """Same sampler seed, one trial at a time: the same parameters and the same values."""
    _, local_out, folder = searched
    out = tmp_path / "ray"
    argv = ["tune", str(folder / "search.yaml"), "--out", str(out), "--workers", "1"]
    rc, stdout, err = run_cli([*argv, "--backend", "ray", "--trials", "2"], capsys)
    assert rc == 0, err
    local = {t.number: (t.params, t.value, t.state) for t in finished_trials(local_out)[:2]}
    assert {t.number: (t.params, t.value, t.state) for t in finished_trials(out)} == local


def test_the_genetic_sampler_with_median_pruning_is_refused(tmp_path):
    """NSGA-II breeds from complete trials only; with most trials pruned it would never
    leave its first, random generation."""
    spec = write_spec(tmp_path, sampler="genetic", pruner="median")
    with pytest.raises(ConfigError, match="complete trials"):
        load_search(spec)
    assert load_search(write_spec(tmp_path, sampler="tpe", pruner="median")).spec.pruner == "median"


@pytest.mark.slow
def test_a_resumed_search_draws_new_parameters(tmp_path, capsys):
    """A rerun for more trials continues the sampler past the trials it holds, instead of
    restarting it on the spec's seed and drawing the first trials' parameters again."""
    out = tmp_path / "out"
    argv = ["tune", str(write_spec(tmp_path, sampler="random")), "--out", str(out)]
    argv += ["--workers", "1"]
    assert run_cli([*argv, "--trials", "2"], capsys)[0] == 0
    assert run_cli([*argv, "--trials", "4"], capsys)[0] == 0
    params = [t.params for t in finished_trials(out)]
    assert len(params) == 4
    assert params[2] not in params[:2] and params[3] not in params[:2]


@pytest.mark.parametrize(
    ("space", "refused"),
    [
        ({"agent.batch_size": {"prior": "uniform", "low": 16, "high": 256}}, "batch_size"),
        ({"agent.tau": {"prior": "lognormal", "mu": -1.0, "sigma": 1.5}}, "tau"),
    ],
    ids=["float-draws-for-an-integer-key", "lognormal-tail-past-a-bound"],
)
def test_a_space_whose_draws_the_config_refuses_is_refused_up_front(tmp_path, space, refused):
    """Not only the ends: a uniform range on an integer key draws fractions, and a
    lognormal's upper tail (exp(mu + 3.09 sigma) = 37 for tau) passes tau <= 1."""
    with pytest.raises(ConfigError, match=refused):
        load_search(write_spec(tmp_path, space=space))


def test_prune_after_longer_than_the_base_budget_is_refused(tmp_path):
    """The trial budget comes from the base preset here (the spec sets no episodes)."""
    spec = write_spec(tmp_path, episodes=None, pruner="median", sampler="tpe")
    spec.write_text(spec.read_text().replace("episodes: null\n", "") + "prune_after: 100000\n")
    with pytest.raises(ConfigError, match=r"prune_after \(100000\) is longer than a trial"):
        load_search(spec)


def test_best_yaml_keeps_the_base_settings_a_normal_run_needs(searched):
    """The trials save no state and evaluate or checkpoint only at the end (state_every 0,
    and the spec's set); the winner, trained for real, must save state to resume from."""
    _, out, _ = searched
    best = load_config(None, file=out / "best.yaml").train
    preset = load_config("pendulum").train
    assert best.state_every == preset.state_every > 0
    assert best.eval_every == preset.eval_every > 0
    assert best.checkpoint_every == preset.checkpoint_every > 0
    assert best.eval_episodes == preset.eval_episodes


def test_the_summary_and_trials_md_count_an_interrupted_trial_alike(tmp_path, capsys):
    """A trial cut short by a stop is run again: it is neither a failure in the summary
    nor in trials.md/csv, and both say it was interrupted."""
    spec = write_spec(tmp_path, trials=1, episodes=1)
    out = tmp_path / "out"
    search = load_search(spec)
    study = open_search(search, out)
    running = study.ask()
    for key, prior in search.spec.space.items():
        prior.suggest(running, key)
    argv = ["tune", str(spec), "--out", str(out), "--workers", "1", "--threads", "1"]
    rc, stdout, err = run_cli(argv, capsys)
    assert rc == 0, err
    states = list(pd.read_csv(out / "trials.csv")["state"])
    assert states == ["interrupted", "complete"]
    assert "| interrupted |" in (out / "trials.md").read_text()
    assert "0 failed" in stdout and "1 interrupted" in stdout, stdout


def test_an_objective_window_longer_than_a_trial_is_refused_before_any_trial(tmp_path, capsys):
    spec = write_spec(tmp_path, objective={"seeds": 2, "last": 20, "report_every": 1})
    out = tmp_path / "out"
    rc, stdout, err = run_cli(["tune", str(spec), "--out", str(out), "--episodes", "1"], capsys)
    assert_one_line_refusal(rc, err, "objective.last (20)", "1 episode")
    assert stdout == "" and not out.exists()


def test_an_objective_seed_count_in_words_says_a_count_is_allowed(tmp_path, capsys):
    spec = write_spec(tmp_path, objective={"seeds": "two", "last": 1})
    rc, _, err = run_cli(["tune", str(spec), "--out", str(tmp_path / "out")], capsys)
    assert_one_line_refusal(rc, err, "objective.seeds: expected a count", "or a list", "'two'")
