"""The theory lab: the policy gradient theorems checked numerically on problems with exact answers.

``ddpglab.theory.tabular`` computes values, stationary distributions and the gradients of
Theorems 9.2, 9.3 and 9.5 (Zhao, ch. 9.3) exactly on finite MDPs;
``ddpglab.theory.estimators`` samples them (REINFORCE, baseline, TD error) and ascends them.
``ddpglab.theory.lqr`` does the same for the deterministic policy gradient on the discounted
linear-quadratic regulator (Lyapunov values, Riccati gain K*); ``lqr_env`` is the
``ddpglab/LQR-v0`` env and ``lqr_ddpg`` trains DDPG on it and compares its gain with K*.
``checks`` gathers every exact check for ``ddpglab theory check`` (``commands``);
``plots`` draws the figures of docs/theory.md.
"""
