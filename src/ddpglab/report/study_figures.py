"""The figures of ``ddpglab report``: learning curves, final scores, stratified thresholds,
per-episode diagnostics (length, termination, the critic's estimate against returns), and
the replay diagnostics (each variant's sampling law over training, and final score against
its recency and entropy)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402

from ddpglab.report import stats  # noqa: E402
from ddpglab.report.name_parts import name_part  # noqa: E402
from ddpglab.report.study_data import StudyRuns  # noqa: E402
from ddpglab.report.study_rows import Row, rng_for  # noqa: E402

# PNG metadata without a version string, so regenerated figures differ only if data do.
_SAVE = {"dpi": 120, "metadata": {"Software": None}}


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _legend_below(fig, handles, labels) -> None:
    """A legend under the panels, in as many columns as the figure's width holds, so long
    variant names never cover curves; the figure grows by the legend's height."""
    column_in = 0.7 + 0.062 * max(map(len, labels))  # handle + text at 8 pt, in inches
    ncol = max(1, min(len(labels), int(fig.get_figwidth() // column_in)))
    legend_in = 0.15 + 0.17 * math.ceil(len(labels) / ncol)
    fig.set_figheight(fig.get_figheight() + legend_in)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, legend_in / fig.get_figheight(), 1, 1))


def plot_curves(
    study: StudyRuns,
    path: Path,
    window: int,
    n_boot: int,
    x_axis: Literal["episode", "env steps"] = "episode",
) -> None:
    """Per variant the mean over seeds of the rolling mean return, with a 95% bootstrap
    band over seeds; one panel per env.

    With ``x_axis="episode"`` the curves run over the episodes every seed of a variant has;
    with ``"env steps"`` each seed's rolling mean is read at a common grid of env steps
    (see :func:`_step_grid`), which compares variants whose episodes differ in length (a
    walker that falls after 80 steps against one that stands for 1600) by experience spent.
    """
    variants = study.variants()
    colors = dict(zip(variants, _colors(len(variants)), strict=True))
    fig, axes = plt.subplots(
        1, len(study.envs), figsize=(max(8, 7 * len(study.envs)), 4.5), squeeze=False
    )
    handles: dict[str, object] = {}
    seeds_drawn: dict[str, set[int]] = {}
    for ax, env_id in zip(axes[0], study.envs, strict=True):
        for variant in study.variants(env_id):
            runs = study.group(env_id, variant)
            if x_axis == "episode":
                horizon = min(r.returns.size for r in runs)
                curves = np.stack([stats.rolling_mean(r.returns[:horizon], window) for r in runs])
                x = runs[0].episodes[:horizon]
            else:
                runs, x = _on_a_step_grid(runs, window)
                if not runs:
                    continue
                curves = _on_grid(runs, [r.returns for r in runs], window, x)
            mean, lo, hi = stats.mean_band(curves, n_boot, rng_for(env_id, variant, "band"))
            (line,) = ax.plot(x, mean, lw=1.6, color=colors[variant])
            ax.fill_between(x, lo, hi, color=colors[variant], alpha=0.18, lw=0)
            handles[variant] = line
            seeds_drawn.setdefault(variant, set()).update(r.seed for r in runs)
        ax.set_title(env_id)
        ax.set_xlabel(x_axis)
        ax.set_ylabel(f"return, rolling mean of {window} episodes")
        ax.grid(alpha=0.3)
    labels = [f"{v} (n={len(seeds_drawn[v])})" for v in handles]
    if handles:
        _legend_below(fig, list(handles.values()), labels)
    else:  # by env steps, every curve needs whole windows, and no run has one yet
        fig.text(0.5, 0.5, f"no run has {window} episodes yet", ha="center", va="center")
    fig.savefig(path, bbox_inches="tight", **_SAVE)  # tight: never cut the legend
    plt.close(fig)


def plot_final(rows: list[Row], path: Path, last: int) -> None:
    """Per variant the seeds' scores (dots), the mean (circle) and the IQM (diamond), each
    with its 95% CI; variants on the vertical axis so long names stay readable."""
    envs = list(dict.fromkeys(r.env_id for r in rows))
    n_max = max(sum(r.env_id == e for r in rows) for e in envs)
    fig, axes = plt.subplots(
        1, len(envs), figsize=(6.5 * len(envs), 1.2 + 0.45 * n_max), squeeze=False
    )
    jitter = np.random.default_rng(0)
    for ax, env_id in zip(axes[0], envs, strict=True):
        env_rows = [r for r in rows if r.env_id == env_id]
        for y, r in enumerate(env_rows):
            ax.scatter(
                r.scores, y + jitter.uniform(-0.12, 0.12, r.scores.size), s=9,
                color="0.6", zorder=1, label="seed" if y == 0 else None,
            )  # fmt: skip
            for offset, (point, lo, hi), marker, color, name in (
                (-0.22, r.mean, "o", "tab:blue", "mean, 95% CI"),
                (0.22, r.iqm, "D", "tab:red", "IQM, 95% CI"),
            ):
                ax.errorbar(
                    point, y + offset, xerr=[[point - lo], [hi - point]], fmt=marker,
                    color=color, ms=4, capsize=3, zorder=2, label=name if y == 0 else None,
                )  # fmt: skip
        ax.set_yticks(range(len(env_rows)), [r.variant for r in env_rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(env_id)
        ax.set_xlabel(f"mean return over the last {last} episodes")
        ax.grid(alpha=0.3, axis="x")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, **_SAVE)
    plt.close(fig)


def plot_thresholds(study: StudyRuns, path: Path, window: int) -> bool:
    """For each variant that records thresholds (stratified replay): the mean over seeds of
    the return, its rolling mean, and the mean dynamic threshold per episode, with each
    seed's threshold faint. Returns False (and writes nothing) when no variant has any."""
    groups = [
        (env_id, variant)
        for env_id in study.envs
        for variant in study.variants(env_id)
        if any(np.isfinite(r.thresholds).any() for r in study.group(env_id, variant))
    ]
    if not groups:
        return False
    n_cols = min(2, len(groups))
    n_rows = math.ceil(len(groups) / n_cols)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(6.5 * n_cols, 3.4 * n_rows), squeeze=False, sharey="row"
    )
    for ax, (env_id, variant) in zip(axes.flat, groups, strict=False):
        runs = study.group(env_id, variant)
        horizon = min(r.returns.size for r in runs)
        x = runs[0].episodes[:horizon]
        returns = np.stack([r.returns[:horizon] for r in runs])
        thresholds = np.stack([r.thresholds[:horizon] for r in runs])
        for seed_threshold in thresholds:
            ax.plot(x, seed_threshold, lw=0.5, color="tab:orange", alpha=0.25)
        mean_return = returns.mean(axis=0)
        ax.plot(x, mean_return, lw=0.6, color="tab:blue", alpha=0.45, label="return")
        ax.plot(
            x, stats.rolling_mean(mean_return, window), lw=1.6, color="tab:blue",
            label=f"return, rolling mean of {window}",
        )  # fmt: skip
        with warnings.catch_warnings():
            # Episodes before any seed has a threshold give "mean of empty slice": NaN is right.
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_threshold = np.nanmean(thresholds, axis=0)
        ax.plot(x, mean_threshold, lw=1.6, color="tab:orange", label="threshold (mean)")
        ax.set_title(f"{variant} ({env_id}, n={len(runs)})", fontsize=9)
        ax.set_xlabel("episode")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("return")
    for ax in list(axes.flat)[len(groups) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, **_SAVE)
    plt.close(fig)
    return True


def _on_a_step_grid(runs: list, window: int, points: int = 200) -> tuple[list, np.ndarray]:
    """The runs with a whole window of episodes, and env steps from where each of them has
    one to where the shortest ends; no runs and no grid when there is no such stretch (a
    run ends before another's first window is whole), rather than a curve made up by
    holding values flat."""
    runs = [r for r in runs if len(r.env_steps) >= window]
    if runs:
        first = max(r.env_steps[window - 1] for r in runs)
        last = min(r.env_steps[-1] for r in runs)
        if first < last:
            return runs, np.linspace(first, last, points)
    return [], np.empty(0)


def _on_grid(runs: list, values: list[np.ndarray], window: int, grid: np.ndarray) -> np.ndarray:
    """Each run's rolling mean of ``values`` over ``window`` episodes, read at the env
    steps of ``grid`` (linear between episode ends): shape (runs, grid points)."""
    curves = []
    for run, v in zip(runs, values, strict=True):
        rolled = np.convolve(v, np.ones(window), "valid") / window
        steps = run.env_steps[len(v) - len(rolled) :]
        curves.append(np.interp(grid, steps, rolled))
    return np.stack(curves)


def plot_diagnostics(study: StudyRuns, path: Path, window: int) -> bool:
    """Per env, rolling means over episodes against env steps, averaged over seeds: the
    episode length, the share of episodes the env ended (a fall, a crash: not the time
    limit), and the critic's Q(s_0, mu(s_0)) at each episode's start beside the discounted
    return the episode earned (with the critic's gamma^T Q(s_T, mu(s_T)) added where the
    time limit cut it, see :class:`~ddpglab.summary.ValueTracker`). Writes nothing and
    returns False when no run recorded them or none has a whole window of episodes."""
    runs = [r for r in study.runs if r.q_start is not None and np.isfinite(r.q_start).any()]
    if not runs:
        return False
    envs = list(dict.fromkeys(r.env_id for r in runs))
    fig, axes = plt.subplots(len(envs), 3, figsize=(13, 3.4 * len(envs)), squeeze=False)
    handles: dict[str, object] = {}
    variants = list(dict.fromkeys(r.variant for r in runs))
    colors = dict(zip(variants, _colors(len(variants)), strict=True))
    for row, env_id in zip(axes, envs, strict=True):
        for variant in variants:
            group = [r for r in runs if r.env_id == env_id and r.variant == variant]
            group, grid = _on_a_step_grid(group, window)
            if not group:
                continue
            color, label = colors[variant], f"{variant} (n={len(group)})"

            def mean(values: list[np.ndarray], group=group, grid=grid) -> np.ndarray:
                return _on_grid(group, values, window, grid).mean(axis=0)

            row[0].plot(grid, mean([r.lengths for r in group]), color=color)
            falls = [np.nan_to_num(r.terminated, nan=0.0) for r in group]
            row[1].plot(grid, mean(falls), color=color)
            q = [np.nan_to_num(r.q_start, nan=0.0) for r in group]
            g = [np.nan_to_num(r.discounted_return, nan=0.0) for r in group]
            (handles[label],) = row[2].plot(grid, mean(q), color=color)
            row[2].plot(grid, mean(g), color=color, linestyle="--")
        row[0].set_ylabel(f"{env_id}\nepisode length")
        row[1].set_ylabel("share ended by the env")
        row[1].set_ylim(-0.05, 1.05)
        row[2].set_ylabel("Q(s0, mu(s0)) solid,\ndiscounted return dashed")
        for ax in row:
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
    if not handles:  # no run has a whole window of episodes yet
        plt.close(fig)
        return False
    fig.suptitle(f"rolling means over {window} episodes, averaged over seeds", fontsize=10)
    _legend_below(fig, list(handles.values()), list(handles))
    fig.savefig(path, **_SAVE)
    plt.close(fig)
    return True


def _replay_groups(study: StudyRuns) -> list[tuple[str, str, list]]:
    """(env, variant, runs with replay_stats rows) for every variant that has such runs."""
    groups = []
    for env_id in study.envs:
        for variant in study.variants(env_id):
            runs = [r for r in study.group(env_id, variant) if r.replay is not None]
            runs = [r for r in runs if r.replay.env_steps.size]
            if runs:
                groups.append((env_id, variant, runs))
    return groups


def plot_replay_stats(study: StudyRuns, path: Path, n_boot: int) -> bool:
    """Per env and variant, the expected age of a replayed transition and the entropy of
    the sampling law at each episode end against env steps: the mean over seeds (read on a
    common grid of env steps where every seed has rows) with a 95% bootstrap band over
    seeds. Returns False (and writes nothing) when the store holds no replay_stats rows."""
    groups = _replay_groups(study)
    if not groups:
        return False
    envs = list(dict.fromkeys(env_id for env_id, _, _ in groups))
    fig, axes = plt.subplots(len(envs), 2, figsize=(12, 3.4 * len(envs)), squeeze=False)
    variants = list(dict.fromkeys(variant for _, variant, _ in groups))
    colors = dict(zip(variants, _colors(len(variants)), strict=True))
    handles: dict[str, object] = {}
    for env_id, variant, runs in groups:
        row = axes[envs.index(env_id)]
        first = max(r.replay.env_steps[0] for r in runs)
        last = min(r.replay.env_steps[-1] for r in runs)
        grid = np.linspace(first, last, 200) if first < last else np.array([first])
        for ax, name in zip(row, ("expected_age", "entropy"), strict=True):
            curves = np.stack(
                [np.interp(grid, r.replay.env_steps, getattr(r.replay, name)) for r in runs]
            )
            mean, lo, hi = stats.mean_band(curves, n_boot, rng_for(env_id, variant, name))
            (line,) = ax.plot(
                grid, mean, color=colors[variant], marker="o" if grid.size == 1 else None
            )
            ax.fill_between(grid, lo, hi, color=colors[variant], alpha=0.2, lw=0)
        handles[f"{variant} (n={len(runs)})"] = line
    for row, env_id in zip(axes, envs, strict=True):
        row[0].set_ylabel(f"{env_id}\nE[age] of a replayed\ntransition (env steps)")
        row[1].set_ylabel("entropy of the sampling\nlaw H(P) (nats)")
        for ax in row:
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
    fig.suptitle("the sampling law at each episode end: mean over seeds, 95% CI", fontsize=10)
    _legend_below(fig, list(handles.values()), list(handles))
    fig.savefig(path, **_SAVE)
    plt.close(fig)
    return True


def _legible_log_ticks(ax) -> None:
    """Ticks a log x axis can label without collisions whatever its span. Matplotlib
    labels every minor tick of a span under half a decade, in wide scientific notation,
    and the labels run into each other; under a decade there may be no major tick at all."""
    low, high = ax.get_xlim()
    decades = math.log10(high / low)
    if decades < 1:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(5))
        ax.xaxis.set_minor_locator(ticker.NullLocator())
    else:
        subs = (1.0, 2.0, 5.0) if decades < 4 else (1.0,)
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=subs))
    ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def plot_recency_entropy(
    study: StudyRuns,
    rows: list[Row],
    path: Path,
    last: int,
    n_boot: int,
    colour_by: str | None = None,
) -> bool:
    """Final score against mean expected age and against mean entropy (the recency and
    entropy view of Korniak et al. 2026): one point per variant, the mean over seeds of
    each run's score (the table's, with its 95% CI) against the mean over seeds of each
    run's time-average over its episode ends (95% bootstrap CI over seeds). Each variant
    has its own colour, or with ``colour_by`` a label (``vol``) the colour of the part of
    its name that starts with it (:func:`name_part`), with a legend of those parts.
    Returns False (and writes nothing) when the store holds no replay_stats rows."""
    groups = _replay_groups(study)
    if not groups:
        return False
    envs = list(dict.fromkeys(env_id for env_id, _, _ in groups))
    fig, axes = plt.subplots(len(envs), 2, figsize=(12, 4 * len(envs)), squeeze=False)
    if colour_by is None:
        colors = _colors(len(groups))
    else:
        parts = [name_part(variant, colour_by) for _, variant, _ in groups]
        palette = dict(zip(dict.fromkeys(parts), _colors(len(set(parts))), strict=True))
        colors = [palette[part] for part in parts]
    by_variant = {(r.env_id, r.variant): r for r in rows}
    for (env_id, variant, runs), color in zip(groups, colors, strict=True):
        row, table_row = axes[envs.index(env_id)], by_variant[env_id, variant]
        score, score_lo, score_hi = np.nan_to_num(table_row.mean, nan=table_row.mean[0])
        for ax, name in zip(row, ("expected_age", "entropy"), strict=True):
            values = np.array([getattr(r.replay, name).mean() for r in runs])
            x, lo, hi = stats.bootstrap_ci(
                [values], stats.aggregate_mean, n_boot, rng_for(env_id, variant, "mean " + name)
            )
            ax.errorbar(
                x, score, xerr=[[x - lo], [hi - x]], yerr=[[score - score_lo], [score_hi - score]],
                fmt="o", color=color, ms=5, capsize=3,
            )  # fmt: skip
            ax.annotate(variant, (x, score), xytext=(4, 4), textcoords="offset points", fontsize=7)
    for row, env_id in zip(axes, envs, strict=True):
        row[0].set_ylabel(f"{env_id}\nmean return over the last {last} episodes")
        row[0].set_xlabel("mean E[age] of a replayed transition (env steps, log scale)")
        row[0].set_xscale("log")
        _legible_log_ticks(row[0])
        row[1].set_xlabel("mean entropy of the sampling law H(P) (nats)")
        for ax in row:
            ax.grid(alpha=0.3)
    fig.suptitle("final score against recency and entropy: per variant, 95% CIs", fontsize=10)
    fig.tight_layout()
    if colour_by is not None:
        handles = [plt.Line2D([], [], color=c, marker="o", ls="") for c in palette.values()]
        _legend_below(fig, handles, list(palette))
    fig.savefig(path, **_SAVE)
    plt.close(fig)
    return True
