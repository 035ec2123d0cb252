"""The strategy file: YAML -> validated, typed ``Strategy``, with every error pointing at
``file:line: yaml.path: what was expected``.

Validation happens once, before any work: unknown keys (with "did you mean"), wrong types,
out-of-range values, and every transform of ``augment.pipeline`` is built (which validates it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from augcli.errors import SchemaError, StrategyError, UsageError, format_path
from augcli.config.schema import validate_mapping
from augcli.config.sections import LATER_SECTIONS, SCHEMA, check_rule_names

@dataclass
class Strategy:
    """A validated strategy: ``config`` has every default filled in; ``transforms`` are built."""

    path: str
    config: dict
    transforms: list
    lines: dict = field(default_factory=dict, repr=False)

    @property
    def seed(self) -> int:
        return self.config["seed"]

    def error(self, err: SchemaError) -> StrategyError:
        """A data-dependent strategy problem (e.g. an unknown class in a rule), located in the file."""
        return StrategyError(locate(err, self.path, self.lines, {}))

    @property
    def name(self) -> str:
        return Path(self.path).stem if self.path else "strategy"

    @property
    def sha256(self) -> str:
        """Hash of the resolved strategy (canonical JSON), so reports can tell strategies apart."""
        config = {k: v for k, v in self.config.items()
                  if k not in LATER_SECTIONS or v != SCHEMA[k].validate({}, (k,))}
        return hashlib.sha256(json.dumps(config, sort_keys=True, default=list).encode()).hexdigest()

    def section(self, name: str) -> dict:
        return self.config[name]

    def resolved(self) -> dict:
        """The config with every default filled in, inside the pipeline's entries too (each entry
        as its transform's ``to_config``: loading it back builds the same transforms)."""
        augment = {**self.config["augment"], "pipeline": [t.to_config() for t in self.transforms]}
        return {**self.config, "augment": augment}

    def to_yaml(self, resolved: bool = False) -> str:
        """The config as YAML; ``resolved``: with the pipeline's entries in full (``resolved``)."""
        return yaml.safe_dump(_plain(self.resolved() if resolved else self.config), sort_keys=False,
                              default_flow_style=None)


