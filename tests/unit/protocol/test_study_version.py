"""A StudyVersion's hash depends on the content only: not on key order, comments or layout."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.protocol.conftest import DEMO_STUDY
from trialstack.protocol.version import definition_from_canonical_json, study_version
from trialstack.protocol.yaml_loader import load_study_yaml
from trialstack.protocol.yaml_source import compose_yaml

_SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_FREE_TEXT = frozenset({"name", "label", "message", "text", "title", "decode", "description"})


def _hash(text: str) -> str:
    return study_version(load_study_yaml(text, base_dir=DEMO_STUDY.parent)).hash


def _data(text: str) -> Any:
    source, findings = compose_yaml(text, "<demo>")
    assert not findings
    return source.data


def _shuffled(value: Any, rng: random.Random) -> Any:
    """The same data with every mapping's keys in a random order (lists keep theirs: order is content)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: _shuffled(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


def _as_yaml_json(data: Any) -> str:
    """JSON is YAML: a rendering of the same content that shares no layout with the original."""
    return json.dumps(data, default=str, indent=1)


def _free_text_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _free_text_paths(item, (*path, key))] + [
            (*path, key) for key, item in value.items() if key in _FREE_TEXT and isinstance(item, str)
        ]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _free_text_paths(item, (*path, index))]
    return []


def test_hash_is_sha256_of_the_canonical_json(demo_text: str) -> None:
    version = study_version(load_study_yaml(demo_text, base_dir=DEMO_STUDY.parent))
    assert len(version.hash) == 64 and int(version.hash, 16) >= 0
    assert version.canonical_json.startswith(b'{"arms":')
    assert b" " not in version.canonical_json.split(b'"')[0]
    assert b'"min":"34.0"' in version.canonical_json  # decimals are strings, never binary floats


def test_comments_and_blank_lines_do_not_change_the_hash(demo_text: str) -> None:
    commented = "\n".join(
        f"# section\n\n{line}  # a trailing comment" if line[:1].isalpha() and line.endswith(":") else line
        for line in demo_text.splitlines()
    )
    assert commented != demo_text
    assert _hash(commented) == _hash(demo_text)


def test_writing_a_default_value_does_not_change_the_hash(minimal_text: str) -> None:
    explicit = minimal_text.replace("type: text}", "type: text, required: false, sdv: false}")
    assert explicit != minimal_text
    assert _hash(explicit) == _hash(minimal_text)


@_SETTINGS
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_key_order_does_not_change_the_hash(demo_text: str, seed: int) -> None:
    reordered = _as_yaml_json(_shuffled(_data(demo_text), random.Random(seed)))
    assert _hash(reordered) == _hash(demo_text)


@_SETTINGS
@given(data=st.data())
def test_any_change_of_content_changes_the_hash(demo_text: str, data: st.DataObject) -> None:
    content = _data(demo_text)
    path = data.draw(st.sampled_from(_free_text_paths(content)))
    parent = content
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] += data.draw(st.sampled_from([" ", ".", "x", "é"]))
    assert _hash(_as_yaml_json(content)) != _hash(demo_text)


def test_a_changed_number_changes_the_hash(minimal_text: str) -> None:
    assert _hash(minimal_text.replace("max: 250", "max: 251")) != _hash(minimal_text)
    assert _hash(minimal_text.replace("max: 250", "max: 250.5")) != _hash(minimal_text)


def test_canonical_json_rebuilds_the_same_definition(demo_text: str) -> None:
    version = study_version(load_study_yaml(demo_text, base_dir=DEMO_STUDY.parent))
    rebuilt = definition_from_canonical_json(version.canonical_json)
    assert rebuilt == version.definition
    assert study_version(rebuilt).hash == version.hash


@pytest.mark.parametrize("number", ["3.5", "3.50", "0.25", "1.5e1", "140"])
def test_decimal_ranges_survive_the_round_trip(minimal_text: str, number: str) -> None:
    version = study_version(load_study_yaml(minimal_text.replace("min: 60", f"min: {number}")))
    rebuilt = definition_from_canonical_json(version.canonical_json)
    assert study_version(rebuilt).hash == version.hash
