"""The one error a config problem raises, shared by every module that reads user input."""

from __future__ import annotations


class ConfigError(ValueError):
    """Invalid user input: a bad key, type or value. The message is one line."""


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none: what a
    one-line refusal quotes of an error raised by a library."""
    text = str(err)
    return text.splitlines()[0] if text.strip() else type(err).__name__
