"""``ddpglab animate DIR``: a run's saved actors played in training order, as GIF and MP4.

Each selected checkpoint plays one deterministic episode (no exploration noise) from the
same start state, reset with the run's seed, rendered headless (``render_mode="rgb_array"``;
MuJoCo envs through ``MUJOCO_GL``, see :mod:`ddpglab.report.offscreen`).
A segment has the reset frame and one frame per step, each captioned with the variant,
seed, the checkpoint's training episode, the return of the episode shown and the step, so
the video shows how the policy improved. The MP4 keeps the env's resolution; the GIF is
scaled down to ``gif_width`` pixels wide to stay small enough to share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddpglab.actor_file import load_actor
from ddpglab.config import ConfigError
from ddpglab.report.offscreen import make_offscreen_env
from ddpglab.report.study_data import open_store, variant_label

GIF_WIDTH = 400


@dataclass
class Segment:
    """One checkpoint's episode: which checkpoint, its return, how many frames it showed."""

    episode: int
    env_steps: int
    ret: float
    n_frames: int


def require_imageio() -> None:
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise ConfigError(
            "animate needs imageio and imageio-ffmpeg: pip install 'ddpglab[video]'"
        ) from None


def select_run(runs: list[dict], variant: str | None, seed: int | None) -> dict:
    """The first run matching ``variant`` and ``seed`` (either may be None)."""
    if not runs:
        raise ConfigError("the store holds no runs")
    variants = list(dict.fromkeys(variant_label(r["variant"]) for r in runs))
    if variant is not None and variant not in variants:
        raise ConfigError(f"unknown variant '{variant}'; choose from {', '.join(variants)}")
    matching = [
        r
        for r in runs
        if variant in (None, variant_label(r["variant"])) and seed in (None, r["seed"])
    ]
    if not matching:
        seeds = sorted({r["seed"] for r in runs if variant in (None, variant_label(r["variant"]))})
        where = f" of variant '{variant}'" if variant is not None else ""
        raise ConfigError(f"no run{where} with seed {seed}; seeds: {', '.join(map(str, seeds))}")
    return matching[0]


def run_checkpoints(
    run_dir: Path, variant: str | None, seed: int | None
) -> tuple[dict, str, list[dict]]:
    """The run of ``run_dir`` matching ``variant`` and ``seed``, its label and its
    checkpoints in training order (at least one)."""
    with open_store(run_dir) as store:
        run = select_run(store.runs(), variant, seed)
        checkpoints = store.checkpoints(run["run_id"])
    label = f"{run['variant']}, seed {run['seed']}" if run["variant"] else f"seed {run['seed']}"
    if not checkpoints:
        raise ConfigError(f"run {label} has no saved checkpoints (train.checkpoint_every)")
    return run, label, checkpoints


def pick_checkpoints(checkpoints: list[dict], every: int) -> list[dict]:
    """Every ``every``-th checkpoint from the first, and always the last (the final policy)."""
    chosen = checkpoints[::every]
    if chosen[-1] is not checkpoints[-1]:
        chosen.append(checkpoints[-1])
    return chosen


def play(env, actor, seed: int, bounds: list | None = None) -> tuple[list[np.ndarray], float]:
    """One deterministic episode a = mu(s), rescaled to the run's action bounds
    (``env.action_bounds``; None: the env's Box); frames and return."""
    import torch

    from ddpglab.envs import action_bounds, rescale_action

    low, high = action_bounds(env.action_space, bounds)
    obs, _ = env.reset(seed=seed)
    frames, total, done = [env.render()], 0.0, False
    while not done:
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).view(1, 1, -1)
            action = actor(x).view(-1).numpy()
        obs, reward, terminated, truncated, _ = env.step(rescale_action(action, low, high))
        total += float(reward)
        frames.append(env.render())
        done = terminated or truncated
    return frames, total


