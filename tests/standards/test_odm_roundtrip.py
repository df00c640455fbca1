"""Import -> export (ODM 1.3.2) -> import keeps the StudyVersion hash, for every XSD-valid CDISC example that
is a study (2.0 inputs go 2.0 -> model -> 1.3.2 -> model) and for odmlib's CDASH file."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import REPO_ROOT, shared_data
from tests.standards.conftest import assert_valid_odm_132, lzzt_usdm
from trialstack.protocol.problems import StudyDefinitionError
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file
from trialstack.standards.odm_export import export_odm
from trialstack.standards.odm_import import import_odm, import_odm_file
from trialstack.standards.odm_xsd import ODM_NAMESPACES, odm_schema
from trialstack.standards.usdm_import import import_usdm_file

pytestmark = pytest.mark.usefixtures("odm_xsds")
CREATED = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ROUND_TRIPS = [
    ("cdisc-odm-examples", "MetaData_Dave_1_3_2_new_2006_01_26_extra_languages.xml"),
    ("cdisc-odm-examples", "RepeatingIG-UC-D-Example.xml"),
    ("odmlib-testdata", "cdash-odm-test.xml"),
    ("odmlib-testdata", "odm-data-snapshot.xml"),
]


def _export(definition_source: Path | bytes) -> tuple[str, bytes]:
    result = (
        import_odm_file(definition_source)
        if isinstance(definition_source, Path)
        else import_odm(definition_source, "export.xml")
    )
    version = study_version(result.definition)
    out = io.BytesIO()
    export_odm(version, out, created_at=CREATED)
    return version.hash, out.getvalue()


@pytest.mark.parametrize(("folder", "name"), ROUND_TRIPS, ids=[name for _, name in ROUND_TRIPS])
def test_import_export_import_keeps_the_hash(folder: str, name: str) -> None:
    first_hash, exported = _export(shared_data(folder, name))
    assert_valid_odm_132(exported)
    second_hash, exported_again = _export(exported)
    assert second_hash == first_hash
    assert exported_again == exported  # the export of an export is byte for byte the same


def test_every_valid_cdisc_example_is_round_tripped_or_refused_as_a_design_fragment() -> None:
    """New files in the examples folder are covered without editing this test."""
    covered = {name for folder, name in ROUND_TRIPS if folder == "cdisc-odm-examples"}
    for path in sorted(shared_data("cdisc-odm-examples").glob("*.xml")):
        tree = etree.parse(str(path))
        version = ODM_NAMESPACES.get(etree.QName(tree.getroot()).namespace or "")
        if version is None or not odm_schema(version).validate(tree):
            continue  # the XSD-invalid ones are refused with located errors (test_odm_import)
        if path.name in covered:
            continue
        with pytest.raises(StudyDefinitionError, match="defines no forms"):
            import_odm_file(path)


def test_the_demo_study_exports_valid_odm_and_names_what_odm_cannot_carry() -> None:
    definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
    out = io.BytesIO()
    warnings = export_odm(study_version(definition), out, created_at=CREATED)
    assert_valid_odm_132(out.getvalue())
    joined = "\n".join(warnings)
    for lost in ("eligibility", "randomization", "consent", "blinding", "without their countries"):
        assert lost in joined
    assert "edit check VS-SBP-ELIG is not exported: ODM cannot restrict it to visits SCREENING" in joined
    back = import_odm(out.getvalue(), "demo.xml").definition
    assert [visit.id for visit in back.schedule.visits] == [visit.id for visit in definition.schedule.visits]
    assert [(v.day, v.window) for v in back.schedule.visits] == [(v.day, v.window) for v in definition.schedule.visits]
    assert back.form("DM").item("CHILDPOT").show_if == 'SEX == "F"'  # type: ignore[union-attr]
    assert back.form("DM").item("AGE").derived == "age(BRTHDAT, IC.ICDAT)"  # type: ignore[union-attr]
    assert back.schedule.log_forms == definition.schedule.log_forms


def test_a_usdm_study_survives_odm_except_for_site_countries_and_eligibility() -> None:
    definition = import_usdm_file(lzzt_usdm()).definition
    out = io.BytesIO()
    export_odm(study_version(definition), out, created_at=CREATED)
    assert_valid_odm_132(out.getvalue())
    back = import_odm(out.getvalue(), "lzzt.xml").definition
    assert back == definition.model_copy(update={"sites": (), "eligibility": None})  # the IE form itself survives
