"""Learning-curve plots drawn from the results store."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ddpglab.store import ResultsStore  # noqa: E402


def plot_learning_curves(
    store: ResultsStore, path: str | Path, title: str = "", smooth: int = 10
) -> Path:
    """Episode return per member (thin), their mean (bold, rolling mean over ``smooth``
    episodes) and the deterministic evaluations (dots); saved as a PNG at ``path``."""
    episodes = store.episodes_frame()
    evals = pd.read_sql_query(
        "SELECT r.seed, v.episode, v.mean_return FROM evals v JOIN runs r USING (run_id)",
        store.conn,
    )
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for seed, rows in episodes.groupby("seed"):
        ax.plot(rows["episode"], rows["return"], lw=0.7, alpha=0.35, label=f"seed {seed}")
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
    if not evals.empty:
        ax.scatter(
            evals["episode"],
            evals["mean_return"],
            s=14,
            color="tab:red",
            zorder=3,
            label="deterministic evaluation",
        )
    ax.set_xlabel("episode")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if episodes["seed"].nunique() <= 8:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
