"""YAML name -> Transform class, filled by the ``register`` decorator; ``build`` turns a strategy
entry into a Transform, with errors that carry the entry's path."""

from __future__ import annotations

import importlib
from typing import Any

from augcli.errors import SchemaError
from augcli.config.schema import did_you_mean

REGISTRY: dict[str, type] = {}
_sequence: dict[str, int] = {}  # definition order, to list transforms by family

# Modules whose import registers transforms; keep in catalogue order.
_MODULES = (
    "augcli.transforms.geometric",
    "augcli.transforms.color",
    "augcli.transforms.noise",
    "augcli.transforms.blur",
    "augcli.transforms.erase",
    "augcli.transforms.policies",
    "augcli.transforms.mixing",
    "augcli.transforms.containers",
)


def register(name: str):
    """Class decorator: make a Transform available under ``name`` in strategies."""

    def deco(cls):
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"transform name {name!r} registered twice")
        cls.name = name
        REGISTRY[name] = cls
        _sequence.setdefault(name, len(_sequence))
        return cls

    return deco


def transform_modules() -> tuple[str, ...]:
    """The names of the modules that define the built-in transforms (imported by ``load_all``)."""
    return tuple(_MODULES)


def load_all() -> dict[str, type]:
    """Import every transform module (idempotent); return the registry in catalogue order.

    The order is that of ``_MODULES``, then of definition within a module, whatever order the
    modules happened to be imported in (so generated docs are stable).
    """
    for module in _MODULES:
        importlib.import_module(module)
    rank = {m: i for i, m in enumerate(_MODULES)}
    names = list(REGISTRY)
    names.sort(key=lambda n: (rank.get(REGISTRY[n].__module__, len(rank)), _sequence[n]))
    return {n: REGISTRY[n] for n in names}


def build(entry: Any, path: tuple = ()):
    """Build a Transform from a strategy entry: ``"hflip"``, ``{"rotate": {"degrees": 10}}``.

    Containers accept their child list directly: ``{"one_of": [...]}``.
    """
    load_all()
    if isinstance(entry, str):
        name, config = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        name, config = next(iter(entry.items()))
    else:
        raise SchemaError(path, f"expected a transform name or a one-key mapping {{name: {{params}}}}, got {entry!r}")
    if name not in REGISTRY:
        hint = did_you_mean(name, list(REGISTRY))
        raise SchemaError(path + (name,), f"unknown transform {name!r}{hint}; see `augcli transforms`")
    cls = REGISTRY[name]
    if config is None:
        config = {}
    if hasattr(cls, "from_config"):
        return cls.from_config(config, path + (name,))
    if not isinstance(config, dict):
        raise SchemaError(path + (name,), f"expected a mapping of parameters, got {config!r}")
    for key in config:
        if not isinstance(key, str):  # YAML allows any key; only names can be parameters
            raise SchemaError(path + (name,), f"expected parameter names, got the key {key!r}")
    try:
        return cls(**config)
    except SchemaError as err:
        raise SchemaError(path + (name,) + err.path, err.message) from None
