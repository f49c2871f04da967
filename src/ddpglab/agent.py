"""DDPG (Lillicrap et al. 2015) for K independent members: targets, losses, updates, and
the three TD3 options (Fujimoto et al. 2018), each switchable on its own: clipped
double-Q, target policy smoothing and delayed actor and target updates.

Each equation lives in one function below. Losses are computed per member, shape (K,),
and summed before ``backward``: member k's gradient is then exactly the gradient of its
own loss, and Adam (elementwise) keeps an independent state per member.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from typing import Any, NamedTuple

import numpy as np
import torch

from ddpglab.config import AgentConfig
from ddpglab.config.sections import Precision

# The critic's losses live in ddpglab.critic_losses; the MSE stays importable as critic_loss.
from ddpglab.critic_losses import critic_loss_for, priority_td_error
from ddpglab.critic_losses import mse_loss as critic_loss  # noqa: F401
from ddpglab.nets import ACTORS, CRITICS
from ddpglab.replay import Batch
from ddpglab.seeding import derive_seed, member_rngs, rng_states, set_rng_states


def td_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    next_q: torch.Tensor,
    discounts: torch.Tensor | float,
) -> torch.Tensor:
    """y = r + gamma^k (1 - terminated) Q'(s', mu'(s')).

    With one-step transitions k = 1: y = r + gamma (1 - terminated) Q'(s', mu'(s')). With
    n-step returns, r is the discounted sum of k <= n rewards and s' the state k steps on
    (``Batch.discounts`` holds gamma^k). Bootstraps through time-limit truncation (the
    state still has a future) and not through termination (it has none).
    """
    return rewards + discounts * (1.0 - terminated) * next_q


def clipped_double_q(next_q: torch.Tensor) -> torch.Tensor:
    """min_j Q'_j(s', a') over the critics j, for next_q of shape (critics, K, B).

    With twin critics this is TD3's clipped double-Q target value, which counters the
    overestimation a single critic's max-seeking actor feeds on; with one critic it is
    Q'(s', a') itself.
    """
    return next_q.amin(dim=0)


def smoothed_target_action(
    target_action: torch.Tensor, noise: torch.Tensor, noise_clip: float
) -> torch.Tensor:
    """a' = clip(mu'(s') + clip(eps, -c, c), -1, 1), eps ~ N(0, sigma^2) given as ``noise``.

    TD3's target policy smoothing: the target values a small neighbourhood of the target
    action, so the critic cannot exploit a narrow peak of its own error.
    """
    return (target_action + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def actor_loss(q_of_policy: torch.Tensor) -> torch.Tensor:
    """L_k = -1/B sum_i Q(s_i, mu(s_i)) per member.

    Its gradient is the deterministic policy gradient
    -1/B sum_i grad_a Q(s_i, a)|_{a = mu(s_i)} grad_theta mu(s_i).
    """
    return -q_of_policy.mean(dim=-1)


@torch.no_grad()
def soft_update(target: list[torch.Tensor], online: list[torch.Tensor], tau: float) -> None:
    """theta' <- tau theta + (1 - tau) theta', in place on the target parameters."""
    # lerp_(end, w) computes self + w (end - self); the foreach form does every tensor at once.
    torch._foreach_lerp_(target, online, tau)


@torch.no_grad()
def clip_grad_norm_per_member(
    params: list[torch.Tensor], max_norm: float, members: int
) -> torch.Tensor:
    """g_k <- g_k min(1, c / ||g_k||) for each member k, ||g_k|| the L2 norm of member k's
    gradient over all ``params``; returns the norms before clipping, shape (K,).

    Each parameter has leading size m K: m networks of the K members stacked network by
    network (twin critics: m = 2, rows k and K + k are member k's Q_1 and Q_2). Member k
    is clipped by the norm of all its rows together, as if it trained alone with
    ``torch.nn.utils.clip_grad_norm_`` over its whole critic.
    """
    grads = [p.grad for p in params if p.grad is not None]
    # Sums in a fixed order, so member k's norm is the same bits for every K: one parameter
    # after another by elementwise adds (a reduction over the stacked parameters picks its
    # order by K), and each parameter row by row (one row alone is split between threads).
    squares = functools.reduce(torch.add, [_row_square_sums(g) for g in grads])
    per_network = squares.view(-1, members)
    norms = functools.reduce(torch.add, per_network.unbind(0)).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0).repeat(len(squares) // members)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
    return norms


#: Floats in the whole vectors of torch's fused Adam on the CPU (AVX-512; a multiple of
#: AVX2's 8), which also splits tensors between threads at multiples of it.
FUSED_ADAM_VECTOR = 16


def member_independent_adam(
    params: list[torch.Tensor], lr: float, device: torch.device
) -> torch.optim.Adam:
    """Adam whose step of member k is the same bits for every K, as fast as that allows.

    On the CPU the fused kernel rounds the elements after a tensor's last whole vector
    (its scalar tail) differently from the others, so a member whose elements fall there
    for one K and not for another would step differently. A parameter whose size per
    member is a multiple of :data:`FUSED_ADAM_VECTOR` has every member in whole vectors
    for every K and stays fused; the others (output biases, layers one wide), a small
    share of the elements, take the foreach kernels, which round the same everywhere.
    On other devices every parameter is fused.
    """
    if device.type != "cpu":
        return torch.optim.Adam(params, lr=lr, fused=True)
    aligned = [p for p in params if p[0].numel() % FUSED_ADAM_VECTOR == 0]
    rest = [p for p in params if p[0].numel() % FUSED_ADAM_VECTOR != 0]
    groups = [{"params": aligned, "fused": True}, {"params": rest, "foreach": True}]
    return torch.optim.Adam([g for g in groups if g["params"]], lr=lr)


def adam_state_in_param_order(optimizer: torch.optim.Adam, params: list[torch.Tensor]) -> dict:
    """The optimizer's state as one group over ``params`` in their order: the layout saved
    states keep whatever the grouping (see :func:`member_independent_adam`), so a state
    moves between devices and versions that group parameters differently."""
    saved = optimizer.state_dict()
    order = [id(p) for group in optimizer.param_groups for p in group["params"]]
    index_of = {ident: i for i, ident in enumerate(order)}
    state = {
        k: saved["state"][index_of[id(p)]]
        for k, p in enumerate(params)
        if index_of[id(p)] in saved["state"]
    }
    options = {key: v for key, v in saved["param_groups"][0].items() if key != "params"}
    return {"state": state, "param_groups": [{**options, "params": list(range(len(params)))}]}


def load_adam_state_in_param_order(
    optimizer: torch.optim.Adam, params: list[torch.Tensor], saved: dict
) -> None:
    """Load a state in the layout of :func:`adam_state_in_param_order` (states saved before
    it are in that layout too: one group) into ``optimizer``'s own grouping."""
    position = {id(p): k for k, p in enumerate(params)}
    current = optimizer.state_dict()["param_groups"]
    order = [position[id(p)] for group in optimizer.param_groups for p in group["params"]]
    state = {i: saved["state"][k] for i, k in enumerate(order) if k in saved["state"]}
    lr = saved["param_groups"][0]["lr"]
    groups, start = [], 0
    for group in current:  # this optimizer's options (fused or foreach), the saved rate
        count = len(group["params"])
        groups.append({**group, "lr": lr, "params": list(range(start, start + count))})
        start += count
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _row_square_sums(g: torch.Tensor) -> torch.Tensor:
    """sum of g[i]^2 per leading row i, as rows of the last axis summed, then their sums."""
    last = g.shape[-1] if g.dim() > 1 else 1
    return g.square().reshape(g.shape[0], -1, last).sum(dim=-1).sum(dim=-1)


def matrix_products_in(
    precision: Precision, device: torch.device
) -> contextlib.AbstractContextManager:
    """A context in which the networks' matrix products run at ``precision``.

    bf16 is mixed precision as in Micikevicius et al. 2018 ("Mixed Precision Training",
    ICLR), with bfloat16 instead of fp16 (Kalamkar et al. 2019, "A Study of BFLOAT16 for
    Deep Learning Training"): torch.autocast rounds each product's inputs to bfloat16 and
    runs it there (the kernels accumulate in fp32), while the parameters, their gradients
    and Adam's state stay fp32. Every network output is cast back to fp32 by the agent,
    so targets, losses, TD errors and the soft update are computed in fp32.
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


class UpdateStats(NamedTuple):
    """What one update reports, detached: per-member (K,) statistics and per-sample TD errors."""

    critic_loss: torch.Tensor  # (K,) the critic loss, averaged over twin critics
    actor_loss: torch.Tensor  # (K,) the actor loss at the latest actor update (0 before one)
    mean_q: torch.Tensor  # (K,) mean Q(s, a) over the batch, before the update (first critic)
    # (K, B) delta = y - Q(s, a), before the update; with twin critics that of the critic
    # with the larger |delta| (what LAP and PER rank by)
    td_error: torch.Tensor


class DDPGAgent:
    """Actor, critic(s), their targets and optimisers for K members; DDPG, or TD3 with the
    options of ``config`` switched on.

    Twin critics live in one critic ensemble of 2K members (the first K are Q_1, the next
    K are Q_2), so both run in one batched product per layer.

    Args:
        obs_dim: observation size.
        act_dim: action size; actions live in [-1, 1]^act_dim.
        config: the ``agent`` section of a :class:`~ddpglab.config.Config`.
        seeds: one seed per member; member k's initial networks and its target smoothing
            noise depend on ``seeds[k]`` only.
        device: where networks and optimiser state live; observations come in and actions
            go out as host numpy arrays.
        precision: of the update's matrix products, fp32 or bf16 (see
            :func:`matrix_products_in`); acting and evaluation run in fp32 either way.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        config: AgentConfig,
        seeds: list[int],
        device: str | torch.device = "cpu",
        precision: Precision = "fp32",
    ):
        self.config = config
        self.device = torch.device(device)
        self.precision = precision
        self.members = len(seeds)
        self.critics = 2 if config.twin_critics else 1
        init = {"final_layer_init": config.final_layer_init}
        actor_seeds = [derive_seed(s, "actor") for s in seeds]
        critic_seeds = [derive_seed(s, "critic") for s in seeds]
        if config.twin_critics:
            critic_seeds += [derive_seed(s, "critic2") for s in seeds]
        actor, critic = ACTORS[config.actor], CRITICS[config.critic]
        # Drawn on the CPU, then moved: the same initial weights on every device.
        self.actor = actor(obs_dim, act_dim, config.hidden, actor_seeds, **init).to(self.device)
        self.critic = critic(obs_dim, act_dim, config.hidden, critic_seeds, **init).to(self.device)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_target = copy.deepcopy(self.critic)
        for p in (*self.actor_target.parameters(), *self.critic_target.parameters()):
            p.requires_grad_(False)
        self.actor_params = list(self.actor.parameters())
        self.critic_params = list(self.critic.parameters())
        self.actor_opt = member_independent_adam(self.actor_params, config.actor_lr, self.device)
        self.critic_opt = member_independent_adam(self.critic_params, config.critic_lr, self.device)
        self._target_params = [
            *self.actor_target.parameters(),
            *self.critic_target.parameters(),
        ]
        self._online_params = [*self.actor_params, *self.critic_params]
        self.target_noise_rngs = member_rngs(seeds, "target_noise")
        self.act_dim = act_dim
        self._target_noise = np.zeros((self.members, config.batch_size, act_dim), np.float32)
        self.critic_updates = 0
        self.critic_loss_fn = critic_loss_for(config)  # mse, huber or pal, parameters bound
        self._last_actor_loss = torch.zeros(self.members, device=self.device)

    def _states(self, obs: np.ndarray) -> torch.Tensor:
        """Host observations (K, obs_dim) as a (K, 1, obs_dim) batch on the device."""
        return torch.from_numpy(obs).to(self.device).unsqueeze(1)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions mu(s) in [-1, 1] for obs of shape (K, obs_dim)."""
        return self.actor(self._states(obs)).squeeze(1).cpu().numpy()

    @torch.no_grad()
    def value_estimate(self, obs: np.ndarray) -> np.ndarray:
        """Q(s, mu(s)) per member for obs of shape (K, obs_dim): the (first) critic's
        estimate of the discounted return its policy collects from s."""
        x = self._states(obs)
        return self.critic(x, self.actor(x), members=self.members).view(-1).cpu().numpy()

    def _q_values(
        self, critic: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor
    ) -> torch.Tensor:
        """Q_j(s, a) of every critic j, shape (critics, K, B), in fp32."""
        if self.critics > 1:
            obs, act = obs.repeat(self.critics, 1, 1), act.repeat(self.critics, 1, 1)
        return critic(obs, act).float().view(self.critics, self.members, -1)

    def _products(self) -> contextlib.AbstractContextManager:
        """Where the update's network passes run: at this agent's precision."""
        return matrix_products_in(self.precision, self.device)

    def _draw_target_noise(self, batch_size: int) -> torch.Tensor:
        """eps ~ N(0, sigma^2) of shape (K, B, act_dim), member k's from its own stream."""
        if self._target_noise.shape[1] != batch_size:
            self._target_noise = np.zeros((self.members, batch_size, self.act_dim), np.float32)
        for rng, out in zip(self.target_noise_rngs, self._target_noise, strict=True):
            rng.standard_normal(out=out, dtype=np.float32)
        noise = torch.from_numpy(self._target_noise).to(self.device)
        return noise * self.config.target_noise

    def update(self, batch: Batch) -> UpdateStats:
        """One step for every member: the critic(s); then, every ``policy_delay``-th call,
        the actor and both soft target updates."""
        cfg = self.config
        with torch.no_grad(), self._products():
            next_action = self.actor_target(batch.next_obs).float()
            if cfg.target_noise > 0:
                noise = self._draw_target_noise(next_action.shape[1])
                next_action = smoothed_target_action(next_action, noise, cfg.target_noise_clip)
            next_q = clipped_double_q(
                self._q_values(self.critic_target, batch.next_obs, next_action)
            )
            y = td_target(batch.rewards, batch.terminated, next_q, batch.discounts)

        with self._products():
            q = self._q_values(self.critic, batch.obs, batch.actions)
        loss_q = self.critic_loss_fn(q, y, batch.weights)
        self.critic_opt.zero_grad(set_to_none=True)
        loss_q.sum().backward()
        if cfg.max_grad_norm is not None:
            clip_grad_norm_per_member(self.critic_params, cfg.max_grad_norm, self.members)
        self.critic_opt.step()
        self.critic_updates += 1

        if self.critic_updates % cfg.policy_delay == 0:
            # The actor climbs the first critic only, as in TD3.
            with self._products():
                q_pi = self.critic(batch.obs, self.actor(batch.obs).float(), members=self.members)
            loss_pi = actor_loss(q_pi.float().squeeze(-1))
            self.actor_opt.zero_grad(set_to_none=True)
            # Only the actor's gradient is wanted; the critic stays as its own step left it.
            loss_pi.sum().backward(inputs=self.actor_params)
            if cfg.max_grad_norm is not None:
                clip_grad_norm_per_member(self.actor_params, cfg.max_grad_norm, self.members)
            self.actor_opt.step()
            soft_update(self._target_params, self._online_params, cfg.tau)
            self._last_actor_loss = loss_pi.detach()

        q1 = q[0].detach()
        return UpdateStats(
            loss_q.detach().mean(dim=0),
            self._last_actor_loss,
            q1.mean(dim=-1),
            priority_td_error(q, y),
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": adam_state_in_param_order(self.actor_opt, self.actor_params),
            "critic_opt": adam_state_in_param_order(self.critic_opt, self.critic_params),
            "target_noise_rngs": rng_states(self.target_noise_rngs),
            "critic_updates": self.critic_updates,
            "last_actor_loss": self._last_actor_loss,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        load_adam_state_in_param_order(self.actor_opt, self.actor_params, state["actor_opt"])
        load_adam_state_in_param_order(self.critic_opt, self.critic_params, state["critic_opt"])
        if "critic_updates" in state:  # states saved before the TD3 options have neither
            set_rng_states(self.target_noise_rngs, state["target_noise_rngs"])
            self.critic_updates = state["critic_updates"]
            self._last_actor_loss = state["last_actor_loss"].to(self.device)
