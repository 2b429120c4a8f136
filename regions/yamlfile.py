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


#: libyaml's parser where PyYAML was built with it (its wheels are), else PyYAML's own: every command reads every
#: region file and the first ingest every rail spec, and the pure-Python parser took most of that start-up (76 ms
#: against 5 ms for the 33 files in the repository, with the same documents and lines).
_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(text: str, origin: str) -> tuple[Any, dict[tuple, int]]:
    """The document and its key-path line map; a YAML syntax error becomes a `SpecError` with its line.

    The text is parsed once: the document is constructed from the same node tree that gives the lines. A syntax
    error is worded by PyYAML's own parser, which names the offending character (a tab, say) where libyaml does not.
    """
    try:
        return _parse(text, _FastLoader)
    except yaml.MarkedYAMLError:
        try:
            return _parse(text, yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 if mark else 0
            raise SpecError([f"{origin}:{line}: {exc.problem or exc}"]) from None


def _parse(text: str, loader_class: type) -> tuple[Any, dict[tuple, int]]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, (node_lines(node) if node is not None else {})
