"""The one strict YAML reader, for every file people write by hand (the table of CMS files, the
rule catalogue, the billing rules, pending updates, scenarios).

Every scalar stays text (the caller decides what is a number or a date, so no float ever touches a
rate); a key written twice in one mapping is an error, not a silent overwrite; each mapping and
list remembers the line it was written on, so an error can name the line.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from loaders.errors import LoadError


class YamlMapping(dict):
    """A mapping that remembers the line of each key (1-based)."""

    lines: dict[str, int]
    line: int


class YamlList(list):
    line: int


class StrictLoader(yaml.BaseLoader):
    """BaseLoader keeps every scalar as text; this one also refuses duplicate keys and records
    where each key was written."""


class YamlKeyError(Exception):
    def __init__(self, message: str, line: int, key: str):
        super().__init__(message)
        self.message, self.line, self.key = message, line, key


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> YamlMapping:
    mapping = YamlMapping()
    mapping.lines = {}
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise YamlKeyError("a mapping key must be text", key_node.start_mark.line + 1, str(key))
        if key in mapping:
            raise YamlKeyError(
                f"duplicate key {key!r} (first on line {mapping.lines[key]})",
                key_node.start_mark.line + 1,
                key,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: StrictLoader, node: yaml.SequenceNode) -> YamlList:
    items = YamlList(loader.construct_object(child, deep=True) for child in node.value)
    items.line = node.start_mark.line + 1
    return items


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_strict(text: str):
    """The document in ``text``; raises ``YamlKeyError`` for a repeated key, ``yaml.YAMLError`` for
    malformed YAML."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a BaseLoader subclass: text only


def read_text(path: str | Path) -> str:
    """A hand-written file's text, UTF-8; ``LoadError`` naming the file when it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise LoadError(path, f"cannot read the file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise LoadError(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def parse_document(text: str, path: str | Path):
    """:func:`load_strict` with every failure a ``LoadError`` naming the file, the line and, for a
    repeated key, the key."""
    try:
        return load_strict(text)
    except YamlKeyError as exc:
        raise LoadError(path, exc.message, line=exc.line, field=exc.key) from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise LoadError(path, f"not valid YAML: {exc.problem}", line=line) from exc


def starts_with_key(path: str | Path, key: str) -> bool:
    """Whether a file is YAML text whose first key is ``key`` (comments, blank lines and a ``---``
    before it allowed): how a hand-written source is recognised, by its content."""
    try:
        with Path(path).open("rb") as stream:
            head = stream.read(4096).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return False
    for line in head.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped != "---":
            return line.startswith(f"{key}:")
    return False
