"""Hyperparameter search on Optuna: search specs with priors, parallel trials, pruning."""
