"""``ddpglab report --contrast A:B``: the difference of means and P(A better) between two
variants (or matched pairs of them), against hand computations, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import assert_refused, run_cli
from report_support import SyntheticRun, make_store

from ddpglab.config import ConfigError
from ddpglab.report.contrasts import (
    Contrast,
    contrast_rows,
    contrasts_markdown,
    matched_variants,
    pair_statistics,
    parse_contrast,
)
from ddpglab.report.name_parts import name_part, with_part_replaced
from ddpglab.report.study_data import load_study_runs

N_BOOT = 400


def flat(value: float, episodes: int = 60) -> np.ndarray:
    return np.full(episodes, value)


def store(folder, finals: dict[str, list[float]]):
    """Pendulum-v1 runs with constant returns: variant -> one final score per seed."""
    runs = [
        SyntheticRun("Pendulum-v1", variant, seed, "uniform", "done", flat(value), None)
        for variant, values in finals.items()
        for seed, value in enumerate(values)
    ]
    return make_store(folder, runs)


def test_pair_statistics_average_the_pairs_by_hand():
    scores = {
        "a1": np.array([1.0, 3.0]),
        "a2": np.array([10.0, 10.0]),
        "b1": np.array([0.0, 2.0]),
        "b2": np.array([4.0]),
    }
    d, p = pair_statistics(scores, ["a1", "a2"], ["b1", "b2"], "final")
    assert d == pytest.approx(((2.0 - 1.0) + (10.0 - 4.0)) / 2)
    # a1 against b1: 1 > 0, 1 < 2, 3 > 0, 3 > 2 -> 3/4; a2 against b2: 1
    assert p == pytest.approx((3 / 4 + 1) / 2)
    drops = {"steady": np.array([50.0]), "collapse": np.array([900.0])}
    d, p = pair_statistics(drops, ["steady"], ["collapse"], "drop")
    assert (d, p) == (-850.0, 1.0)  # the drop itself; a smaller drop is the better


def test_a_variant_on_one_side_of_several_pairs_counts_its_seeds_once(tmp_path):
    folder = store(tmp_path / "s", {"a": [-1.0, -2.0], "b": [-3.0, -4.0], "u": [-5.0, -6.0]})
    kwargs = {"threshold": None, "last": 10, "window": 10, "n_boot": N_BOOT}
    study = load_study_runs(folder)
    (row,) = contrast_rows(study, [parse_contrast("a,b:u,u")], ["final"], **kwargs)
    assert row.seeds == (4, 2) and row.pairs == (2,)
    assert "| Pendulum-v1 | a, b | u x2 | final | 4 / 2 |" in contrasts_markdown([row], 10, 10, 1)


def test_a_variant_is_resampled_once_per_replicate_wherever_it_appears(tmp_path):
    """The same contrast twice as an interaction is 0 in every replicate: each variant's
    resample is shared by every pair it appears in."""
    folder = store(tmp_path / "s", {"a": [-100.0, -120.0, -140.0], "b": [-130.0, -150.0, -90.0]})
    study = load_study_runs(folder)
    kwargs = {"threshold": None, "last": 10, "window": 10, "n_boot": N_BOOT}
    same = (parse_contrast("a:b"), parse_contrast("a:b"))
    (row,) = contrast_rows(study, [same], ["final"], **kwargs)
    assert row.difference == (0.0, 0.0, 0.0) and row.p_better == (0.0, 0.0, 0.0)


def test_an_interaction_is_the_first_contrast_minus_the_second(tmp_path):
    finals = {"a": [-100.0, -110.0], "b": [-130.0, -140.0]}  # a gains 30, P = 1
    finals |= {"c": [-100.0, -120.0], "d": [-110.0, -130.0]}  # c gains 10, P = 3/4
    study = load_study_runs(store(tmp_path / "s", finals))
    kwargs = {"threshold": None, "last": 10, "window": 10, "n_boot": N_BOOT}
    interaction = (parse_contrast("a:b"), parse_contrast("c:d"))
    (row,) = contrast_rows(study, [interaction], ["final"], **kwargs)
    assert row.difference[0] == pytest.approx(30.0 - 10.0)
    assert row.p_better[0] == pytest.approx(1.0 - 3 / 4)
    assert row.seeds == (2, 2, 2, 2) and row.pairs == (1, 1)
    assert row.difference[1] <= row.difference[0] <= row.difference[2]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("a:b", Contrast(("a",), ("b",))),
        ("a1, a2:b1,b2", Contrast(("a1", "a2"), ("b1", "b2"))),
    ],
)
def test_a_contrast_is_a_colon_between_equal_lists(text, parsed):
    assert parse_contrast(text) == parsed


@pytest.mark.parametrize("text", ["a", "a:", ":b", "a,b:c", "a:b:c"])
def test_a_malformed_contrast_is_refused(text):
    with pytest.raises(ConfigError, match="expected A:B"):
        parse_contrast(text)


def test_contrast_rows_by_hand(tmp_path):
    folder = store(
        tmp_path / "s",
        {"big": [-100.0, -120.0, -140.0], "small": [-130.0, -150.0], "other": [-200.0] * 2},
    )
    study = load_study_runs(folder)
    kwargs = {"threshold": None, "last": 10, "window": 10, "n_boot": N_BOOT}
    (row,) = contrast_rows(study, [parse_contrast("big:small")], ["final"], **kwargs)
    assert row.seeds == (3, 2)
    assert row.difference[0] == pytest.approx(-120.0 - -140.0)
    # big's seeds beat small's in 5 of the 6 pairs (-140 < -130 is the one loss)
    assert row.p_better[0] == pytest.approx(5 / 6)
    assert row.p_better[1] <= row.p_better[0] <= row.p_better[2]
    pooled = parse_contrast("big,small:other,other")
    (row,) = contrast_rows(study, [pooled], ["final"], **kwargs)
    assert row.difference[0] == pytest.approx(((-120.0 + 200.0) + (-140.0 + 200.0)) / 2)
    assert row.p_better == (1.0, 1.0, 1.0)


def test_a_better_drop_is_a_smaller_one(tmp_path):
    collapse = np.array([-1000.0, -300.0, -1200.0, -200.0])  # crosses -400, then drops 900
    steady = np.array([-1000.0, -300.0, -350.0, -200.0])  # drops 50
    runs = [
        SyntheticRun("Pendulum-v1", name, seed, "uniform", "done", curve, None)
        for name, curve in (("steady", steady), ("collapse", collapse))
        for seed in range(2)
    ]
    study = load_study_runs(make_store(tmp_path / "s", runs))
    kwargs = {"threshold": None, "last": 2, "window": 1, "n_boot": N_BOOT}
    (row,) = contrast_rows(study, [parse_contrast("steady:collapse")], ["drop"], **kwargs)
    assert row.difference[0] == pytest.approx(50.0 - 900.0)  # the drops themselves
    assert row.p_better[0] == 1.0  # steady's drop is smaller in every pair


def test_cli_writes_contrasts_md_and_prints_it(tmp_path, capsys):
    folder = store(tmp_path / "s", {"big": [-100.0, -120.0], "small": [-130.0, -150.0]})
    argv = ["report", str(folder), "--contrast", "big:small", "--bootstrap", "100"]
    rc, out, err = run_cli([*argv, "--score", "final"], capsys)
    assert rc == 0, err
    line = "| Pendulum-v1 | big | small | final | 2 / 2 | 30.0 [10.0, 50.0] | 1.00 [1.00, 1.00] |"
    assert line in (folder / "report" / "contrasts.md").read_text()
    assert line in out
    rc, _, err = run_cli(["report", str(folder), "--bootstrap", "100"], capsys)
    assert rc == 0 and not (folder / "report" / "contrasts.md").exists()


@pytest.mark.parametrize(
    ("contrast", "mention"), [("big:nope", "no variant 'nope'"), ("big", "expected A:B")]
)
def test_cli_refuses_a_bad_contrast_and_writes_nothing(tmp_path, capsys, contrast, mention):
    folder = store(tmp_path / "s", {"big": [-100.0, -120.0], "small": [-130.0, -150.0]})
    rc, _, err = run_cli(["report", str(folder), "--contrast", contrast], capsys)
    assert_refused(rc, err, folder / "report", "--contrast", mention)


@pytest.mark.parametrize(
    ("variant", "label", "part"),
    [
        ("lap-vol16", "vol", "vol16"),
        ("stratified-cap1e4-thr-0.5-good0.5", "thr", "thr-0.5"),
        ("stratified-cap1e4-thr-0.5-good0.5", "cap", "cap1e4"),
        ("uniform+pal-vol256", "vol", "vol256"),
        ("uniform", "vol", "(no vol)"),
    ],
)
def test_a_name_part_runs_to_the_next_label(variant, label, part):
    assert name_part(variant, label) == part


def test_a_part_is_replaced_only_where_it_is_a_whole_fragment():
    replace = with_part_replaced
    assert replace("stratified-cap1e4-thr-0.5-good0.5", "thr-0.5", "thr+0.5") == (
        "stratified-cap1e4-thr+0.5-good0.5"
    )
    assert replace("capx-cap1e6", "cap1e6", "cap1e4") == "capx-cap1e4"
    assert replace("uniform-cap1e6", "cap1e", "cap1e4") is None  # not a whole fragment


def test_a_contrast_of_name_parts_pairs_the_variants_that_differ_in_them():
    known = ["u-cap1e4", "u-cap1e6", "s-cap1e4-thr-0.5", "s-cap1e6-thr-0.5", "x-cap1e6"]
    assert matched_variants(parse_contrast("cap1e6:cap1e4"), known) == (
        ["u-cap1e6", "s-cap1e6-thr-0.5"],
        ["u-cap1e4", "s-cap1e4-thr-0.5"],
    )  # x-cap1e6 has no partner
    assert matched_variants(parse_contrast("u-cap1e6:u-cap1e4"), known) == (
        ["u-cap1e6"],
        ["u-cap1e4"],
    )
    with pytest.raises(ConfigError, match="no variant has the part 'cap1e5'"):
        matched_variants(parse_contrast("cap1e5:cap1e4"), known)
    with pytest.raises(ConfigError, match="no variant 'nope'"):
        matched_variants(parse_contrast("u-cap1e6:nope"), known)


def test_cli_contrast_of_name_parts_averages_the_pairs(tmp_path, capsys):
    finals = {"u-big": [-100.0, -110.0], "u-small": [-150.0, -160.0]}
    finals |= {"s-big": [-200.0, -210.0], "s-small": [-210.0, -220.0]}
    folder = store(tmp_path / "s", finals)
    argv = ["report", str(folder), "--contrast", "big:small", "--score", "final"]
    rc, out, err = run_cli([*argv, "--bootstrap", "100"], capsys)
    assert rc == 0, err
    row = next(line for line in out.splitlines() if line.startswith("| Pendulum-v1 | big"))
    assert row.startswith("| Pendulum-v1 | big (2 variants) | small (2 variants) | final | 4 / 4 |")
    assert "| 30.0 [" in row  # ((-105 + 155) + (-205 + 215)) / 2


def test_cli_interaction_writes_its_own_table(tmp_path, capsys):
    finals = {"a": [-100.0, -110.0], "b": [-130.0, -140.0]}
    finals |= {"c": [-100.0, -120.0], "d": [-110.0, -130.0]}
    folder = store(tmp_path / "s", finals)
    argv = ["report", str(folder), "--interaction", "a:b", "c:d", "--score", "final"]
    rc, out, err = run_cli([*argv, "--bootstrap", "100"], capsys)
    assert rc == 0, err
    text = (folder / "report" / "contrasts.md").read_text()
    assert "## Interactions" in text and "## Interactions" in out
    assert "| Pendulum-v1 | a:b | c:d | final | 2 / 2 / 2 / 2 | 20.0 [" in text
    rc, _, err = run_cli(["report", str(folder), "--interaction", "a:b", "c:nope"], capsys)
    assert_refused(rc, err, tmp_path / "unused", "--interaction", "no variant 'nope'")
    assert (folder / "report" / "contrasts.md").read_text() == text  # the report kept whole


def test_cli_variants_reports_those_variants_only(tmp_path, capsys):
    folder = store(tmp_path / "s", {"a": [-100.0, -110.0], "b": [-130.0, -140.0], "c": [-1.0]})
    argv = ["report", str(folder), "--variants", "c,a", "--bootstrap", "50", "--score", "final"]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 0, err
    table = (folder / "report" / "table.csv").read_text()
    assert [line.split(",")[1] for line in table.splitlines()[1:]] == ["a", "c"]
    assert "(3 of 3 runs of the variants chosen (--variants) in the store)" in out  # not 5
    rc, _, err = run_cli(["report", str(folder), "--variants", "a,nope"], capsys)
    assert_refused(rc, err, tmp_path / "unused", "--variants", "no variant 'nope'")
    assert (folder / "report" / "table.csv").read_text() == table  # the report kept whole


def test_name_part_contrasts_pair_within_each_env(tmp_path):
    runs = [
        SyntheticRun(env, f"{task}-{vol}", seed, "uniform", "done", flat(value + seed), None)
        for env, task in (("Pendulum-v1", "pendulum"), ("MountainCarContinuous-v0", "car"))
        for vol, value in (("high", -100.0), ("low", -150.0))
        for seed in range(2)
    ]
    study = load_study_runs(make_store(tmp_path / "s", runs))
    kwargs = {"threshold": None, "last": 10, "window": 10, "n_boot": N_BOOT}
    rows = contrast_rows(study, [parse_contrast("high:low")], ["final"], **kwargs)
    assert [(r.env_id, r.pairs, r.difference[0]) for r in rows] == [
        ("Pendulum-v1", (1,), 50.0),
        ("MountainCarContinuous-v0", (1,), 50.0),
    ]
    assert "| high (1 variant) | low (1 variant) |" in contrasts_markdown(rows, 10, 10, N_BOOT)
    with pytest.raises(ConfigError, match="no environment holds all of its variants"):
        contrast_rows(study, [parse_contrast("pendulum-high:car-low")], ["final"], **kwargs)


def test_name_parts_of_a_comparison_start_after_its_label():
    assert name_part("a/lap-vol16", "vol") == "vol16"
    assert with_part_replaced("a/uniform-vol16", "uniform", "lap") == "a/lap-vol16"
    assert name_part("volatile-vol16", "vol") == "vol16"  # vol must be followed by its value
