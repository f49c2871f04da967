"""Study specs: variants x seeds in one validated YAML file, as written (read and checked).

A spec names a base config (a preset, a config file, ``set`` overrides), the seeds, the
budget and the variants: an explicit list, ``axes`` whose product is taken, or both (each
listed variant crossed with the axes; a variant may carry axes of its own).
:mod:`ddpglab.study.variants` expands a spec into the configs of a :class:`Study`.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from ddpglab.config import ConfigError, SpecLoader, read_yaml_file, yaml_mapping
from ddpglab.strict_model import StrictModel

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*")
NAME_RULE = "letters, digits and . _ + = - (starting with a letter or digit)"
#: Where a variant's name goes on with its next part: "-" before a letter (report.name_parts).
NEW_PART = re.compile(r"-[A-Za-z]")


def reads_back_whole(fragment: str) -> bool:
    """Whether report.name_parts reads ``fragment`` back as one part of a variant's name:
    it starts with a letter and has no '-' before a letter."""
    return fragment[:1].isalpha() and not NEW_PART.search(fragment)


#: The largest seed count (``seeds: N``, ``--seeds N``): a count is expanded into a list of
#: seeds before anything else is checked, and a huge one would exhaust memory.
MAX_SEED_COUNT = 1_000_000

#: What a ``seeds`` entry that is neither a count nor a list is refused with.
SEED_COUNT_OR_LIST = "expected a count N (seeds 0..N-1) or a list of seeds, got '{}'"

#: Keys a study decides itself: its seeds and budget, and the runner's thread count.
STUDY_KEYS = ("train.seeds", "train.episodes", "train.steps", "train.torch_threads")


class StrictSpec(StrictModel):
    """A spec section: unknown keys, non-finite numbers and yes/no for numbers refused."""


def _check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"'{name}' is not a valid name: use {NAME_RULE}")
    return name


def _check_keys(overrides: dict[str, Any]) -> dict[str, Any]:
    for key in overrides:
        if key in STUDY_KEYS:
            raise ValueError(f"'{key}' is set by the study itself (use seeds, episodes or steps)")
    return overrides


class AxisSpec(StrictSpec):
    """One dimension of a product: a dotted config key and the values it takes, or, without
    a key, named bundles of overrides that set several keys together.

    ``values`` is a list (names show each value compactly: 10000 -> ``1e4``) or a mapping
    from a name fragment to a value. ``label`` prefixes the fragment (default: the key's
    last part; ``""`` for none): label ``cap`` and value 1e6 give ``cap1e6``. Without a
    key, ``values`` maps fragments to ``{key: value}`` bundles (label default ``""``):
    label ``vol`` and ``{"16": {agent.batch_size: 64, agent.updates_per_step: 0.25}}``
    give ``vol16``, setting both keys.
    """

    key: str | None = None
    values: list[Any] | dict[str, Any]
    label: str | None = None

    @field_validator("key")
    @classmethod
    def _not_a_study_key(cls, key: str | None) -> str | None:
        if key is not None:
            _check_keys({key: None})
        return key

    @field_validator("values", mode="before")
    @classmethod
    def _names_as_text(cls, values: Any) -> Any:
        # YAML reads the name 16 in `values: {16: ...}` as a number: it names all the same.
        if isinstance(values, dict):
            return {
                str(k) if isinstance(k, int | float) and not isinstance(k, bool) else k: v
                for k, v in values.items()
            }
        return values

    @field_validator("values")
    @classmethod
    def _not_empty(cls, values: list[Any] | dict[str, Any]) -> list[Any] | dict[str, Any]:
        if not values:
            raise ValueError("an axis needs at least one value")
        return values

    @model_validator(mode="after")
    def _bundles_without_a_key(self) -> AxisSpec:
        if self.key is not None:
            return self
        bundles = self.values.values() if isinstance(self.values, dict) else None
        if bundles is None or not all(isinstance(b, dict) and b for b in bundles):
            raise ValueError(
                "an axis without a key sets several keys: give its values as "
                "{name: {key: value, ...}}"
            )
        for bundle in bundles:
            _check_keys(bundle)
        return self

    @model_validator(mode="after")
    def _names_read_back_whole(self) -> AxisSpec:
        # Reports split a variant's name into parts where "-" precedes a letter
        # (report.name_parts): "thr-0.5" stays one part, "high-var" would read as two, and a
        # part that starts with no letter ("16") would read as the end of the one before.
        for fragment, _ in self.labelled_overrides():
            if reads_back_whole(fragment):
                continue
            if self.label and not reads_back_whole(self.label):
                fix = "change its label"
            else:
                fix = (
                    "give the axis a label, or name the values with a mapping {name: value}, "
                    "so that each name starts with a letter and has no '-' before a letter"
                )
            raise ValueError(
                f"axis value name '{fragment}': reports read a variant's name as parts that "
                f"start with a letter and end before '-' and a letter; {fix}"
            )
        return self

    def set_keys(self) -> list[str]:
        """The config keys this axis sets, each once."""
        if self.key is not None:
            return [self.key]
        return list(dict.fromkeys(k for bundle in self.values.values() for k in bundle))

    def labelled_overrides(self) -> list[tuple[str, dict[str, Any]]]:
        """(name fragment, the overrides it sets) for each value, in order."""
        if self.key is None:
            prefix = self.label or ""
            return [(f"{prefix}{name}", dict(bundle)) for name, bundle in self.values.items()]
        prefix = self.key.rsplit(".", 1)[-1] if self.label is None else self.label
        if isinstance(self.values, dict):
            return [(f"{prefix}{name}", {self.key: value}) for name, value in self.values.items()]
        return [(f"{prefix}{format_value(value)}", {self.key: value}) for value in self.values]


class BaseSpec(StrictSpec):
    """The config every variant starts from: preset, then config file, then ``set``."""

    preset: str | None = None
    config: str | None = Field(None, description="YAML config file, relative to the spec file")
    set: dict[str, Any] = {}

    _keys = field_validator("set")(_check_keys)


class VariantSpec(StrictSpec):
    """A named set of overrides, optionally crossed with axes of its own; ``preset``, if
    given, replaces the base's preset for this variant (the base's ``config`` and ``set``
    still apply on top of it)."""

    name: str
    preset: str | None = None
    set: dict[str, Any] = {}
    axes: list[AxisSpec] = []

    _name = field_validator("name")(_check_name)
    _keys = field_validator("set")(_check_keys)


Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


class StudySpec(StrictSpec):
    """A study: variants x seeds, each seed trained for the same budget."""

    name: str
    base: BaseSpec = BaseSpec()
    seeds: list[Seed] = Field(description="a count N (seeds 0..N-1) or a list of seeds")
    episodes: int | None = Field(None, gt=0, description="episodes per seed")
    steps: int | None = Field(None, gt=0, description="env steps per seed (instead of episodes)")
    variants: list[VariantSpec] = []
    axes: list[AxisSpec] = []

    _name = field_validator("name")(_check_name)

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_list(cls, seeds: Any) -> Any:
        # A yes/no never gets here: StrictModel refuses it first.
        if not isinstance(seeds, int | list):
            raise ValueError(SEED_COUNT_OR_LIST.format(seeds))
        if isinstance(seeds, int):
            if seeds < 1:
                raise ValueError("a seed count must be at least 1")
            if seeds > MAX_SEED_COUNT:
                raise ValueError(f"a seed count must be at most {MAX_SEED_COUNT}")
            return list(range(seeds))
        return seeds

    @model_validator(mode="after")
    def _consistent(self) -> StudySpec:
        if not self.seeds:
            raise ValueError("seeds: list at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: seeds must be distinct")
        if self.episodes is not None and self.steps is not None:
            raise ValueError("set at most one of episodes and steps")
        return self


def format_value(value: Any) -> str:
    """A value as a short name fragment: 10000 -> 1e4, 0.001 -> 1e-3, [64, 64] -> 64x64."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return _compact_number(value)
    if isinstance(value, list | tuple):
        return "x".join(format_value(v) for v in value)
    return str(value)


