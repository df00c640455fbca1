"""Foreign identifiers become valid TrialStack ids, deterministically, and valid ids never change."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trialstack.standards.identifiers import (
    IDENTIFIER,
    RULE_ID,
    SITE_ID,
    STUDY_ID,
    IdentifierMap,
    to_identifier,
    to_rule_id,
    to_site_id,
    to_study_id,
)


@given(st.text(max_size=120))
def test_any_text_gives_a_valid_identifier_and_mapping_twice_changes_nothing(text: str) -> None:
    identifier = to_identifier(text)
    assert IDENTIFIER.match(identifier) and len(identifier) <= 40
    assert to_identifier(identifier) == identifier
    study = to_study_id(text)
    assert STUDY_ID.match(study) and len(study) <= 40 and to_study_id(study) == study
    site = to_site_id(text)
    assert SITE_ID.match(site) and len(site) <= 20 and to_site_id(site) == site


@given(st.lists(st.text(min_size=1, max_size=60), max_size=30))
def test_a_map_gives_distinct_ids_in_a_repeatable_way(keys: list[str]) -> None:
    first, second = IdentifierMap(("SE",)), IdentifierMap(("SE",))
    ids = [first.add(key) for key in keys]
    assert ids == [second.add(key) for key in keys]
    assert len(set(ids)) == len(set(keys))


def test_conventional_prefixes_are_dropped_and_clashes_numbered() -> None:
    visits = IdentifierMap(("SE",), reserved={"SITE"})
    assert [visits.add(key) for key in ("SE.VISIT1", "SE_VISIT1", "VISIT1", "SITE", "SE.VISIT 2")] == [
        "VISIT1",
        "SE_VISIT1",
        "VISIT1_2",
        "SITE_2",
        "VISIT_2",
    ]
    assert visits.add("SE.VISIT1") == "VISIT1"  # the same key keeps its id
    assert IdentifierMap().add("anything", preferred="KEPT") == "KEPT"


def test_long_and_odd_names() -> None:
    assert to_identifier("1st visit") == "X_1ST_VISIT"
    long = to_identifier("Alanine Aminotransferase Concentration in Serum/Plasma")
    assert len(long) == 40 and long.startswith("ALANINE_AMINOTRANSFERASE_CONCEN_")
    assert to_study_id("trace-xml-safety01") == "TRACE-XML-SAFETY01"
    assert to_rule_id("F_LAB", "I_LB_RBC", "RC1") == "F_LAB-I_LB_RBC-RC1"
    assert RULE_ID.match(to_rule_id("ä", "1"))
