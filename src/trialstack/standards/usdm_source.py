"""Read a USDM JSON file: syntax, USDM version, id references, then the typed model, every problem located.

USDM objects point at each other by id (`encounterId`, `activityIds`, ...). A reference to an id that
no object has is reported at its JSON pointer, as is a reference to the wrong kind of object for the
references the importer follows. Lines and columns are looked up only when there is something to
report (composing a large file with positions takes a moment).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from trialstack.protocol.problems import StudyDefinitionError, StudyProblem, pointer_of
from trialstack.protocol.yaml_source import YamlSource, compose_yaml
from trialstack.standards.usdm_model import Wrapper

SUPPORTED_MAJOR = 4
MAX_DEPTH = 200
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_VERSION = re.compile(r"^(\d+)(?:\.\d+)*$")
_INSTANCES = ("ScheduledActivityInstance", "ScheduledDecisionInstance")


@dataclass
class UsdmSource:
    """The parsed JSON with every object's pointer by id, and lazy line/column lookup for messages."""

    file: str
    text: str
    data: Any = None
    pointers: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    _positions: YamlSource | None = None

    def locate(self, pointer: str) -> tuple[int, int]:
        if self._positions is None:
            self._positions = compose_yaml(self.text, self.file)[0]
        return self._positions.locate(pointer)

    def problem(self, pointer: str, message: str) -> StudyProblem:
        line, column = self.locate(pointer)
        return StudyProblem(self.file, line, column, pointer or "/", message)

    def pointer(self, object_id: str, *fields: str | int) -> str:
        """The pointer of a field of the object with `object_id`."""
        return self.pointers.get(object_id, "") + pointer_of(*fields)


def read_usdm(text: str, file: str) -> tuple[UsdmSource, Wrapper]:
    """The checked model of a USDM v4 file; StudyDefinitionError with located problems otherwise."""
    source = UsdmSource(file, text)
    try:
        source.data = json.loads(text)
    except json.JSONDecodeError as error:
        problem = StudyProblem(file, error.lineno, error.colno, "/", f"not valid JSON: {error.msg}")
        raise StudyDefinitionError(file, [problem]) from None
    except RecursionError:
        raise StudyDefinitionError(file, [_too_deep(text, file)]) from None
    if _depth(source.data) > MAX_DEPTH:
        raise StudyDefinitionError(file, [_too_deep(text, file)])
    data = source.data
    if not isinstance(data, dict) or "study" not in data:
        raise StudyDefinitionError(
            file, [source.problem("", "not a USDM file: expected an object with 'study' and 'usdmVersion'")]
        )
    _check_version(source, data.get("usdmVersion"))
    _index(source, data, "")
    problems = [source.problem(pointer, message) for pointer, message in _dangling(source, data, "")]
    if problems:
        raise StudyDefinitionError(file, problems)
    try:
        wrapper = Wrapper.model_validate(data)
    except ValidationError as error:
        problems = [
            source.problem(pointer_of(*err["loc"]), f"USDM {data.get('usdmVersion')}: {err['msg']}")
            for err in error.errors(include_url=False)
        ]
        raise StudyDefinitionError(file, problems) from None
    problems = [source.problem(pointer, message) for pointer, message in _wrong_kinds(source, wrapper)]
    if problems:
        raise StudyDefinitionError(file, problems)
    return source, wrapper


