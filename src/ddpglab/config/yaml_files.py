"""Reading YAML that users write (presets, config files, study and search specs), with the
one-line :class:`ConfigError` every reader gives for a file that is missing, unreadable,
not YAML, or not a mapping.

Two dialects, kept as their readers had them: configs are read as PyYAML's YAML 1.1
(``yaml.SafeLoader``), specs with :class:`SpecLoader`, which also reads ``1e4`` and
``1e-3`` as numbers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ddpglab.config.errors import ConfigError


class SpecLoader(yaml.SafeLoader):
    """YAML that reads 1e4 and 1e-3 as numbers (YAML 1.1 wants 1.0e+4), as people write them."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, origin: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """The document in ``text``; ``origin`` (a path, "preset NAME") starts the error.

    A parse error is refused as ``ORIGIN: not valid YAML (PROBLEM, line N)``, N the line
    where the parser stopped, so the user need not search the file for it.
    """
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin}: not valid YAML ({_problem(err, text)})") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{origin}: not valid YAML (nested too deeply)") from None


def _problem(err: yaml.YAMLError, text: str) -> str:
    """PyYAML's first line (what it was doing), and the line where it stopped, if known."""
    first = str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is not None:
        return f"{first}, line {mark.line + 1}"
    if isinstance(err, yaml.reader.ReaderError):  # a character PyYAML refuses to read
        return f"{first}, line {text.count(chr(10), 0, err.position) + 1}"
    return first


def read_yaml_file(path: Path, what: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """The document in the file ``path``; ``what`` ("config file", "study spec") names it
    in the errors for a file that is missing or cannot be read."""
    try:  # is_file() too can fail: a name longer than the file system allows
        if path.is_dir():
            raise ConfigError(f"{what} {path} is a folder, not a file")
        if not path.is_file():
            raise ConfigError(f"{what} not found: {path}")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {what} {path}: {err}") from None
    return parse_yaml(text, str(path), loader)


def yaml_mapping(data: Any, origin: str, expected: str, empty: bool = True) -> dict[str, Any]:
    """``data`` if it is a mapping; an empty document is ``{}`` where ``empty`` allows it.

    Anything else is refused as ``ORIGIN: expected a mapping EXPECTED``, ``expected``
    saying what the mapping holds ("of config sections").
    """
    if data is None and empty:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping {expected}")
    return data