def _plain(value):
    """Tuples -> lists, recursively, for YAML/JSON output."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --- YAML with line numbers --------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """SafeLoader: tags that would construct Python objects are refused."""


def _compose(text: str, filename: str):
    try:
        loader = _Loader(text)  # the reader rejects control characters here, before any parsing
        return loader, loader.get_single_node()
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, max(err.position, 0)) + 1
        raise StrategyError(f"{filename}:{line}: invalid YAML: unacceptable character #x{err.character:04x}") from None
    except RecursionError:  # the composer recurses once per nesting level
        raise StrategyError(f"{filename}:1: invalid YAML: nested more than {MAX_DEPTH} levels deep") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 1
        problem = (err.problem or err.context or "invalid YAML").strip()
        raise StrategyError(f"{filename}:{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise StrategyError(f"{filename}: invalid YAML: {str(err).splitlines()[0]}") from None


_SAFE_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


# A strategy is a few hundred nodes; aliases can make a small file expand exponentially
# ("billion laughs") or into itself, so expansion is capped in size and depth.
MAX_NODES = 100_000
MAX_DEPTH = 64


def _to_python(loader, node, path: tuple, lines: dict, filename: str):
    """Build plain Python values from the node tree, recording the line of every path."""
    lines.setdefault(path, node.start_mark.line + 1)
    if len(path) > MAX_DEPTH or len(lines) > MAX_NODES:
        what = f"nested more than {MAX_DEPTH} levels deep" if len(path) > MAX_DEPTH else f"more than {MAX_NODES} values"
        raise StrategyError(f"{filename}:{node.start_mark.line + 1}: invalid YAML: {what} (a recursive or "
                            f"exponentially repeated alias?)")
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _SAFE_TAGS:
        raise StrategyError(f"{filename}:{node.start_mark.line + 1}: {format_path(path) or '<top>'}: "
                            f"unsupported YAML tag {node.tag!r}")
    if isinstance(node, yaml.MappingNode):
        try:
            loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or node.start_mark
            raise StrategyError(f"{filename}:{mark.line + 1}: {format_path(path) or '<top>'}: {err.problem}") from None
        out = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node, path, filename)
            if isinstance(key, (dict, list)) or key is None:
                raise StrategyError(f"{filename}:{key_node.start_mark.line + 1}: {format_path(path) or '<top>'}: expected a text key, got {key!r}")
            if key in out:
                raise StrategyError(
                    f"{filename}:{key_node.start_mark.line + 1}: {format_path(path + (key,))}: duplicate key {key!r}"
                )
            lines[path + (key,)] = key_node.start_mark.line + 1  # errors point at the key's line
            out[key] = _to_python(loader, value_node, path + (key,), lines, filename)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, item, path + (i,), lines, filename) for i, item in enumerate(node.value)]
    return _scalar(loader, node, path, filename)


def _scalar(loader, node, path, filename):
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as err:
        line = node.start_mark.line + 1
        raise StrategyError(f"{filename}:{line}: {format_path(path) or '<top>'}: {err.problem}") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        line = node.start_mark.line + 1
        raise StrategyError(f"{filename}:{line}: {format_path(path) or '<top>'}: cannot read the value ({str(err).split(';')[0]})") from None


def parse_yaml(text: str, filename: str) -> tuple[Any, dict]:
    """Parse YAML text; returns (value, {path: line})."""
    loader, node = _compose(text, filename)
    try:
        if node is None:
            return None, {}
        lines: dict = {}
        return _to_python(loader, node, (), lines, filename), lines
    finally:
        loader.dispose()


# --- overrides (--set PATH=VALUE) --------------------------------------------------------------

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def parse_override(expr: str) -> tuple[tuple, Any]:
    """``augment.pipeline[0].rotate.degrees=5`` -> (('augment', 'pipeline', 0, 'rotate', 'degrees'), 5)."""
    if "=" not in expr:
        raise UsageError(f"--set {expr}: expected PATH=VALUE, e.g. augment.copies=3")
    left, right = expr.split("=", 1)
    parts, pos = [], 0
    left = left.strip()
    while pos < len(left):
        if left[pos] == "." and parts:
            pos += 1
        m = _PART.match(left, pos)
        if not m:
            raise UsageError(f"--set {expr}: cannot read the path {left!r} (use keys and [index], e.g. augment.pipeline[0].rotate.degrees)")
        parts.append(m.group(1) if m.group(1) else int(m.group(2)))
        pos = m.end()
    if not parts:
        raise UsageError(f"--set {expr}: empty path")
    try:
        value = _override_value(right, expr) if right.strip() else None
    except (yaml.YAMLError, ValueError, RecursionError):
        raise UsageError(f"--set {expr}: the value is not valid YAML") from None
    return tuple(parts), value


def _override_value(text: str, expr: str):
    """The YAML value of ``--set``, refused before its aliases are expanded if the expansion would
    exceed the caps a strategy file has (MAX_NODES values, MAX_DEPTH levels)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size, height = _expanded_size(node, {}, set())
        if size > MAX_NODES or height > MAX_DEPTH:
            raise UsageError(f"--set {expr}: the value expands to more than {MAX_NODES:,} values or {MAX_DEPTH} levels, "
                             f"the caps of a whole strategy (strategy.MAX_NODES, MAX_DEPTH); a recursive or "
                             f"exponentially repeated alias?")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node, memo: dict, active: set) -> tuple[int, int]:
    """(values, levels) of ``node`` with every alias expanded, counted over the node graph without
    expanding it: each shared node is counted once and its size reused. A cycle counts as too deep."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        return MAX_NODES + 1, MAX_DEPTH + 1
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        children = []
    active.add(key)
    size, height = 1, 0
    for child in children:
        child_size, child_height = _expanded_size(child, memo, active)
        size, height = size + child_size, max(height, child_height)
        if size > MAX_NODES or height > MAX_DEPTH:
            break
    active.discard(key)
    memo[key] = size, height + 1
    return memo[key]


def apply_override(data: dict, path: tuple, value: Any, expr: str) -> None:
    node = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise UsageError(f"--set {expr}: {format_path(path[:i + 1])}: no such list item")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise UsageError(f"--set {expr}: {format_path(path[:i])}: is not a mapping")
        if node.get(part) is None:
            node[part] = [] if isinstance(nxt, int) else {}
        node = node[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last > len(node):
            raise UsageError(f"--set {expr}: {format_path(path)}: no such list item")
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise UsageError(f"--set {expr}: {format_path(path[:-1])}: is not a mapping")


# --- loading -----------------------------------------------------------------------------------

def load_strategy(path: str | Path, overrides: Sequence[str] = ()) -> Strategy:
    """Read, override and validate a strategy file; raises ``StrategyError`` (exit 2) with file:line."""
    filename = str(path)
    try:
        text = _read_strategy_file(filename).decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"{filename}: no such strategy file") from None
    except IsADirectoryError:
        raise UsageError(f"{filename}: is a folder, expected a YAML strategy file") from None
    except UnicodeDecodeError:
        raise StrategyError(f"{filename}:1: expected a UTF-8 YAML text file") from None
    except OSError as err:
        raise UsageError(f"{filename}: cannot read: {err.strerror}") from None
    return strategy_from_text(text, filename, overrides)


# A strategy is a few kilobytes; anything far larger is a wrong path, and a device or pipe
# (/dev/zero, a FIFO) would be read until memory runs out, so both are refused before reading.
MAX_FILE_BYTES = 1 << 20


def _read_strategy_file(filename: str) -> bytes:
    if stat.S_ISDIR(os.stat(filename).st_mode):
        raise IsADirectoryError(filename)
    # O_NONBLOCK: opening a FIFO that appeared after the check must not wait for a writer
    fd = os.open(filename, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{filename}: not a regular file (a device, pipe or socket); expected a YAML strategy file")
        data = fh.read(MAX_FILE_BYTES + 1)
    if max(info.st_size, len(data)) > MAX_FILE_BYTES:
        raise UsageError(f"{filename}: {max(info.st_size, len(data)):,} bytes, above the {MAX_FILE_BYTES:,} bytes "
                         f"a strategy file may have (strategy.MAX_FILE_BYTES); is this the right file?")
    return data


def strategy_from_text(text: str, filename: str = "<strategy>", overrides: Sequence[str] = ()) -> Strategy:
    data, lines = parse_yaml(text, filename)
    if data is None:
        raise StrategyError(f"{filename}:1: the strategy is empty; expected a mapping with dataset, augment, ...")
    if not isinstance(data, dict):
        raise StrategyError(f"{filename}:1: expected a mapping at the top level, got {type(data).__name__}")
    data = copy.deepcopy(data)
    overridden: dict[tuple, str] = {}
    for expr in overrides:
        opath, value = parse_override(expr)
        apply_override(data, opath, value, expr)
        overridden[opath] = expr
    # function-level: the config layer imports nothing from the runtime; the pipeline entries are
    # built (and so checked) against the transform registry only when a strategy is loaded
    from augcli.transforms.registry import build, load_all

    errors, config = [], None
    try:
        config = validate_mapping(SCHEMA, data, ())
    except SchemaError as err:
        errors += err.each
    # the entries are built even when another section has a mistake: every mistake in one run
    entries = config["augment"]["pipeline"] if config else _raw_pipeline(data)
    transforms = []
    for i, entry in enumerate(entries):
        try:
            transforms.append(build(entry, ("augment", "pipeline", i)))
        except SchemaError as err:
            errors += [e for e in err.each if not any(e.path == seen.path for seen in errors)]
    if config and not errors:
        try:
            check_rule_names(config["augment"]["rules"], load_all())  # the registry, even with no pipeline
        except SchemaError as err:
            errors += err.each
    if errors:
        messages = [locate(e, filename, lines, overridden) for e in sorted(errors, key=lambda e: _line(e, lines))]
        raise StrategyError(messages[0], messages) from None
    return Strategy(path=filename, config=config, transforms=transforms, lines=lines)


def _raw_pipeline(data: dict) -> list:
    """``augment.pipeline`` as validated alone, when the augment section did not validate as a whole
    (empty if it has a mistake of its own: that one is reported already)."""
    augment = data.get("augment")
    if not isinstance(augment, dict) or "pipeline" not in augment:
        return []
    try:
        return SCHEMA["augment"].fields["pipeline"].validate(augment["pipeline"], ("augment", "pipeline"))
    except SchemaError:
        return []


def _line(err: SchemaError, lines: dict) -> int:
    """The line ``err`` is reported at (for file order; 0 when none is known)."""
    for cut in range(len(err.path), -1, -1):
        if err.path[:cut] in lines:
            return lines[err.path[:cut]]
    return 0


def locate(err: SchemaError, filename: str, lines: dict, overridden: dict) -> str:
    """``file:line: path: message`` using the deepest known line, or the ``--set`` that caused it."""
    where = format_path(err.path) or "<top>"
    for opath, expr in overridden.items():
        if err.path[: len(opath)] == opath or opath[: len(err.path)] == err.path:
            return f"--set {expr}: {where}: {err.message}"
    for cut in range(len(err.path), -1, -1):
        if err.path[:cut] in lines:
            return f"{filename}:{lines[err.path[:cut]]}: {where}: {err.message}"
    return f"{filename}: {where}: {err.message}"
