"""YAML read with positions: every key path of a document maps to the line it was written on,
so a validation error can name the file, the line and the key.

::

    data, lines = load_yaml_with_lines(text, path="exp.yaml")
    lines.line_of(("faults", 0, "at"))      # -> 23 (1-based)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from lab.errors import ConfigError

Path_ = tuple[Any, ...]


@dataclass
class LineMap:
    """1-based line of each key path (a tuple of keys and list indexes)."""

    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def _walk(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            out[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), out)
            # the key line wins over the value line (a block value starts on the next line)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), out)


def load_yaml_with_lines(text: str, *, path: str) -> tuple[Any, LineMap]:
    """Parse one YAML document; a syntax error becomes a ConfigError naming the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"not valid YAML: {exc.problem or exc}", path=path, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path=path) from exc
    lines = LineMap()
    if node is not None:
        _walk(node, (), lines.lines)
    return data, lines
