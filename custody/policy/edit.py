"""Precise edits of a template's text (owners, threshold) that keep its comments and layout.

Rotation and threshold changes are policy changes like any other: the edited template is what gets
scheduled on the vault's timelock, and what the vault record keeps afterwards.
"""

from __future__ import annotations

from typing import Any

import yaml

from custody.exceptions import TemplateError
from custody.types import Address, parse_address


def _scalar_span(text: str, node: yaml.ScalarNode) -> tuple[int, int]:
    lines = text.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: node.start_mark.line]) + node.start_mark.column
    end = sum(len(line) for line in lines[: node.end_mark.line]) + node.end_mark.column
    return start, end


def _owners_node(text: str) -> yaml.MappingNode:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    for key, value in root.value if root is not None else []:
        if key.value == "owners" and isinstance(value, yaml.MappingNode):
            return value
    raise TemplateError("the template has no owners section")


def _get(mapping: yaml.MappingNode, name: str) -> Any:
    return next((v for k, v in mapping.value if k.value == name), None)


def replace_owner(text: str, old: str, new: str) -> str:
    """The template with owner ``old`` replaced by ``new`` (labels and everything else untouched)."""
    old_a, new_a = parse_address(old, what="old owner"), parse_address(new, what="new owner")
    signers = _get(_owners_node(text), "signers")
    for item in signers.value if signers is not None else []:
        node = _get(item, "address") if isinstance(item, yaml.MappingNode) else item
        if node is not None and Address(parse_address(node.value, what="owner")) == old_a:
            start, end = _scalar_span(text, node)
            return text[:start] + new_a + text[end:]
    raise TemplateError(f"{old_a} is not an owner in this template")


def set_threshold(text: str, threshold: int) -> str:
    node = _get(_owners_node(text), "threshold")
    if node is None:
        raise TemplateError("the template has no owners.threshold")
    start, end = _scalar_span(text, node)
    return text[:start] + str(int(threshold)) + text[end:]
