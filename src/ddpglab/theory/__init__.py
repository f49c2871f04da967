"""The theory lab: the policy gradient theorems checked numerically on problems with exact answers.

``ddpglab.theory.tabular`` computes values, stationary distributions and the gradients of
Theorems 9.2, 9.3 and 9.5 (Zhao, ch. 9.3) exactly on finite MDPs;
``ddpglab.theory.estimators`` samples them (REINFORCE, baseline, TD error) and ascends them.
"""
