"""A StudyDiff as Rich text, for the CLI and any terminal report of an amendment."""

from __future__ import annotations

import json

from rich.console import Group
from rich.text import Text

from trialstack.protocol.diff import ChangeKind, StudyDiff

_MARKS = {ChangeKind.ADDED: ("+", "green"), ChangeKind.REMOVED: ("-", "red"), ChangeKind.CHANGED: ("~", "yellow")}


def render_diff(diff: StudyDiff) -> Group:
    """One line per added, removed or changed entity, and one indented `field: old -> new` line per field."""
    lines = [Text(f"protocol version {diff.old_label} -> {diff.new_label}", style="bold")]
    if diff.is_empty:
        lines.append(Text("no changes"))
    for change in diff.changes:
        mark, colour = _MARKS[change.kind]
        lines.append(Text(f"{mark} {change.entity} {change.id} {change.kind.value}", style=colour))
        lines.extend(
            Text(f"    {field.field}: {json.dumps(field.old)} -> {json.dumps(field.new)}") for field in change.fields
        )
    return Group(*lines)
