"""The LAP-PAL equivalence (Fujimoto, Meger & Precup 2020, "An Equivalence between Loss
Functions and Non-Uniform Sampling in Experience Replay", NeurIPS), computed exactly.

On a buffer of N fixed TD errors delta_i = y_i - Q_i, with LAP's priorities
p_i = max(|delta_i|, m)^alpha and H the Huber loss of threshold m:

- LAP: sample i with P(i) = p_i / sum_j p_j and take the Huber loss. The expected
  gradient is sum_i P(i) d/dQ H(delta_i), whose i-th entry is -P(i) H'(delta_i).
- PAL: sample uniformly and take l(delta_i) / pbar, l PAL's per-sample loss and
  pbar = 1/N sum_j p_j (stopped gradient). Its i-th entry is -l'(delta_i) / (N pbar).

The two are equal because l'(x) = max(|x|, m)^alpha H'(x) = p(x) H'(x), term by term:
below m, l'(x) = m^alpha x = m^alpha H'(x); beyond, l'(x) = m |x|^alpha sign(x) =
|x|^alpha H'(x). Both gradients are computed here with autograd through the agent's own
loss functions (:mod:`ddpglab.critic_losses`), in float64. The agent's PAL normalises by
the batch's mean priority, not the buffer's: :func:`batch_pal_expected_gradient` estimates
how far that moves the expected gradient.
"""

from __future__ import annotations

import numpy as np
import torch

from ddpglab.critic_losses import huber_loss, pal_loss


def td_error_buffer(min_priority: float, size: int = 64, seed: int = 0) -> np.ndarray:
    """N fixed TD errors of both signs: about a third below m (|delta| in [0, m)), the rest
    from m to 10 m, and one at exactly m (where both losses turn linear)."""
    rng = np.random.default_rng(seed)
    below = rng.uniform(0.0, min_priority, size // 3)
    above = rng.uniform(min_priority, 10.0 * min_priority, size - size // 3 - 1)
    sizes = np.concatenate([below, above, [min_priority]])
    return sizes * rng.choice([-1.0, 1.0], size)


def lap_priorities(td_errors: np.ndarray, alpha: float, min_priority: float) -> np.ndarray:
    """p_i = max(|delta_i|, m)^alpha."""
    return np.maximum(np.abs(td_errors), min_priority) ** alpha


def _gradient(loss_of_q, td_errors: np.ndarray) -> np.ndarray:
    """d loss / dQ at Q = 0 with targets y = delta, so that y - Q = delta; shape (N,)."""
    y = torch.as_tensor(td_errors, dtype=torch.float64).unsqueeze(0)  # one member, B = N
    q = torch.zeros_like(y, requires_grad=True)
    loss_of_q(q, y).sum().backward()
    return q.grad.squeeze(0).numpy()


def huber_under_lap_gradient(
    td_errors: np.ndarray, alpha: float, min_priority: float
) -> np.ndarray:
    """d/dQ E_{i ~ P}[H(delta_i)], P(i) = p_i / sum_j p_j: the Huber loss (threshold m)
    with weights N P(i), whose buffer mean is the expectation under LAP sampling."""
    p = lap_priorities(td_errors, alpha, min_priority)
    weights = torch.as_tensor(len(p) * p / p.sum()).unsqueeze(0)
    return _gradient(lambda q, y: huber_loss(q, y, weights, min_priority), td_errors)


def pal_uniform_gradient(td_errors: np.ndarray, alpha: float, min_priority: float) -> np.ndarray:
    """d/dQ of PAL over the whole buffer: its uniform expectation, normalised by the mean
    priority of the whole buffer."""
    ones = torch.ones(1, len(td_errors), dtype=torch.float64)
    return _gradient(lambda q, y: pal_loss(q, y, ones, alpha, min_priority), td_errors)


def batch_pal_expected_gradient(
    td_errors: np.ndarray,
    alpha: float,
    min_priority: float,
    batch_size: int,
    draws: int = 20_000,
    seed: int = 0,
) -> np.ndarray:
    """A sampled estimate of E[d/dQ PAL] when each batch of B uniform draws (with
    replacement) is normalised by its own mean priority, as the agent does.

    Entry i of a batch's gradient is c_i l'(delta_i) / (B pbar_B), c_i the times i was
    drawn; since E[c_i / pbar_B] = (B / N) E[B / (p_i + S)], S the priorities of the
    other B - 1 draws, the expected gradient is the buffer-normalised one times
    pbar E[B / (p_i + S)]. That expectation is averaged over ``draws`` samples of S
    (shared by every i): far less noise than averaging whole batches' gradients.
    """
    p = lap_priorities(td_errors, alpha, min_priority)
    others = np.random.default_rng(seed).choice(p, (draws, batch_size - 1)).sum(axis=1)
    scale = p.mean() * (batch_size / (p[:, None] + others[None, :])).mean(axis=1)
    return pal_uniform_gradient(td_errors, alpha, min_priority) * scale
