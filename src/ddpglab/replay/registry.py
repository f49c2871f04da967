"""The replay strategies there are, found rather than listed.

A strategy is a :class:`~ddpglab.replay.storage.ReplayBuffer` subclass that declares its own
``kind = "name"``. :func:`strategies` finds them in two places, the way pytest finds its
plugins:

* every module of the ``ddpglab.replay`` package (so a new file ``replay/foo.py`` with
  ``class FooReplay(UniformReplay): kind = "foo"`` is a strategy with no other edit);
* the entry-point group ``ddpglab.replay`` of installed distributions, each entry point
  naming a strategy class (``foo = "mypackage.replay:FooReplay"``), for strategies that
  live in other packages. The class's ``kind`` is what counts, not the entry point's name.

A subclass that does not set ``kind`` itself (a test double, a base for other strategies)
is not a strategy of its own. Two classes that claim the same kind are refused.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from types import ModuleType

from ddpglab.replay.storage import ReplayBuffer

#: The entry-point group other packages register strategy classes in.
ENTRY_POINT_GROUP = "ddpglab.replay"


class RegistryError(RuntimeError):
    """The strategies found contradict each other, or an entry point names no strategy:
    a packaging mistake, not bad user input."""


def strategies() -> dict[str, type[ReplayBuffer]]:
    """Every registered strategy by kind, in listing order (see :func:`collect`).

    Discovery imports modules, so it runs once per process; the dict returned is a copy.
    """
    return dict(_discovered())


@functools.cache
def _discovered() -> dict[str, type[ReplayBuffer]]:
    return discover()


def rediscover() -> None:
    """Forget what was found: the next :func:`strategies` looks again (after a distribution
    was installed into this process, or an entry point was patched in a test)."""
    _discovered.cache_clear()


def discover() -> dict[str, type[ReplayBuffer]]:
    """Find the strategies now, uncached: the package's modules, then the entry points."""
    return collect([*package_strategies(), *entry_point_strategies()])


def collect(classes: Iterable[type[ReplayBuffer]]) -> dict[str, type[ReplayBuffer]]:
    """Strategies by kind, refusing two classes that claim one kind.

    Ordered by the ``listing_order`` each class declares, then by kind: the shipped strategies hold
    the order they were added in (uniform, the baseline, first), so configs list their
    sections as they always did; strategies added later keep the default and follow, in
    alphabetical order.
    """
    found: dict[str, type[ReplayBuffer]] = {}
    for cls in classes:
        other = found.setdefault(cls.kind, cls)
        if other is not cls:
            raise RegistryError(
                f"replay kind '{cls.kind}' is claimed by both {_name(other)} and {_name(cls)}"
            )
    return dict(sorted(found.items(), key=lambda item: (listing_order(item[1]), item[0])))


def listing_order(cls: type[ReplayBuffer]) -> int:
    """The ``listing_order`` a strategy declares itself; a subclass of a shipped strategy
    does not inherit its parent's place."""
    return vars(cls).get("listing_order", ReplayBuffer.listing_order)


def package_strategies() -> Iterator[type[ReplayBuffer]]:
    """The strategy classes defined in the modules of this package."""
    # The folder, not the imported package object: this module is imported by the package.
    folder = str(Path(__file__).parent)
    for info in pkgutil.iter_modules([folder]):
        module = importlib.import_module(f"{__package__}.{info.name}")
        yield from _defined_in(module)


def entry_point_strategies() -> Iterator[type[ReplayBuffer]]:
    """The strategy classes that installed distributions register in ``ddpglab.replay``."""
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        cls = entry_point.load()
        if not declares_kind(cls):
            raise RegistryError(
                f"entry point '{entry_point.name}' in group '{ENTRY_POINT_GROUP}' names "
                f"{entry_point.value}, which is not a ReplayBuffer subclass declaring its kind"
            )
        yield cls


def declares_kind(obj: object) -> bool:
    """Whether ``obj`` is a ReplayBuffer subclass that sets ``kind`` itself."""
    return isinstance(obj, type) and issubclass(obj, ReplayBuffer) and "kind" in vars(obj)


def _defined_in(module: ModuleType) -> Iterator[type[ReplayBuffer]]:
    # Only classes defined here: a module that imports a strategy to subclass it does not
    # register that strategy a second time.
    for obj in vars(module).values():
        if declares_kind(obj) and obj.__module__ == module.__name__:
            yield obj


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