def _compact_number(x: int | float) -> str:
    """The shorter of plain and scientific notation, exact (no float round-off)."""
    d = Decimal(repr(x) if isinstance(x, float) else str(x))
    if not d.is_finite():
        return str(x)
    d = d.normalize()
    sign, digits, exponent = d.as_tuple()
    plain = format(d, "f")
    mantissa = "".join(map(str, digits))
    if len(mantissa) > 1:
        mantissa = f"{mantissa[0]}.{mantissa[1:]}"
    sci = f"{'-' if sign else ''}{mantissa}e{exponent + len(digits) - 1}"
    return sci if len(sci) < len(plain) else plain


# -- reading ------------------------------------------------------------------------------


def spec_error(origin: str, err: ValidationError) -> ConfigError:
    """The first problem of a spec that did not validate, as one line starting with ``origin``."""
    errors = err.errors()
    first = errors[0]
    if first["type"] == "missing":  # often the same mistake as an unknown key beside it:
        # `nme:` for `name:` is reported as the misspelt key, not as "name: Field required"
        parent = first["loc"][:-1]
        misspelt = [e for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == parent]
        if misspelt:
            unknown = ".".join(str(p) for p in misspelt[0]["loc"])
            required = ".".join(str(p) for p in first["loc"])
            return ConfigError(f"{origin}: unknown key '{unknown}' (a '{required}' is required)")
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return ConfigError(f"{origin}: unknown key '{where}'")
    message = first["msg"].removeprefix("Value error, ")
    return ConfigError(f"{origin}: {where}: {message}" if where else f"{origin}: {message}")


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec file; problems raise a one-line :class:`ConfigError`."""
    path = Path(path)
    data = read_yaml_file(path, "study spec", SpecLoader)
    expected = "(name, base, seeds, variants, ...)"
    return parse_spec(yaml_mapping(data, str(path), expected, empty=False), str(path))


def parse_spec(data: dict[str, Any], origin: str = "study spec") -> StudySpec:
    """Validate a spec given as a mapping."""
    try:
        return StudySpec.model_validate(data)
    except ValidationError as err:
        raise spec_error(origin, err) from None
