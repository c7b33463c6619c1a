"""Reading a declaration: YAML to plain data with a line per value, checked by the JSON Schema.

PyYAML composes the document into nodes that carry their marks; `parse` turns
them into plain dicts, lists and scalars and records, for each path of keys
and indexes, the line it starts on, so every later error (the schema's, an
import's, a condition's) names the file and line. The schema ships with the
package (`schema.json`) and is checked with `jsonschema`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

from .._errors import GraphError

__all__ = ["Path_", "Source", "parse", "read", "schema", "validate", "yaml_module"]

Path_ = tuple[str | int, ...]
"""Keys and indexes from the document root to a value."""

MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Source:
    """A parsed declaration: the data, its file and the line of every value."""

    file: str
    data: Any
    lines: Mapping[Path_, int]

    def line(self, path: Sequence[str | int]) -> int:
        """The line of the value at `path`, or of its nearest enclosing value."""
        key = tuple(path)
        while key and key not in self.lines:
            key = key[:-1]
        return self.lines.get(key, 1)

    def error(self, path: Sequence[str | int], message: str) -> GraphError:
        """A `GraphError` naming the file and the line of `path`."""
        return GraphError(f"{self.file}, line {self.line(path)}: {message}")


def yaml_module() -> Any:
    """The `yaml` module (PyYAML), or an ImportError naming the extra to install."""
    try:
        # Imported by name: PyYAML ships no type information, and its values stay `Any` here.
        return importlib.import_module("yaml")
    except ImportError:
        raise ImportError(
            "declarative workflows need PyYAML: pip install 'stepgraph[yaml]'"
        ) from None


def parse(text: str, file: str) -> Source:
    """Parse YAML `text` (from `file`, named in errors) into a `Source`.

    Raises:
        GraphError: a YAML syntax error, a duplicate key, a non-string key, or
            a document that is nested too deeply (recursive aliases).
    """
    yaml = yaml_module()
    loader = yaml.SafeLoader(text)
    lines: dict[Path_, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            raise GraphError(f"{file}, line 1: the file is empty; declare a workflow")
        data = _Walker(loader, file, lines).build(node, (), 0)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "malformed YAML"
        raise GraphError(f"{file}, line {line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise GraphError(f"{file}: YAML error: {exc}") from None
    finally:
        loader.dispose()
    return Source(file, data, lines)


class _Walker:
    __slots__ = ("file", "lines", "loader")

    def __init__(self, loader: Any, file: str, lines: dict[Path_, int]) -> None:
        self.loader = loader
        self.file = file
        self.lines = lines

    def build(self, node: Any, path: Path_, depth: int) -> Any:
        yaml = yaml_module()
        line = int(node.start_mark.line) + 1
        self.lines.setdefault(path, line)
        if depth > MAX_DEPTH:
            raise GraphError(f"{self.file}, line {line}: nested too deeply (a recursive alias?)")
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # `<<` merge keys
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                key_line = int(key_node.start_mark.line) + 1
                if not isinstance(key, str):
                    raise GraphError(f"{self.file}, line {key_line}: keys must be strings")
                if key in out:
                    raise GraphError(f"{self.file}, line {key_line}: duplicate key {key!r}")
                self.lines[(*path, key)] = key_line
                out[key] = self.build(value_node, (*path, key), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(v, (*path, i), depth + 1) for i, v in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def schema() -> dict[str, Any]:
    """The JSON Schema of declarative workflows (`stepgraph/declarative/schema.json`)."""
    text = resources.files(__package__ or "stepgraph.declarative").joinpath("schema.json")
    return cast(dict[str, Any], json.loads(text.read_text(encoding="utf-8")))


def validate(source: Source) -> None:
    """Check `source.data` against the schema.

    Raises:
        GraphError: the first problem (the deepest, most specific one), with its line.
    """
    try:
        from jsonschema import Draft202012Validator, ValidationError
        from jsonschema.exceptions import (
            best_match,  # pyright: ignore[reportUnknownVariableType]
        )
    except ImportError:
        raise ImportError(
            "declarative workflows need jsonschema: pip install 'stepgraph[yaml]'"
        ) from None
    validator = Draft202012Validator(schema())
    found = validator.iter_errors(source.data)  # pyright: ignore[reportUnknownMemberType]
    errors = cast(list[ValidationError], list(found))
    if not errors:
        return
    best = cast(ValidationError, best_match(errors))
    path = tuple(best.absolute_path)
    where = "/".join(str(p) for p in path) or "the document"
    raise source.error(path, f"{where}: {best.message}")


def read(path: str | Path) -> Source:
    """Read, parse and validate a declaration file.

    Raises:
        GraphError: the file is missing or unreadable, or malformed (with its line).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphError(f"cannot read workflow file {file}: {exc}") from None
    source = parse(text, str(file))
    validate(source)
    return source
