"""The critic's losses (``agent.critic_loss``): mse, huber and pal, and the TD error that
prioritized replay is told with twin critics.

Each loss takes the predictions q, shape (K, B) or (critics, K, B), the shared target y,
shape (K, B), and the importance weights w, shape (K, B) (all ones except under PER), and
returns one loss per critic and member, shape (critics, K) or (K,). The agent sums them
before ``backward``, so twin critics' losses add up, as in TD3 and Fujimoto et al.'s code.

Importance weights multiply each sample's term, in every loss: a weight corrects how
often its sample is drawn, whatever that sample's term is, so PER with huber or pal is
the importance-corrected version of that loss, as PER with mse is today. PAL's normaliser
is left unweighted: it is a detached scale of the whole loss (a step size), not a sample's
term. Under uniform and LAP sampling every weight is 1 and the losses are the papers'.

Reference: Fujimoto, Meger & Precup 2020, "An Equivalence between Loss Functions and
Non-Uniform Sampling in Experience Replay", NeurIPS (reference code sfujim/LAP-PAL).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from ddpglab.config import AgentConfig

#: loss(q, y, weights) -> one loss per critic and member.
CriticLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def mse_loss(q: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """L_k = 1/B sum_i w_i (y_i - Q(s_i, a_i))^2 per member; w = 1 for uniform replay.

    q may carry a leading critic axis, (critics, K, B): each critic then gets its own loss
    against the one shared target y.
    """
    return (weights * (y - q).square()).mean(dim=-1)


def huber_loss(
    q: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, delta: float
) -> torch.Tensor:
    """L_k = 1/B sum_i w_i H(y_i - Q(s_i, a_i)) per member (per critic), with threshold d:
    H(x) = x^2 / 2 if |x| < d, else d (|x| - d / 2).

    Quadratic for small errors, linear beyond d, so one large error cannot dominate the
    step. LAP (Fujimoto et al. 2020) is meant with it at d = min_priority: under LAP
    sampling its expected gradient is PAL's under uniform sampling (see :func:`pal_loss`).
    The reference code's linear part is d |x|, which differs from d (|x| - d / 2) by a
    constant: the same gradient.
    """
    error = y - q
    size = error.abs()
    per_sample = torch.where(size < delta, 0.5 * error.square(), delta * (size - 0.5 * delta))
    return (weights * per_sample).mean(dim=-1)


def pal_loss(
    q: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    alpha: float,
    min_priority: float,
) -> torch.Tensor:
    """PAL, the prioritized approximation loss (Fujimoto, Meger & Precup 2020):
    L_k = (1/B sum_i w_i l(delta_i)) / sg(1/B sum_i max(|delta_i|, m)^alpha), with
    l(x) = m^alpha x^2 / 2 if |x| < m, else m |x|^(1 + alpha) / (1 + alpha), delta = y - Q
    and sg() a stopped gradient.

    l'(x) = max(|x|, m)^alpha H'(x), H the Huber loss of threshold m: the gradient of each
    sample is scaled by LAP's priority p(x) = max(|x|, m)^alpha, so PAL with uniform
    sampling has the expected gradient of the Huber loss with LAP sampling (the paper's
    equivalence of a loss and a sampling law); the normaliser, LAP's mean priority, is
    estimated over the batch (``ddpglab theory check`` says how closely). With twin
    critics (q of shape (2, K, B)) each critic gets its own l terms over the one
    normaliser built from max(|delta_1,i|, |delta_2,i|), as in the reference code.
    """
    error = y - q
    size = error.abs()
    per_sample = torch.where(
        size < min_priority,
        min_priority**alpha * 0.5 * error.square(),
        min_priority * size.pow(1.0 + alpha) / (1.0 + alpha),
    )
    largest = size.detach().reshape(-1, *y.shape).amax(dim=0)  # over the critics, if any
    normaliser = largest.clamp(min=min_priority).pow(alpha).mean(dim=-1)
    return (weights * per_sample).mean(dim=-1) / normaliser


def priority_td_error(q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """delta_i = y_i - Q_j(s_i, a_i) of the critic j with the larger |delta|, shape (K, B),
    from q of shape (critics, K, B): what prioritized replay ranks a transition by.

    With one critic it is y - Q. With twin critics |delta_i| = max(|delta_1,i|, |delta_2,i|),
    as LAP prescribes and as the reference code (sfujim/LAP-PAL, LAP_TD3.py and
    PER_TD3.py) computes priorities for both LAP and PER.
    """
    errors = y - q.detach()
    if errors.shape[0] == 1:
        return errors[0]
    larger = errors.abs().argmax(dim=0, keepdim=True)
    return errors.gather(0, larger).squeeze(0)


def critic_loss_for(config: AgentConfig) -> CriticLoss:
    """The loss ``config.critic_loss`` names, its parameters bound: mse, huber
    (``huber_delta``) or pal (``pal.alpha``, ``pal.min_priority``)."""
    if config.critic_loss == "huber":
        return partial(huber_loss, delta=config.huber_delta)
    if config.critic_loss == "pal":
        return partial(pal_loss, alpha=config.pal.alpha, min_priority=config.pal.min_priority)
    return mse_loss
