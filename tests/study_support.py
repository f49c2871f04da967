"""Helpers of the study tests: the smoke study made fast, spec files, what a study stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ddpglab.store import ResultsStore

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "studies" / "smoke.yaml"


def fast_spec(**changes: Any) -> dict[str, Any]:
    """The smoke study with 20-step episodes: the same code paths in a fraction of the time."""
    spec = yaml.safe_load(SMOKE.read_text())
    spec["base"]["set"]["env.max_episode_steps"] = 20
    return {**spec, **changes}


def write_spec(folder: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path


def runs_of(out: Path) -> list[dict[str, Any]]:
    with ResultsStore(out / "results.sqlite") as store:
        return store.runs()


def returns_by_pair(out: Path) -> dict[tuple[str, int], list[float]]:
    with ResultsStore(out / "results.sqlite") as store:
        return {(r["variant"], r["seed"]): store.returns(r["run_id"]) for r in store.runs()}
