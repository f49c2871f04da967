"""The median pruning rule: a trial's score at a report step against the completed trials'."""

import math

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from report_support import episode_rows

from ddpglab.tune.trial import ScoreReporter, TrialPruned, TrialTask, make_pruner, median_prune

PEERS = [-120.0, -130.0, -134.2, -140.0, -150.0]  # median -134.2


def test_pruned_below_the_median_at_the_step_whatever_it_scored_before():
    # The rule sees s_t only: an earlier report of -114.3 (above every peer) does not count.
    assert median_prune(2, -136.3, PEERS, prune_after=2, episodes=10)


def test_not_pruned_at_or_above_the_median():
    assert not median_prune(2, -130.0, PEERS, prune_after=2, episodes=10)
    assert not median_prune(2, -134.2, PEERS, prune_after=2, episodes=10)  # a tie survives


def test_even_number_of_peers_uses_the_mean_of_the_middle_two():
    peers = [-100.0, -110.0, -120.0, -130.0]  # median -115
    assert median_prune(3, -115.5, peers, prune_after=1)
    assert not median_prune(3, -114.5, peers, prune_after=1)


def test_not_pruned_with_too_few_peers_at_the_step():
    assert not median_prune(2, -1000.0, [-100.0, -110.0], prune_after=2, episodes=10)
    assert median_prune(2, -1000.0, [-100.0, -110.0, -120.0], prune_after=2, episodes=10)
    # NaN peers are not peers
    assert not median_prune(2, -1000.0, [-100.0, -110.0, math.nan], prune_after=2, episodes=10)
    assert not median_prune(2, -1000.0, [-100.0, -110.0], prune_after=2, min_peers=3)


def test_not_pruned_before_prune_after_nor_at_the_last_episode():
    assert not median_prune(1, -1000.0, PEERS, prune_after=2, episodes=10)
    assert not median_prune(10, -1000.0, PEERS, prune_after=2, episodes=10)
    assert median_prune(9, -1000.0, PEERS, prune_after=2, episodes=10)


def test_a_nan_score_is_below_every_median():
    assert median_prune(2, math.nan, PEERS, prune_after=2, episodes=10)
    assert not median_prune(2, math.nan, PEERS[:2], prune_after=2, episodes=10)


def completed(values: dict[int, float]) -> optuna.trial.FrozenTrial:
    return create_trial(
        state=TrialState.COMPLETE,
        value=values[max(values)],
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0.0, 1.0)},
        intermediate_values=values,
    )


def study_with_peers() -> optuna.Study:
    """Five completed peers and a pruned trial, the driver's pruner (the reporter holds the
    prune_after..episodes window)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=None, direction="maximize", pruner=make_pruner(True))
    for late in PEERS:  # step 1: -200 for all, so the trial below beats them all early
        study.add_trial(completed({1: -200.0, 2: late, 3: late, 4: late}))
    # a pruned trial far below at step 2 is not a peer: with it the median would be -137.1
    study.add_trial(
        create_trial(state=TrialState.PRUNED, intermediate_values={1: -200.0, 2: -500.0})
    )
    return study


def test_reporter_prunes_a_trial_that_collapses_after_a_good_start():
    task = TrialTask("", "", 0, {}, last=1, report_every=1, prune_after=2, prune=True, episodes=4)
    study = study_with_peers()
    trial = study.ask()
    reporter = ScoreReporter(task, trial, seeds=1)
    reporter.add_episodes(
        episode_rows([(0, 1, -114.3)])
    )  # best of all at episode 1, before prune_after
    with pytest.raises(TrialPruned, match="episode 2"):
        reporter.add_episodes(
            episode_rows([(0, 2, -136.3)])
        )  # below the median -134.2 at episode 2
    # intermediate values still reach Optuna (history plots use them)
    assert study.trials[-1].intermediate_values == {1: -114.3, 2: -136.3}


def test_reporter_keeps_a_trial_above_the_median_and_one_without_enough_peers():
    task = TrialTask("", "", 0, {}, last=1, report_every=1, prune_after=2, prune=True, episodes=4)
    study = study_with_peers()
    reporter = ScoreReporter(task, study.ask(), seeds=1)
    reporter.add_episodes(episode_rows([(0, 1, -114.3)]))
    reporter.add_episodes(episode_rows([(0, 2, -130.0)]))  # above the median: goes on
    lonely = optuna.create_study(direction="maximize", pruner=make_pruner(True))
    for late in PEERS[:2]:
        lonely.add_trial(completed({1: -200.0, 2: late}))
    reporter = ScoreReporter(task, lonely.ask(), seeds=1)
    reporter.add_episodes(episode_rows([(0, 1, -114.3)]))
    reporter.add_episodes(episode_rows([(0, 2, -1000.0)]))  # 2 peers < 3: no pruning yet
