"""A line-aware reader over YAML node trees, collecting every problem instead of stopping at the first.

Scalars are kept as their source text: YAML 1.1 would read an unquoted ``0x…`` address as an integer
and ``08:00`` as a sexagesimal number; each field parser decides how to read its text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


class Reader:
    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.root: yaml.Node | None = None
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 if mark else 1
            self.problems.append(Problem(file, line, "<document>", f"not valid YAML: {exc.problem}"))
        except yaml.YAMLError as exc:
            self.problems.append(Problem(file, 1, "<document>", f"not valid YAML: {exc}"))

    def error(self, node: yaml.Node | None, field: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(Problem(self.file, line, field, message))

    def mapping(
        self,
        node: yaml.Node | None,
        field: str,
        *,
        allowed: Iterable[str],
        required: Iterable[str] = (),
    ) -> dict[str, yaml.Node]:
        """Keys → value nodes; reports non-mappings, duplicate, unknown and missing keys."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, field or "<document>", "must be a mapping (key: value)")
            return {}
        allowed = set(allowed)
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            path = f"{field}.{key}" if field else str(key)
            if key is None:
                self.error(key_node, field or "<document>", "keys must be plain names")
            elif key in result:
                self.error(key_node, path, "duplicate key")
            elif key not in allowed:
                hint = _closest(key, allowed)
                self.error(key_node, path, f"unknown key {key!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
            else:
                result[key] = value_node
        for key in required:
            if key not in result:
                self.error(node, f"{field}.{key}" if field else key, "is required")
        return result

    def sequence(self, node: yaml.Node | None, field: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, field, "must be a list")
            return []
        return list(node.value)

    def text(self, node: yaml.Node | None, field: str) -> str | None:
        """The scalar's source text (stripped), or None after reporting a non-scalar."""
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, field, "must be a single value, not a list or mapping")
            return None
        return str(node.value).strip()

    def exact_scalar(self, node: yaml.Node | None, field: str, raw: str) -> bool:
        """Amounts must not be bare YAML floats: a YAML reader turns ``0.30000000000000004`` into a binary
        fraction. Quote them (``"0.3"``) so that every tool reads the same exact decimal."""
        if isinstance(node, yaml.ScalarNode) and node.style is None and node.tag == "tag:yaml.org,2002:float":
            self.error(node, field, f'{raw} is a bare YAML float; write the amount as a quoted decimal string, "{raw}"')
            return False
        return True

    def integer(self, node: yaml.Node | None, field: str, *, minimum: int | None = None) -> int | None:
        raw = self.text(node, field)
        if raw is None:
            return None
        try:
            value = int(raw.replace("_", ""), 10)
        except ValueError:
            self.error(node, field, f"must be a whole number, got {raw!r}")
            return None
        if minimum is not None and value < minimum:
            self.error(node, field, f"must be at least {minimum}, got {value}")
            return None
        return value

    def boolean(self, node: yaml.Node | None, field: str) -> bool | None:
        raw = self.text(node, field)
        if raw is None:
            return None
        lowered = raw.lower()
        if lowered in ("true", "yes", "on"):
            return True
        if lowered in ("false", "no", "off"):
            return False
        self.error(node, field, f"must be true or false, got {raw!r}")
        return None

    def string_list(self, node: yaml.Node | None, field: str) -> tuple[str, ...]:
        values = []
        for i, item in enumerate(self.sequence(node, field)):
            raw = self.text(item, f"{field}[{i}]")
            if raw:
                values.append(raw)
            elif raw == "":
                self.error(item, f"{field}[{i}]", "must not be empty")
        return tuple(values)

    @staticmethod
    def line(node: yaml.Node | None) -> int:
        return node.start_mark.line + 1 if node is not None else 1


def _closest(key: str, allowed: set[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return matches[0] if matches else None
