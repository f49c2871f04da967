"""Learning-curve plots drawn from the results store: ``curve.png`` of a ``train`` run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ddpglab.config import AgentConfig, Config  # noqa: E402
from ddpglab.store import ResultsStore  # noqa: E402

#: Up to this many seeds the legend names each; beyond, one entry stands for them all.
SEEDS_IN_LEGEND = 12


def algorithm_name(agent: AgentConfig) -> str:
    """``TD3`` when all three TD3 options are on (twin critics, target smoothing noise,
    delayed policy updates), ``DDPG`` when none is, else DDPG with the parts that are on,
    e.g. ``DDPG+twin+smoothing`` (twin, smoothing, delay)."""
    parts = {
        "twin": agent.twin_critics,
        "smoothing": agent.target_noise > 0,
        "delay": agent.policy_delay > 1,
    }
    if all(parts.values()):
        return "TD3"
    return "+".join(["DDPG", *(name for name, on in parts.items() if on)])


def run_title(config: Config) -> str:
    """What a run's curve is of: env, algorithm and replay kind (the config does not record
    the preset it came from, so the title names what the preset set)."""
    members = len(config.train.seeds)
    seeds = f"{members} seeds" if members > 1 else f"seed {config.train.seeds[0]}"
    return f"{config.env.id}: {algorithm_name(config.agent)}, {config.replay.kind} replay, {seeds}"


def _seed_colors(seeds: list[int]) -> dict[int, tuple]:
    cmap = plt.get_cmap("tab10" if len(seeds) <= 10 else "viridis")
    if len(seeds) <= 10:
        return {seed: cmap(i) for i, seed in enumerate(seeds)}
    return {seed: cmap(i / (len(seeds) - 1)) for i, seed in enumerate(seeds)}


def plot_learning_curves(
    store: ResultsStore, path: str | Path, title: str = "", smooth: int = 10
) -> Path:
    """Episode return per member (thin), their mean (bold, rolling mean over ``smooth``
    episodes) and each member's deterministic evaluations (dots in its curve's colour);
    the legend sits right of the axes, off the data. Saved as a PNG at ``path``."""
    episodes = store.episodes_frame()
    evals = pd.read_sql_query(
        "SELECT r.seed, v.episode, v.mean_return FROM evals v JOIN runs r USING (run_id)",
        store.conn,
    )
    seeds = sorted(set(episodes["seed"]) | set(evals["seed"]))
    colors = _seed_colors(seeds)
    named = len(seeds) <= SEEDS_IN_LEGEND
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for seed, rows in episodes.groupby("seed"):
        label = f"seed {seed}" if named else None
        ax.plot(
            rows["episode"], rows["return"], lw=0.7, alpha=0.45, color=colors[seed], label=label
        )
    if not named:
        label = f"each of {len(seeds)} seeds, own colour"
        ax.plot([], [], lw=0.7, color=colors[seeds[0]], label=label)
    if not episodes.empty:
        mean = episodes.groupby("episode")["return"].mean()
        smoothed = mean.rolling(smooth, min_periods=1).mean()
        ax.plot(
            smoothed.index,
            smoothed.values,
            lw=2.2,
            color="black",
            label=f"mean over seeds, rolling {smooth}",
        )
    for seed, rows in evals.groupby("seed"):
        ax.scatter(
            rows["episode"],
            rows["mean_return"],
            s=22,
            color=colors[seed],
            edgecolors="black",
            linewidths=0.6,
            zorder=3,
        )
    handles, labels = ax.get_legend_handles_labels()
    if not evals.empty:
        handles.append(
            Line2D([], [], ls="", marker="o", color="lightgrey", markeredgecolor="black", ms=5)
        )
        labels.append("deterministic evaluation\n(in its seed's colour)")
    ax.set_xlabel("episode")
    ax.set_ylabel("return")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if handles:
        ax.legend(
            handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
        )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
