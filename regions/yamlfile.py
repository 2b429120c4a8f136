"""YAML files with line numbers, so a problem in a region file or a rail spec names its file, line and key.

Kept apart from the spec models (pydantic, slow to import) because every command reads the region files, and
only a region that carries its rail inline needs the models.
"""

from __future__ import annotations

from typing import Any

import yaml


class SpecError(ValueError):
    """A spec (or region file) that does not validate; each line of the message is `file:line: key.path: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def node_lines(node: yaml.Node, path: tuple = ()) -> dict[tuple, int]:
    """Every key path of a composed YAML document -> its 1-based line, for error messages."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines.update(node_lines(value, (*path, key.value)))
            lines[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(node_lines(item, (*path, index)))
    return lines


def read_yaml(text: str, origin: str) -> tuple[Any, dict[tuple, int]]:
    """The document and its key-path line map; a YAML syntax error becomes a `SpecError` with its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        raise SpecError([f"{origin}:{line}: {exc.problem or exc}"]) from None
    return data, (node_lines(node) if node is not None else {})
