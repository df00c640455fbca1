"""Map a position inside a YAML scalar's value back to its line and column in the file.

A rule error says "line 2, column 7 of the expression"; the author needs the place in the YAML file.
Plain and quoted scalars fold line breaks into spaces and drop indentation, block scalars (`|`, `>`)
strip their indentation, quoted ones have escapes. The value is a subsequence of the source text once
the indentation of a block is removed, so a greedy alignment of value characters to source characters
is exact for everything but escapes, where it still lands on the right token.
"""

from __future__ import annotations

from ruamel.yaml.nodes import ScalarNode

_BLANK = " \t\n\r"


def scalar_position(text: str, node: ScalarNode, expression_at: tuple[int, int]) -> tuple[int, int]:
    """The 0-based (line, column) in `text` of the 1-based (line, column) inside the node's value."""
    value = str(node.value)
    offset = _offset_in(value, *expression_at)
    positions = _align(value, _source_chars(text, node))
    if not positions:
        index = node.start_mark.index
    elif offset < len(positions):
        index = positions[offset]
    else:  # an error at the end of the expression ("unexpected end"): just after its last character
        index = positions[-1] + 1
    return _line_column(text, index)


def _offset_in(value: str, line: int, column: int) -> int:
    lines = value.split("\n")
    line = min(max(line, 1), len(lines))
    return sum(len(text) + 1 for text in lines[: line - 1]) + max(column, 1) - 1


def _line_column(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index), index - line_start


def _source_chars(text: str, node: ScalarNode) -> list[tuple[str, int]]:
    """The source characters the value was made from, with their index in `text`."""
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("|", ">"):
        return _block_chars(text, start, end)
    if node.style in ('"', "'"):
        start, end = start + 1, end - 1
    return [(text[index], index) for index in range(start, end)]


def _block_chars(text: str, start: int, end: int) -> list[tuple[str, int]]:
    """The content of a block scalar without its header line and indentation; breaks kept as '\\n'."""
    header_end = text.find("\n", start, end)
    if header_end < 0:
        return []
    lines: list[tuple[int, str]] = []
    position = header_end + 1
    for line in text[position:end].split("\n"):
        lines.append((position, line))
        position += len(line) + 1
    indent = next((len(line) - len(line.lstrip(" ")) for _, line in lines if line.strip()), 0)
    chars: list[tuple[str, int]] = []
    for line_start, line in lines:
        skip = min(indent, len(line) - len(line.lstrip(" ")))
        chars.extend((line[column], line_start + column) for column in range(skip, len(line)))
        chars.append(("\n", line_start + len(line)))
    return chars


def _align(value: str, source: list[tuple[str, int]]) -> list[int]:
    """For each value character, the index of the source character it came from (greedy, in order)."""
    positions: list[int] = []
    cursor = 0
    for char in value:
        found = cursor
        while found < len(source):
            candidate = source[found][0]
            if candidate == char or (char in _BLANK and candidate in _BLANK):
                break
            found += 1
        if found == len(source):
            break
        positions.append(source[found][1])
        cursor = found + 1
    return positions
