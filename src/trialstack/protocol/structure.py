"""Plain data to a StudyDefinition, reporting every structural error and still building what it can.

Pydantic lists all type errors in one pass, but then gives no model, so the cross-reference and
schedule checks could not run. Here the parts in error are pruned (an unknown key is dropped; a
visit, item or check with a bad field is left out) and validation repeats, so one run reports the
structural *and* the semantic problems. The ids of pruned parts are kept, so nothing is reported as
a dangling reference merely because its target had a typo.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.problems import Finding, pointer_of

_OPTIONAL_SECTIONS = frozenset({"eligibility", "randomization", "supply", "blinding", "kris"})
# Which list holds which kind of entity, by the pointer of the list with indices replaced by "*".
_ENTITY_KINDS = {
    "/sites": "site",
    "/arms": "arm",
    "/epochs": "epoch",
    "/codelists": "codelist",
    "/schedule/visits": "visit",
    "/forms": "form",
    "/forms/*/items": "item",
    "/edit_checks": "edit_check",
    "/consent": "consent",
    "/supply/depots": "depot",
    "/eligibility/criteria": "criterion",
}


_PATTERNS = {
    r"^[A-Z][A-Z0-9_]*$": "is not an identifier: upper-case letters, digits and _, starting with a letter",
    r"^[A-Z][A-Z0-9_.-]*$": "is not a rule id: upper-case letters, digits, _ . and -, starting with a letter",
    r"^[A-Za-z0-9][A-Za-z0-9_-]*$": "is not a site id: letters, digits, _ and -",
    r"^[A-Z0-9][A-Z0-9_-]*$": "is not a study id: upper-case letters, digits, _ and -",
    r"^[A-Z]{2}$": "is not an ISO 3166-1 alpha-2 country code (US, DE, FR, ...)",
}


@dataclass
class StructureResult:
    """The definition (None if a required part is unusable) and what was left out to build it."""

    definition: StudyDefinition | None
    data: Any = None
    findings: list[Finding] = field(default_factory=list)
    pruned: set[tuple[str, str]] = field(default_factory=set)
    kept: dict[int, list[int]] = field(default_factory=dict)

    def original_pointer(self, pointer: str) -> str:
        """Translate a pointer into the definition (built without pruned parts) to one into the file."""
        if not self.kept or not pointer:
            return pointer
        tokens: list[str | int] = []
        current = self.data
        for token in pointer.split("/")[1:]:
            if isinstance(current, list) and token.isdigit() and int(token) < len(current):
                index = int(token)
                tokens.append(self.kept.get(id(current), list(range(len(current))))[index])
                current = current[index]
            else:
                key = token.replace("~1", "/").replace("~0", "~")
                tokens.append(key)
                current = current.get(key) if isinstance(current, dict) else None
        return pointer_of(*tokens)


def build_definition(data: Any, *, max_rounds: int = 20) -> StructureResult:
    """Validate `data` as a StudyDefinition; prune and retry until it validates or cannot be repaired."""
    result = StructureResult(definition=None, data=data)
    if not isinstance(data, dict):
        result.findings.append(
            Finding("", "a study definition is a YAML mapping with keys such as study, schedule, forms")
        )
        return result
    kept = result.kept  # id(list) -> original index of each remaining element
    for round_number in range(max_rounds):
        try:
            result.definition = StudyDefinition.model_validate(data)
            return result
        except ValidationError as error:
            errors = [err for err in error.errors(include_url=False) if not _echo_of_inner_error(err)]
        located = [(_locate(data, err["loc"], kept), err) for err in errors]
        if round_number == 0:  # later rounds only repeat what pruning caused (an emptied list)
            result.findings.extend(_findings(located))
        targets = [_prune_target(data, path, err) for (path, _), err in located]
        if any(target is None for target in targets):
            return result
        _prune(data, [target for target in targets if target is not None], kept, result.pruned)
    return result


def _echo_of_inner_error(err: ErrorDetails) -> bool:
    """A list long enough in the file is "too short" only because elements failed: not a problem of its own."""
    wanted = err.get("ctx", {}).get("min_length")
    given = err.get("input")
    return err["type"] == "too_short" and isinstance(given, list) and isinstance(wanted, int) and len(given) >= wanted


def _locate(data: Any, loc: tuple[int | str, ...], kept: dict[int, list[int]]) -> tuple[list[Any], str]:
    """The path of a pydantic error in the current data, and its pointer in the original file.

    Segments that do not exist in the data (union member tags, a missing key) end the data path;
    a missing or unknown key stays in the pointer so the message can name it.
    """
    path: list[Any] = []
    original: list[str | int] = []
    current = data
    for segment in loc:
        if isinstance(current, list) and isinstance(segment, int) and segment < len(current):
            path.append(segment)
            original.append(kept.get(id(current), list(range(len(current))))[segment])
            current = current[segment]
        elif isinstance(current, dict) and isinstance(segment, str):
            original.append(segment)
            if segment not in current:
                break
            path.append(segment)
            current = current[segment]
        else:
            break
    return path, pointer_of(*original)


def _findings(located: list[tuple[tuple[list[Any], str], ErrorDetails]]) -> list[Finding]:
    """One finding per pointer: the alternatives of a union (int | Decimal) are merged into one message."""
    by_pointer: dict[str, list[ErrorDetails]] = {}
    for (_, pointer), err in located:
        by_pointer.setdefault(pointer, []).append(err)
    findings = []
    for pointer, errs in by_pointer.items():
        if len(errs) > 1 and all(err["msg"].startswith("Input should be") for err in errs):
            wanted = " or ".join(
                dict.fromkeys(err["msg"].removeprefix("Input should be ").split(",")[0] for err in errs)
            )
            findings.append(Finding(pointer, f"Input should be {wanted}{_got(errs[0])}"))
        else:
            findings.extend(_finding(pointer, err) for err in errs)
    return findings


def _finding(pointer: str, err: ErrorDetails) -> Finding:
    kind, loc = err["type"], err["loc"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        return Finding(pointer, f"unknown key '{key}'{_did_you_mean(loc)}", at_key=True)
    if kind == "missing":
        return Finding(pointer.rsplit("/", 1)[0], f"missing required key '{loc[-1]}'")
    message = err["msg"].replace("a valid tuple", "a list").replace("a valid dictionary", "a mapping")
    if kind == "string_type" and isinstance(err.get("input"), int | Decimal):
        message += "; quote it ('0101', '1.0') so YAML keeps it as text"
    elif kind == "string_pattern_mismatch":
        message = f"{err.get('input')!r} {_PATTERNS.get(str(err.get('ctx', {}).get('pattern')), message)}"
    elif kind == "model_type":
        message = "Input should be a mapping (key: value lines)" + _got(err)
    elif kind in ("enum", "literal_error") or kind.endswith("_parsing") or kind == "bool_type":
        message += _got(err)
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    return Finding(pointer, message)


def _got(err: ErrorDetails) -> str:
    value = err.get("input")
    return "" if isinstance(value, dict | list) else f", got {value!r}"


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return ""
    keys = [field.alias or name for name, field in model.model_fields.items()]  # as written in the file
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f"; expected one of: {', '.join(keys)}"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc` (found through field annotations)."""
    model: type[BaseModel] | None = StudyDefinition
    for segment in loc:
        if model is None or isinstance(segment, int):
            continue
        info = model.model_fields.get(segment)
        model = _model_in(info.annotation) if info is not None else None
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (tuple, list, Union, types.UnionType) or get_args(annotation):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


