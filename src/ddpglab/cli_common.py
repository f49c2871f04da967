"""What every ``ddpglab`` command module shares: one-line errors, their exit status, the
argument types and the options that several commands take.

The command modules (``cli`` and each package's ``commands``) import this module; it
imports none of them, so the command line has one direction: ``cli`` -> commands -> here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ddpglab.study.spec import MAX_SEED_COUNT

EXIT_USAGE = 2

#: Characters that str.splitlines() (and a terminal) may break a line at. Error messages
#: quote user input (keys, env ids, paths) that can hold them; they are printed escaped.
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(message: str) -> str:
    """``message`` with its line breaks written as escapes (``\\n``), so it stays one line."""
    return message.translate(_LINE_BREAKS)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}\n")


class LazyHelp(str):
    """A help text whose full form is computed only when help is shown (with
    :class:`LazyHelpFormatter`): a list that takes a heavy import, such as the replay kinds
    (the registry imports torch), then costs nothing to a command that does not ask for it.
    As a string it is the short form."""

    full: Callable[[], str]

    def __new__(cls, short: str, full: Callable[[], str]) -> LazyHelp:
        text = super().__new__(cls, short)
        text.full = full
        return text


class LazyHelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, with each :class:`LazyHelp` in its full form."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help
        return help_text.full() if isinstance(help_text, LazyHelp) else help_text


def _integer_at_least(text: str, minimum: int, too_small: str) -> int:
    """``text`` as an integer >= ``minimum``; else an argparse refusal (``too_small`` below)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer: '{text}'") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{too_small}: '{text}'")
    return value


def seed(text: str) -> int:
    """An argument type: a seed, an integer >= 0 (the config checks the upper bound)."""
    return _integer_at_least(text, 0, "a seed is an integer >= 0")


def parse_seeds(text: str) -> list[int]:
    """``--seeds 5`` means seeds 0..4; ``--seeds 1,2,3`` lists them. argparse names the
    option in front of these messages, so they do not repeat it."""
    if "," in text:
        return [seed(s.strip()) for s in text.split(",") if s.strip()]
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a count >= 1 or a list like 1,2,3: '{text}'")
    if count > MAX_SEED_COUNT:
        raise argparse.ArgumentTypeError(f"a count allows at most {MAX_SEED_COUNT} members")
    return list(range(count))


def positive_int(text: str) -> int:
    """An argument type: an integer >= 1."""
    return _integer_at_least(text, 1, "expected a positive integer")


def add_backend_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--backend`` and ``--address``: where ``what`` (jobs, trials) run."""
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help=f"where {what} run: local worker processes (default), or Ray tasks of "
        "--threads CPUs each (extra: ray)",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="with --backend ray: the Ray cluster to join ('auto' or HOST:PORT); "
        "default: start Ray on this machine",
    )
