"""What a search leaves in DIR besides Optuna's storage: the best config as a preset, a
table of all trials, the optimization history and the parameters' importance."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ddpglab.config import to_yaml
from ddpglab.state_files import write_text_atomic
from ddpglab.tune.spec import Search

#: Complete trials the importance estimate needs before it means anything.
MIN_TRIALS_FOR_IMPORTANCE = 4


def trial_rows(study: Any, search: Search) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, where it was pruned, time, parameters."""
    rows = []
    for t in study.trials:
        duration = t.duration.total_seconds() if t.duration is not None else None
        value = t.value
        if t.state.name == "PRUNED" and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]  # its last score
        # One definition with the summary's counts (search.counted): a trial cut short by
        # a stop is run again, so it is "interrupted", not "fail".
        interrupted = t.state.name == "FAIL" and t.user_attrs.get("interrupted")
        row = {
            "trial": t.number,
            "state": "interrupted" if interrupted else t.state.name.lower(),
            "value": value,
            "pruned_at": t.user_attrs.get("pruned_at"),
            "seconds": None if duration is None else round(duration, 1),
        }
        params = t.user_attrs.get("config_params", {})
        row.update({key: params.get(key) for key in search.spec.space})
        row["error"] = t.user_attrs.get("error") or ""
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def trials_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no trials yet\n"
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(r[n]) for n in names) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def best_yaml(study: Any, search: Search) -> str | None:
    """The best trial's full config, loadable with ``ddpglab train --config``."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = max(complete, key=lambda t: t.value)
    params = best.user_attrs["config_params"]
    config = search.best_config(params)
    head = [
        f"# Best of search '{search.spec.name}': trial {best.number}, objective {best.value:.2f}",
        f"# (mean over seeds {search.spec.objective.seeds} of the last "
        f"{search.spec.objective.last} episode returns, {search.episodes} episodes).",
        "# Evaluation, checkpoint and state cadence: the base preset's, not the trials'.",
        "# Searched: " + ", ".join(f"{k} = {v}" for k, v in params.items()),
        f"# Train it: ddpglab train --config best.yaml --out runs/{search.spec.name}-best",
    ]
    return "\n".join(head) + "\n" + to_yaml(config)


def plot_history(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Each trial's objective (pruned ones at their last score) and the best so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for state, style in (("complete", "o"), ("pruned", "x")):
        points = [
            (r["trial"], r["value"]) for r in rows if r["state"] == state and r["value"] is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, style, label=state, alpha=0.8)
    best, line = -math.inf, []
    for r in rows:
        if r["state"] == "complete" and r["value"] is not None:
            best = max(best, r["value"])
        if best > -math.inf:
            line.append((r["trial"], best))
    if line:
        xs, ys = zip(*line, strict=True)
        ax.step(xs, ys, where="post", color="black", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (mean of last-k returns)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_importance(study: Any, path: Path, title: str) -> bool:
    """Each parameter's share of the objective's variance (PED-ANOVA), as bars; False when
    there are too few complete trials to estimate it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return False
    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
        )
    except (RuntimeError, ValueError):  # e.g. every trial drew the same values
        return False
    names = [n.replace(":quantile", " (lognormal quantile)") for n in importances]
    fig, ax = plt.subplots(figsize=(7, 1 + 0.5 * len(names)))
    ax.barh(names[::-1], list(importances.values())[::-1])
    ax.set_xlabel("importance (share of the objective's variation)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_outputs(study: Any, search: Search, out: Path) -> list[Path]:
    """Write every output the search's trials allow; returns the files written."""
    import pandas as pd

    rows = trial_rows(study, search)
    written = []
    pd.DataFrame(rows).to_csv(out / "trials.csv", index=False)
    write_text_atomic(out / "trials.md", trials_markdown(rows))
    written += [out / "trials.csv", out / "trials.md"]
    best = best_yaml(study, search)
    if best is not None:
        write_text_atomic(out / "best.yaml", best)
        written.append(out / "best.yaml")
    if rows:
        plot_history(rows, out / "history.png", f"search {search.spec.name}")
        written.append(out / "history.png")
    if plot_importance(study, out / "importance.png", f"search {search.spec.name}"):
        written.append(out / "importance.png")
    return written
