"""YAML text to plain data plus a map from every JSON pointer back to its line and column.

We compose the node graph with ruamel's safe, pure-Python loader and build the values ourselves:
that keeps each node's position, reports duplicate keys instead of silently keeping the last, and
reads `3.5` as Decimal("3.5") (never a binary float) because the definition is hashed exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from trialstack.protocol.problems import Finding, escape_pointer_token
from trialstack.protocol.yaml_scalars import scalar_position

_TAG = "tag:yaml.org,2002:"
# Aliases let a small file stand for an exponentially large one (a "billion laughs" alias bomb); the values
# built from a document are counted and the document refused past this many. A large study has tens of thousands.
MAX_VALUES = 1_000_000
# Deeper nesting than this is refused where it starts (a study definition is a dozen levels deep).
MAX_DEPTH = 200


class _TooLarge(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


@dataclass
class YamlSource:
    """The data of one YAML document and where each pointer's key and value start (0-based)."""

    file: str
    text: str
    data: Any = None
    parsed: bool = False  # the text is well-formed YAML with one document, so `data` is meaningful
    values: dict[str, Node] = field(default_factory=dict)
    keys: dict[str, Node] = field(default_factory=dict)

    def locate(
        self, pointer: str, *, at_key: bool = False, expression_at: tuple[int, int] | None = None
    ) -> tuple[int, int]:
        """The 1-based line and column of a pointer's value, key, or a position inside its expression text."""
        while pointer not in self.values and pointer:
            pointer = pointer.rsplit("/", 1)[0]
        node = (self.keys.get(pointer) if at_key else None) or self.values.get(pointer)
        if node is None:
            return (1, 1)
        if expression_at is not None and isinstance(node, ScalarNode):
            line, column = scalar_position(self.text, node, expression_at)
        else:
            line, column = node.start_mark.line, node.start_mark.column
        return (line + 1, column + 1)


def compose_yaml(text: str, file: str) -> tuple[YamlSource, list[Finding]]:
    """Parse `text`; malformed YAML gives one finding and no data, other findings leave the data usable."""
    source = YamlSource(file=file, text=text)
    try:
        root = YAML(typ="safe", pure=True).compose(text)
    except RecursionError:
        return source, [_too_deep(text)]
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line, mark.column) if mark is not None else (0, 0)
        reason = " ".join(part for part in (error.context, error.problem) if part) or "malformed YAML"
        return source, [Finding("", f"malformed YAML: {reason}", position=(line + 1, column + 1))]
    except YAMLError as error:
        return source, [Finding("", f"malformed YAML: {error}")]
    if root is None:
        return source, [Finding("", "the file is empty: a study definition is a YAML mapping")]
    findings: list[Finding] = []
    try:
        source.data = _Builder(source, findings).build(root, "", frozenset())
    except _TooLarge as error:
        source.values.clear()
        source.keys.clear()
        mark = error.node.start_mark
        message = f"the document expands to more than {MAX_VALUES:,} values through its aliases (an alias bomb?)"
        return source, [Finding("", message, position=(mark.line + 1, mark.column + 1))]
    except RecursionError:
        return source, [_too_deep(text)]
    source.parsed = True
    return source, findings


def _too_deep(text: str) -> Finding:
    """Where the nesting first goes deeper than MAX_DEPTH, found by walking the parser's events (no recursion)."""
    depth = 0
    try:
        for event in YAML(typ="safe", pure=True).parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    return Finding(
                        "",
                        f"nested more than {MAX_DEPTH} levels deep (a study definition needs about a dozen)",
                        position=(mark.line + 1, mark.column + 1),
                    )
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        pass
    return Finding("", "nested too deeply to be read", position=(1, 1))


class _Builder:
    def __init__(self, source: YamlSource, findings: list[Finding]) -> None:
        self.source = source
        self.findings = findings
        self.built = 0

    def build(self, node: Node, pointer: str, ancestors: frozenset[int]) -> Any:
        self.built += 1
        if self.built > MAX_VALUES:
            raise _TooLarge(node)
        self.source.values.setdefault(pointer, node)
        if id(node) in ancestors:
            self.findings.append(Finding(pointer, "a YAML alias refers to one of its own parents (recursive data)"))
            return None
        inside = ancestors | {id(node)}
        if isinstance(node, MappingNode):
            return self._mapping(node, pointer, inside)
        if isinstance(node, SequenceNode):
            return [self.build(child, f"{pointer}/{index}", inside) for index, child in enumerate(node.value)]
        return self._scalar(node, pointer)

    def _mapping(self, node: MappingNode, pointer: str, ancestors: frozenset[int]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or str(key_node.tag) == _TAG + "merge":
                what = "merge keys (<<)" if isinstance(key_node, ScalarNode) else "keys that are lists or mappings"
                position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                self.findings.append(
                    Finding(pointer, f"{what} are not supported in a study definition", position=position)
                )
                continue
            key = str(key_node.value)
            child = f"{pointer}/{escape_pointer_token(key)}"
            if key in first_seen:
                line = first_seen[key].start_mark.line + 1
                position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                message = f"duplicate key '{key}' (first given on line {line})"
                self.findings.append(Finding(child, message, position=position))
                continue
            first_seen[key] = key_node
            self.source.keys[child] = key_node
            result[key] = self.build(value_node, child, ancestors)
        return result

    def _scalar(self, node: Node, pointer: str) -> Any:
        tag, text = str(node.tag), str(node.value)
        if tag == _TAG + "str" or tag == _TAG + "timestamp":
            return text  # dates stay text: the model parses the fields that are dates
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return text.lower() == "true"
        if tag == _TAG + "int":
            digits = text.replace("_", "")
            try:
                return int(digits, 0)
            except ValueError:
                return int(digits, 10)
        if tag == _TAG + "float":
            try:
                return Decimal(text.replace("_", ""))
            except InvalidOperation:
                return text  # .inf and .nan have no place in a protocol; the model rejects the text
        self.findings.append(Finding(pointer, f"unsupported YAML tag {tag}"))
        return text
