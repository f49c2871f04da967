"""Actor and critic MLPs as ensembles of K independent members.

Every layer holds a weight of shape (K, in, out) and a bias of shape (K, 1, out); a
forward pass is one batched matrix product per layer (``torch.baddbmm``), so K members
cost one kernel call instead of K. Member k's parameters are drawn from its own seed,
so they are the same whether it is trained alone or beside others, and so are its
products: a lone member's matrix-vector product runs beside a zero dummy (see
:func:`batched_affine`).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def with_dummy_member(t: torch.Tensor) -> torch.Tensor:
    """(1, ...) -> (2, ...): the tensor, then zeros of its shape."""
    return torch.cat([t, torch.zeros_like(t)])


def batched_affine(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """x w + b per member: x (m, B, in), w (m, in, out), b (m, 1, out) or None -> (m, B, out).

    Member k's result is the same bits for every m. For a batch of one, torch computes a
    product whose weight is one wide, in or out (a critic's last layer; the input gradient
    of a layer fed one feature), with a matrix-vector kernel that rounds differently from
    the batched one; so a lone member's such product runs beside a zero dummy, as a batch
    of two, and the dummy is dropped. Autograd carries the member's gradients through
    unchanged. Every other shape gives the same bits for m = 1 and m > 1 (checked for
    batches of 1 to 256 and widths of 1 to 400), so it skips the dummy's cost.
    """
    if x.shape[0] != 1 or 1 not in w.shape[1:]:
        return torch.bmm(x, w) if b is None else torch.baddbmm(b, x, w)
    x, w = with_dummy_member(x), with_dummy_member(w)
    y = torch.bmm(x, w) if b is None else torch.baddbmm(with_dummy_member(b), x, w)
    return y[:1]


class EnsembleMLP(nn.Module):
    """K independent MLPs ``in_dim -> hidden... -> out_dim`` with ReLU between layers.

    Args:
        in_dim: input features.
        hidden: hidden layer widths.
        out_dim: output features.
        seeds: one seed per member; member k's initial weights depend on ``seeds[k]`` only.
        final_layer_init: if given, the output layer is drawn from U(-v, v) (Lillicrap et
            al. use 3e-3); otherwise every layer uses PyTorch's ``nn.Linear`` default,
            U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: list[int],
        out_dim: int,
        seeds: list[int],
        final_layer_init: float | None = None,
    ):
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        k_members = len(seeds)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            self.weights.append(nn.Parameter(torch.empty(k_members, fan_in, fan_out)))
            self.biases.append(nn.Parameter(torch.empty(k_members, 1, fan_out)))
        self._init(seeds, final_layer_init)

    @torch.no_grad()
    def _init(self, seeds: list[int], final_layer_init: float | None) -> None:
        last = len(self.weights) - 1
        for k, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(seed)
            for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                bound = 1.0 / math.sqrt(w.shape[1])
                if i == last and final_layer_init is not None:
                    bound = final_layer_init
                w[k].uniform_(-bound, bound, generator=gen)
                b[k].uniform_(-bound, bound, generator=gen)

    def forward(self, x: torch.Tensor, members: int | None = None) -> torch.Tensor:
        """x: (K, B, in_dim) -> (K, B, out_dim); with ``members`` = m, only the first m
        members run and x is (m, B, in_dim)."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if members is not None:
                w, b = w[:members], b[:members]
            x = batched_affine(x, w, b)
            if i < last:
                x = torch.relu(x)
        return x

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's parameters alone (for per-seed checkpoints)."""
        return {name: p[k].detach().cpu().clone() for name, p in self.named_parameters()}

    def load_member_state(self, k: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, p in self.named_parameters():
                p[k].copy_(state[name])


class Actor(EnsembleMLP):
    """Deterministic policy mu(s) in [-1, 1]^act_dim: MLP with tanh output."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], seeds: list[int], **kw):
        super().__init__(obs_dim, hidden, act_dim, seeds, **kw)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(super().forward(obs))


class Critic(EnsembleMLP):
    """Action value Q(s, a): MLP on concat(s, a) to a scalar, shape (K, B, 1)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], seeds: list[int], **kw):
        super().__init__(obs_dim + act_dim, hidden, 1, seeds, **kw)

    def forward(  # type: ignore[override]
        self, obs: torch.Tensor, act: torch.Tensor, members: int | None = None
    ) -> torch.Tensor:
        return super().forward(torch.cat([obs, act], dim=-1), members)


class LinearActor(nn.Module):
    """Linear policy mu(s) = s W per member, W of shape (K, obs_dim, act_dim).

    No bias and no tanh, so a linear state feedback u = -K x (the LQR's optimal policy) is
    exactly in its class; its actions are unbounded, the trainer clips exploratory ones to
    [-1, 1] and the env clips the rest. W is drawn from U(-v, v), v = ``final_layer_init``
    if given (its only layer is its output layer), else 1/sqrt(obs_dim).
    """

    member_state = EnsembleMLP.member_state
    load_member_state = EnsembleMLP.load_member_state

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: list[int],
        seeds: list[int],
        final_layer_init: float | None = None,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(len(seeds), obs_dim, act_dim))
        bound = 1.0 / math.sqrt(obs_dim) if final_layer_init is None else final_layer_init
        with torch.no_grad():
            for k, seed in enumerate(seeds):
                gen = torch.Generator().manual_seed(seed)
                self.weight[k].uniform_(-bound, bound, generator=gen)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs: (K, B, obs_dim) -> (K, B, act_dim)."""
        return batched_affine(obs, self.weight, None)


class QuadraticCritic(EnsembleMLP):
    """Q(s, a) = sum_{i <= j} w_ij z_i z_j + b per member, z = (s, a): a quadratic form plus
    a constant. The LQR's Q_K(x, u) = z^T H z + c is one, so the class holds it exactly;
    linear terms are left out because they vanish there and only add variance.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], seeds: list[int], **kw):
        dim = obs_dim + act_dim
        rows, cols = torch.triu_indices(dim, dim)
        super().__init__(len(rows), [], 1, seeds, **kw)
        self.register_buffer("_rows", rows, persistent=False)
        self.register_buffer("_cols", cols, persistent=False)

    def forward(  # type: ignore[override]
        self, obs: torch.Tensor, act: torch.Tensor, members: int | None = None
    ) -> torch.Tensor:
        z = torch.cat([obs, act], dim=-1)
        return super().forward(z[..., self._rows] * z[..., self._cols], members)


ACTORS: dict[str, type[nn.Module]] = {"mlp": Actor, "linear": LinearActor}
CRITICS: dict[str, type[nn.Module]] = {"mlp": Critic, "quadratic": QuadraticCritic}
