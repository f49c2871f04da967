"""The one error a config problem raises, shared by every module that reads user input."""

from __future__ import annotations


class ConfigError(ValueError):
    """Invalid user input: a bad key, type or value. The message is one line."""
