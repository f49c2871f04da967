"""``python -m ddpglab`` is the ``ddpglab`` command."""

import sys

from ddpglab.cli import main

sys.exit(main())