_Target = tuple[list[Any], Any]  # (path of the container, key or index to remove from it)


def _prune_target(data: Any, path: list[Any], err: ErrorDetails) -> _Target | None:
    """The smallest part holding the error; None when only a required part could be removed."""
    if err["type"] == "extra_forbidden":
        return path[:-1], path[-1]
    for depth in range(len(path), 0, -1):
        parent = _walk(data, path[: depth - 1])
        segment = path[depth - 1]
        if isinstance(parent, list) or (depth == 1 and segment in _OPTIONAL_SECTIONS):
            return path[: depth - 1], segment
    return None


def _prune(data: Any, targets: list[_Target], kept: dict[int, list[int]], pruned: set[tuple[str, str]]) -> None:
    """Remove every target, deepest first and each list from its highest index down, so paths stay valid."""
    unique = {(tuple(container), key): (container, key) for container, key in targets}

    def order(target: _Target) -> tuple[int, int]:
        return len(target[0]), target[1] if isinstance(target[1], int) else -1

    for container_path, key in sorted(unique.values(), key=order, reverse=True):
        container = _walk(data, container_path)
        if isinstance(container, dict):
            container.pop(key, None)
        elif isinstance(container, list) and key < len(container):
            _record(container_path, container[key], data, pruned)
            origin = kept.setdefault(id(container), list(range(len(container))))
            del container[key], origin[key]


def _walk(data: Any, path: list[Any]) -> Any:
    for segment in path:
        try:
            data = data[segment]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _record(list_path: list[Any], element: Any, data: Any, pruned: set[tuple[str, str]]) -> None:
    """Remember the id of a pruned entity; items are qualified by their form: VS.SYSBP."""
    pattern = "".join("/*" if isinstance(segment, int) else f"/{segment}" for segment in list_path)
    kind = _ENTITY_KINDS.get(pattern)
    entity_id = element.get("id") if isinstance(element, dict) else None
    if kind is None or not isinstance(entity_id, str):
        return
    if kind == "item":
        form = _walk(data, list_path[:-1])
        entity_id = f"{form.get('id')}.{entity_id}"
    pruned.add((kind, entity_id))
