"""``python -m ddpglab`` and the ``ddpglab`` command."""

import sys


def run() -> int:
    """The ``ddpglab`` command: :func:`ddpglab.cli.main`. A Ctrl-C that comes while the CLI
    is still importing ends like a later one: one line and status 130, no traceback."""
    try:
        from ddpglab.cli import main
    except KeyboardInterrupt:
        print("ddpglab: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