def caption(frame: np.ndarray, lines: list[str]):
    """The frame as a PIL image with ``lines`` written top left on a dark band."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    size = max(10, image.width // 34)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(image)
    height = (size + 4) * len(lines) + 6
    draw.rectangle((0, 0, image.width, height), fill=(20, 20, 20))
    for i, line in enumerate(lines):
        draw.text((6, 4 + i * (size + 4)), line, fill=(255, 255, 255), font=font)
    return image


class VideoWriter:
    """Captions frames and streams them to MP4 (full size) and to palettised GIF frames,
    written under temporary names and renamed into place only when all went well."""

    def __init__(self, gif: Path, mp4: Path, fps: float, gif_width: int):
        self.gif, self.mp4, self.fps, self.gif_width = gif, mp4, fps, gif_width
        self.tmp_gif = gif.with_name(f".{gif.stem}.tmp.gif")
        self.tmp_mp4 = mp4.with_name(f".{mp4.stem}.tmp.mp4")
        self.gif_frames: list = []

    def __enter__(self) -> VideoWriter:
        import imageio.v2 as imageio

        # macro_block_size=2: H.264 in yuv420p needs even sides only; 16 would rescale.
        self.video = imageio.get_writer(self.tmp_mp4, fps=self.fps, macro_block_size=2)
        return self

    def add(self, head: str, episode: int, ret: float, frames: list[np.ndarray]) -> None:
        from PIL import Image

        for step, frame in enumerate(frames):
            lines = [head, f"episode {episode}   return {ret:.1f}   step {step}/{len(frames) - 1}"]
            self.video.append_data(np.asarray(caption(frame, lines)))
            small = Image.fromarray(frame)
            if self.gif_width and small.width > self.gif_width:
                size = (self.gif_width, round(small.height * self.gif_width / small.width))
                small = small.resize(size, Image.Resampling.LANCZOS)
            # Palettised as they come, so a long animation stays small in memory.
            image = caption(np.asarray(small), lines)
            self.gif_frames.append(image.quantize(method=Image.Quantize.FASTOCTREE))

    def __exit__(self, exc_type, *exc: object) -> None:
        try:
            self.video.close()
            if exc_type is None:
                # Every frame differs (the caption counts steps), so none is merged away.
                self.gif_frames[0].save(
                    self.tmp_gif,
                    save_all=True,
                    append_images=self.gif_frames[1:],
                    duration=round(1000 / self.fps),
                    loop=0,
                )
                os.replace(self.tmp_mp4, self.mp4)
                os.replace(self.tmp_gif, self.gif)
        finally:
            self.tmp_gif.unlink(missing_ok=True)
            self.tmp_mp4.unlink(missing_ok=True)


def animate(
    run_dir: Path,
    variant: str | None = None,
    seed: int | None = None,
    every: int = 1,
    fps: float | None = None,
    max_steps: int | None = None,
    to: Path | None = None,
    gif_width: int = GIF_WIDTH,
) -> tuple[Path, Path, list[Segment]]:
    """Write ``animation.gif`` and ``animation.mp4`` into ``to`` (default ``run_dir``)."""
    import json

    require_imageio()
    run_dir = Path(run_dir)
    run, label, checkpoints = run_checkpoints(run_dir, variant, seed)
    chosen = pick_checkpoints(checkpoints, every)
    missing = [c["path"] for c in chosen if not (run_dir / c["path"]).is_file()]
    if missing:
        raise ConfigError(f"checkpoint file missing: {run_dir / missing[0]}")
    config = json.loads(run["config_json"])
    limit = max_steps or config.get("env", {}).get("max_episode_steps")
    actor_kind = config.get("agent", {}).get("actor", "mlp")
    env_config = config.get("env", {})
    # before anything is written
    env = make_offscreen_env(run["env_id"], limit, env_config.get("kwargs"))
    bounds = env_config.get("action_bounds")
    out = Path(to) if to is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    gif, mp4 = out / "animation.gif", out / "animation.mp4"
    fps = fps or float(env.metadata.get("render_fps") or 30)
    head = f"{run['env_id']}  {label}"
    segments = []
    try:
        with VideoWriter(gif, mp4, fps, gif_width) as writer:
            for checkpoint in chosen:
                actor = load_actor(run_dir / checkpoint["path"], actor_kind)
                frames, ret = play(env, actor, int(run["seed"]), bounds)
                writer.add(head, checkpoint["episode"], ret, frames)
                segments.append(
                    Segment(checkpoint["episode"], checkpoint["env_steps"], ret, len(frames))
                )
    finally:
        env.close()
    return gif, mp4, segments
