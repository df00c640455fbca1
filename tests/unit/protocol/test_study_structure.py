"""Structure errors are all reported, located in the original file, and never hide semantic problems.

The property test damages the demo study at random (a value replaced by junk, a key removed or added)
and checks that the loader neither crashes nor points anywhere but at the damaged data.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trialstack.protocol.structure import build_definition
from trialstack.protocol.validation import definition_problems, validate_definition
from trialstack.protocol.yaml_loader import check_study_yaml, load_study_yaml
from trialstack.protocol.yaml_source import compose_yaml

JUNK = st.one_of(
    st.none(),
    st.integers(min_value=-5, max_value=5),
    st.sampled_from(["", "zzz", "0101", "WEEK2", "not an expression ((", "1.5"]),
    st.just([]),
    st.just({}),
    st.just({"colour": "red"}),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        found += [p for key, item in value.items() for p in _paths(item, (*path, key))]
    elif isinstance(value, list):
        found += [p for index, item in enumerate(value) for p in _paths(item, (*path, index))]
    return found


def _resolves(data: Any, pointer: str) -> bool:
    """The pointer, or its parent for a missing or unknown key, exists in `data`."""
    tokens = [token.replace("~1", "/").replace("~0", "~") for token in pointer.split("/")[1:]]
    for depth, token in enumerate(tokens):
        if isinstance(data, list) and token.isdigit() and int(token) < len(data):
            data = data[int(token)]
        elif isinstance(data, dict) and token in data:
            data = data[token]
        else:
            return depth == len(tokens) - 1
    return True


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_damaged_demo_never_crashes_and_points_into_the_data(demo_text: str, data: st.DataObject) -> None:
    source, findings = compose_yaml(demo_text, "<demo>")
    assert not findings
    damaged = copy.deepcopy(source.data)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_paths(damaged)))
        parent = damaged
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "remove":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent["unknown_key"] = 1
        else:
            parent[path[-1]] = copy.deepcopy(data.draw(JUNK))  # `st.just` shares one object across examples
    snapshot = copy.deepcopy(damaged)
    result = build_definition(damaged)
    pointers = [finding.pointer for finding in result.findings]
    if result.definition is not None:
        semantic = validate_definition(result.definition, pruned=frozenset(result.pruned))
        pointers += [result.original_pointer(finding.pointer) for finding in semantic]
    for pointer in pointers:
        assert _resolves(snapshot, pointer), pointer


def test_pointers_after_pruning_are_those_of_the_file(minimal_text: str) -> None:
    broken = minimal_text.replace(
        "    - {id: SCR, name: Screening, type: screening, day: -14,",
        "    - {id: SCR, name: Screening, type: screenin, day: -14,",
    ).replace("forms: [VS]}\n    - {id: WEEK2", "forms: [LB]}\n    - {id: WEEK2")
    problems = check_study_yaml(broken).problems
    assert [(p.pointer, p.line) for p in problems] == [
        ("/schedule/visits/0/type", 5),
        ("/schedule/visits/1/forms/0", 6),  # index 1 in the file, although visit 0 was set aside
    ]


def test_a_definition_built_in_code_is_validated_by_pointer(minimal_text: str) -> None:
    definition = load_study_yaml(minimal_text)
    broken = definition.model_copy(update={"edit_checks": (*definition.edit_checks, definition.edit_checks[0])})
    problems = definition_problems(broken)
    assert [(p.pointer, p.line, p.column) for p in problems] == [("/edit_checks/1/id", 1, 1)]
    assert "duplicate edit check id 'VS-DBP-LT-SBP'" in problems[0].message


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc:-[]{}|>'\"#&*!?,.0123 \n\t")), max_size=120))
def test_any_text_gives_problems_not_exceptions(text: str) -> None:
    check = check_study_yaml(text)
    assert check.definition is None
    assert check.problems
    assert all(problem.line >= 1 and problem.column >= 1 for problem in check.problems)
