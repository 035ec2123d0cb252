"""Typed parameter specs shared by the strategy file and the transforms.

A spec validates a raw YAML value once, at construction, and returns the normalised value; it also
describes itself (type, range, default) for ``augcli transforms`` and the generated docs.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from augcli.errors import SchemaError, SchemaErrors

_MISSING = object()


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 100 else text[:96] + " ..."  # a huge value must not flood the one-line error


def _yaml_text(value: Any) -> str:
    """A default as a user would write it in YAML (null, true, [a, b])."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_text(v)}" for k, v in value.items()) + "}"
    return _fmt(value) if isinstance(value, float) else str(value)


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """A "did you mean" suffix for a misspelt name, or an empty string."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_number(value: Any) -> bool:
    # an integer beyond float range (YAML reads any number of digits) is not a usable number
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= _FLOAT_MAX


_FLOAT_MAX = 1.7976931348623157e308


@dataclass(frozen=True)
class Param:
    """Base spec: ``default`` (``_MISSING`` means required) and a one-line ``doc``."""

    default: Any = _MISSING
    doc: str = field(default="", kw_only=True)

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def validate(self, value: Any, path: tuple) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def type_name(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def range_text(self) -> str:
        return ""

    def default_text(self) -> str:
        return "required" if self.required else _yaml_text(self.default)


@dataclass(frozen=True)
class Number(Param):
    """A real number (or an integer when ``integer``) in ``[low, high]``; ``None`` allowed if ``nullable``."""

    low: float = -math.inf
    high: float = math.inf
    integer: bool = False
    nullable: bool = False

    def validate(self, value, path):
        if value is None and self.nullable:
            return None
        ok = _is_number(value) and (not self.integer or float(value).is_integer())
        if ok and math.isfinite(float(value)) and self.low <= value <= self.high:
            return int(value) if self.integer else float(value)
        raise SchemaError(path, f"expected {self._expected()}, got {_show(value)}")

    def _expected(self) -> str:
        kind = "an integer" if self.integer else "a number"
        rng = self.range_text()
        return f"{kind} in {rng}" if rng else kind

    def type_name(self):
        return ("int" if self.integer else "float") + (" or null" if self.nullable else "")

    def range_text(self):
        if math.isinf(self.low) and math.isinf(self.high):
            return ""
        lo = "-inf" if math.isinf(self.low) else _fmt(self.low)
        hi = "inf" if math.isinf(self.high) else _fmt(self.high)
        return f"[{lo}, {hi}]"


def Float(default=_MISSING, low=-math.inf, high=math.inf, doc="", nullable=False) -> Number:
    return Number(default=default, doc=doc, low=low, high=high, nullable=nullable)


def Int(default=_MISSING, low=-math.inf, high=math.inf, doc="", nullable=False) -> Number:
    return Number(default=default, doc=doc, low=low, high=high, integer=True, nullable=nullable)


@dataclass(frozen=True)
class Bool(Param):
    def validate(self, value, path):
        if isinstance(value, bool):
            return value
        raise SchemaError(path, f"expected true or false, got {_show(value)}")

    def type_name(self):
        return "bool"


@dataclass(frozen=True)
class Choice(Param):
    choices: tuple = ()

    def validate(self, value, path):
        if isinstance(value, bool):  # YAML 1.1 reads off/no as false and on/yes as true
            word = "on" if value else "off"
            if word in self.choices:
                return word
        elif value in self.choices:
            return value
        options = ", ".join(_show(c) for c in self.choices)
        hint = did_you_mean(value, [str(c) for c in self.choices]) if isinstance(value, str) else ""
        raise SchemaError(path, f"expected one of {options}, got {_show(value)}{hint}")

    def type_name(self):
        return "choice"

    def range_text(self):
        return "{" + ", ".join(str(c) for c in self.choices) + "}"


@dataclass(frozen=True)
class Text(Param):
    nullable: bool = False

    def validate(self, value, path):
        if value is None and self.nullable:
            return None
        if isinstance(value, str) and value:
            return value
        raise SchemaError(path, f"expected a non-empty string, got {_show(value)}")

    def type_name(self):
        return "string" + (" or null" if self.nullable else "")


@dataclass(frozen=True)
class Range(Param):
    """A sampling interval ``[a, b]`` inside ``[low, high]``.

    A single number ``v`` means ``[around - v, around + v]`` (``degrees: 15`` -> ``[-15, 15]``,
    ``scale: 0.1`` -> ``[0.9, 1.1]``), which is how users write symmetric ranges; without a centre
    (``around=None``) it means the fixed value ``[v, v]`` (``bits: 4``).
    """

    low: float = -math.inf
    high: float = math.inf
    around: float | None = 0.0
    integer: bool = False

    def validate(self, value, path):
        pair = self._as_pair(value)
        if pair is not None:
            a, b = pair
            if self.low <= a <= b <= self.high:
                return (int(a), int(b)) if self.integer else (float(a), float(b))
        raise SchemaError(path, f"expected {self._expected()}, got {_show(value)}")

    def _as_pair(self, value):
        if _is_number(value) and math.isfinite(value):
            if self.around is None:  # no centre: a single number is a fixed value
                return (value, value) if (not self.integer or float(value).is_integer()) else None
            if value < 0:
                return None
            return (self.around - value, self.around + value)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
            if all(math.isfinite(v) for v in value) and (
                not self.integer or all(float(v).is_integer() for v in value)
            ):
                return tuple(value)
        return None

    def _expected(self) -> str:
        pair = f"a pair [a, b] with a <= b within {self.range_text()}"
        if self.around is None:
            return f"a number or {pair}"
        vmax = min(self.high - self.around, self.around - self.low)
        centre = "" if self.around == 0 else f", meaning [{_fmt(self.around)} - v, {_fmt(self.around)} + v]"
        return f"a number v in [0, {_fmt(vmax)}]{centre}, or {pair}"

    def type_name(self):
        return "range"

    def range_text(self):
        lo = "-inf" if math.isinf(self.low) else _fmt(self.low)
        hi = "inf" if math.isinf(self.high) else _fmt(self.high)
        return f"[{lo}, {hi}]"

    def default_text(self):
        return "required" if self.required else f"[{_fmt(self.default[0])}, {_fmt(self.default[1])}]"


@dataclass(frozen=True)
class Size(Param):
    """An image size: an integer ``s`` (square) or ``[height, width]``; ``None`` if ``nullable``."""

    low: int = 1
    high: int = 16384
    nullable: bool = False

    def validate(self, value, path):
        if value is None and self.nullable:
            return None
        hw = None
        if _is_number(value) and float(value).is_integer():
            hw = (int(value), int(value))
        elif isinstance(value, (list, tuple)) and len(value) == 2 and all(
            _is_number(v) and float(v).is_integer() for v in value
        ):
            hw = (int(value[0]), int(value[1]))
        if hw and all(self.low <= v <= self.high for v in hw):
            return hw
        raise SchemaError(
            path, f"expected a size s or [height, width] with integers in [{self.low}, {self.high}], got {_show(value)}"
        )

    def type_name(self):
        return "size" + (" or null" if self.nullable else "")

    def range_text(self):
        return f"[{self.low}, {self.high}]"


@dataclass(frozen=True)
class Mapping(Param):
    """A nested section: a dict of named specs; unknown keys are errors with a suggestion."""

    fields: dict = field(default_factory=dict)

    def validate(self, value, path):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise SchemaError(path, f"expected a mapping with keys {', '.join(self.fields)}, got {_show(value)}")
        return validate_mapping(self.fields, value, path)

    def type_name(self):
        return "mapping"

    def default_text(self):
        return "{}"


def validate_mapping(fields: dict, value: dict, path: tuple) -> dict:
    """Validate ``value`` against ``fields``: unknown keys, missing required keys, then each field.
    Every key is checked: several mistakes are raised together (``SchemaErrors``), in key order."""
    errors = []
    for key in value:
        if key not in fields:
            hint = did_you_mean(key, list(fields))
            known = ", ".join(fields)
            errors.append(SchemaError(path + (key,), f"unknown key {_show(key)}{hint}; expected one of {known}"))
    out = {}
    for name, spec in fields.items():
        try:
            if name in value:
                out[name] = spec.validate(value[name], path + (name,))
            elif isinstance(spec, Mapping):
                out[name] = spec.validate({}, path + (name,))
            elif spec.required:
                raise SchemaError(path + (name,), f"missing required key {name!r}")
            else:
                out[name] = spec.default
        except SchemaError as err:
            errors.append(err)
    if errors:
        raise errors[0] if len(errors) == 1 else SchemaErrors(errors)
    return out


@dataclass(frozen=True)
class NumberList(Param):
    """A list of numbers, each in ``[low, high]``; ``None`` allowed if ``nullable``."""

    low: float = -math.inf
    high: float = math.inf
    nullable: bool = False

    def validate(self, value, path):
        if value is None and self.nullable:
            return None
        if not isinstance(value, (list, tuple)) or not value:
            raise SchemaError(path, f"expected a non-empty list of numbers, got {_show(value)}")
        item = Number(low=self.low, high=self.high)
        return tuple(item.validate(v, path + (i,)) for i, v in enumerate(value))

    def type_name(self):
        return "list of numbers" + (" or null" if self.nullable else "")

    def range_text(self):
        return Number(low=self.low, high=self.high).range_text()


@dataclass(frozen=True)
class ListOf(Param):
    """A list whose items all follow ``item`` (e.g. a list of rule mappings)."""

    item: Param = None

    def validate(self, value, path):
        if value is None:
            return [] if self.default is not _MISSING else value
        if not isinstance(value, list):
            raise SchemaError(path, f"expected a list, got {_show(value)}")
        return [self.item.validate(v, path + (i,)) for i, v in enumerate(value)]

    def type_name(self):
        return f"list of {self.item.type_name()}"


@dataclass(frozen=True)
class Name(Param):
    """A name (string); integers are accepted and turned into text (class names like 6 or "6")."""

    def validate(self, value, path):
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
        raise SchemaError(path, f"expected a name, got {_show(value)}")

    def type_name(self):
        return "name"


@dataclass(frozen=True)
class NumberMap(Param):
    """A mapping of names to numbers in ``[low, high]`` (e.g. ``max_abs: {angle: 20}``)."""

    low: float = -math.inf
    high: float = math.inf

    def validate(self, value, path):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise SchemaError(path, f"expected a mapping of names to numbers, got {_show(value)}")
        number = Number(low=self.low, high=self.high)
        return {str(k): number.validate(v, path + (k,)) for k, v in value.items()}

    def type_name(self):
        return "mapping of numbers"


@dataclass(frozen=True)
class Either(Param):
    """The first of ``options`` that accepts the value (e.g. ``"max"`` or a positive integer)."""

    options: tuple = ()

    def validate(self, value, path):
        if value is None and self.default is None:
            return None
        for option in self.options:
            try:
                return option.validate(value, path)
            except SchemaError:
                continue
        expected = " or ".join(o.range_text() if isinstance(o, Choice) else o._expected() for o in self.options)
        raise SchemaError(path, f"expected {expected}, got {_show(value)}")

    def type_name(self):
        return " or ".join(o.type_name() for o in self.options)