def _depth(data: Any) -> int:
    """How deep arrays and objects nest (iteratively: the checks below recurse, so they get bounded input)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _too_deep(text: str, file: str) -> StudyProblem:
    """Where the JSON first nests deeper than MAX_DEPTH arrays and objects (strings skipped, no recursion)."""
    depth = 0
    for token in _STRUCTURE.finditer(text):
        if token[0] in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, token.start()) + 1
                column = token.start() - (text.rfind("\n", 0, token.start()) + 1) + 1
                message = f"nested more than {MAX_DEPTH} levels deep (a USDM document needs about twenty)"
                return StudyProblem(file, line, column, "/", message)
        elif token[0] in "]}":
            depth -= 1
    return StudyProblem(file, 1, 1, "/", "nested too deeply to be read")


def _check_version(source: UsdmSource, version: object) -> None:
    if not isinstance(version, str):
        raise StudyDefinitionError(
            source.file, [source.problem("", "no usdmVersion: cannot tell which USDM version this is")]
        )
    match = _VERSION.match(version.strip())
    if match is None or int(match[1]) != SUPPORTED_MAJOR:
        message = f"USDM {version} is not supported: TrialStack reads USDM {SUPPORTED_MAJOR}.x"
        raise StudyDefinitionError(source.file, [source.problem("/usdmVersion", message)])


def _index(source: UsdmSource, node: Any, pointer: str) -> None:
    """Record every object's pointer and instanceType by id; a repeated id is a problem of its own."""
    if isinstance(node, dict):
        object_id = node.get("id")
        if isinstance(object_id, str):
            if object_id in source.pointers:
                message = f"id {object_id!r} is used twice (first at {source.pointers[object_id]})"
                raise StudyDefinitionError(source.file, [source.problem(pointer + "/id", message)])
            source.pointers[object_id] = pointer
            source.types[object_id] = str(node.get("instanceType", ""))
        for key, value in node.items():
            _index(source, value, f"{pointer}{pointer_of(key)}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _index(source, value, f"{pointer}/{index}")


def _dangling(source: UsdmSource, node: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """Every `...Id` / `...Ids` value that names no object in the file."""
    if isinstance(node, dict):
        for key, value in node.items():
            at = f"{pointer}{pointer_of(key)}"
            if key != "id" and key.endswith("Id") and isinstance(value, str) and value not in source.pointers:
                yield at, f"{key} refers to {value!r}, which no object in the file has as its id"
            elif key != "id" and key.endswith("Ids") and isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, str) and item not in source.pointers:
                        yield f"{at}/{index}", f"{key} refers to {item!r}, which no object in the file has as its id"
            else:
                yield from _dangling(source, value, at)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _dangling(source, value, f"{pointer}/{index}")


def _wrong_kinds(source: UsdmSource, wrapper: Wrapper) -> Iterator[tuple[str, str]]:
    """References the importer follows that point at the wrong kind of object."""

    def expect(
        owner: str, key: str, target: str | None, *kinds: str, index: int | None = None
    ) -> Iterator[tuple[str, str]]:
        if target is not None and source.types.get(target) not in kinds:
            where = source.pointer(owner, key) if index is None else source.pointer(owner, key, index)
            found = source.types.get(target) or "an object without instanceType"
            yield where, f"{key} refers to {target!r} ({found}); expected {' or '.join(kinds)}"

    for version in wrapper.study.versions:
        for design in version.study_designs:
            for encounter in design.encounters:
                yield from expect(encounter.id, "scheduledAtId", encounter.scheduled_at_id, "Timing")
            for activity in design.activities:
                for n, bc in enumerate(activity.biomedical_concept_ids):
                    yield from expect(activity.id, "biomedicalConceptIds", bc, "BiomedicalConcept", index=n)
                for n, surrogate in enumerate(activity.bc_surrogate_ids):
                    yield from expect(activity.id, "bcSurrogateIds", surrogate, "BiomedicalConceptSurrogate", index=n)
                yield from expect(activity.id, "timelineId", activity.timeline_id, "ScheduleTimeline")
            for timeline in design.schedule_timelines:
                yield from expect(timeline.id, "entryId", timeline.entry_id, *_INSTANCES)
                for instance in timeline.instances:
                    yield from expect(instance.id, "encounterId", instance.encounter_id, "Encounter")
                    yield from expect(instance.id, "epochId", instance.epoch_id, "StudyEpoch")
                    yield from expect(instance.id, "defaultConditionId", instance.default_condition_id, *_INSTANCES)
                    for n, activity_id in enumerate(instance.activity_ids):
                        yield from expect(instance.id, "activityIds", activity_id, "Activity", index=n)
                for timing in timeline.timings:
                    yield from expect(
                        timing.id,
                        "relativeFromScheduledInstanceId",
                        timing.relative_from_scheduled_instance_id,
                        *_INSTANCES,
                    )
                    yield from expect(
                        timing.id,
                        "relativeToScheduledInstanceId",
                        timing.relative_to_scheduled_instance_id,
                        *_INSTANCES,
                    )
            for criterion in design.eligibility_criteria:
                yield from expect(
                    criterion.id, "criterionItemId", criterion.criterion_item_id, "EligibilityCriterionItem"
                )
