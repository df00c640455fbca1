"""FHIR R4 lab results: the Synthea bundles, single resources, skipped observations and validation errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_data
from trialstack.standards.fhir_labs import parse_fhir
from trialstack.standards.lab_results import LabObservation, LabParseError, ResultStatus

SYNTHEA = [
    "Floyd_Connelly_66843218-a9f9-4f16-8347-bdc2a0d14265.json",
    "Fredrick_Kris_ec6a5bb6-b412-4bb6-8219-11d66f52ae8b.json",
]


def synthea(name: str) -> Path:
    return shared_data("smart-synthea-fhir-r4", name)


def lab_entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Counted independently of the parser: category code laboratory and some value[x]."""
    return [
        entry["resource"]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Observation"
        and any(
            coding.get("code") == "laboratory"
            for category in entry["resource"].get("category", [])
            for coding in category.get("coding", [])
        )
        and any(key.startswith("value") for key in entry["resource"])
    ]


@pytest.mark.parametrize("name", SYNTHEA)
def test_a_synthea_bundle_gives_its_laboratory_observations(name: str) -> None:
    path = synthea(name)
    raw = json.loads(path.read_bytes(), parse_float=str)  # numbers as the text the file holds
    expected = lab_entries(raw)
    patient = next(e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "Patient")

    observations = parse_fhir(path.read_bytes(), name)

    assert len(expected) >= 38
    assert len(observations) == len(expected)
    by_id = {resource["id"]: resource for resource in expected}
    for observation in observations:
        source = by_id[observation.accession]
        loinc = next(c for c in source["code"]["coding"] if c["system"] == "http://loinc.org")
        assert (observation.test_code, observation.test_system) == (loinc["code"], "LN")
        assert observation.value == source["valueQuantity"]["value"]  # exact decimal text, no float on the way
        assert source["valueQuantity"]["system"] == "http://unitsofmeasure.org"
        assert observation.unit == source["valueQuantity"]["code"]
        assert observation.status is ResultStatus.FINAL
        assert observation.collected_at == source["effectiveDateTime"]
        assert observation.reported_at == observation.version == source["issued"]
        assert observation.sex == {"male": "M", "female": "F"}[patient["gender"]]
        assert observation.patient_id == patient["identifier"][0]["value"]
        assert observation.age_years is not None and 0 < observation.age_years < 120
        assert observation.location.startswith(f"{name}, Bundle.entry[")
    assert patient["birthDate"] not in repr(observations)


def test_the_patient_identifier_can_be_chosen_by_system_or_type() -> None:
    bundle = json.loads(synthea(SYNTHEA[0]).read_bytes())
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    passport = next(i["value"] for i in patient["identifier"] if "PPN" in json.dumps(i.get("type")))

    by_type = parse_fhir(synthea(SYNTHEA[0]).read_bytes(), patient_identifier_system="PPN")
    by_system = parse_fhir(synthea(SYNTHEA[0]).read_bytes(), patient_identifier_system="http://hl7.org/fhir/sid/us-ssn")

    assert {o.patient_id for o in by_type} == {passport}
    assert {o.patient_id for o in by_system} == {"999-97-9496"}


def test_an_invalid_observation_in_a_bundle_is_located_by_entry_and_field() -> None:
    bundle = json.loads(synthea(SYNTHEA[1]).read_bytes())
    index = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Observation")
    bundle["entry"][index]["resource"]["valueQuantity"]["value"] = "high"

    with pytest.raises(LabParseError) as raised:
        parse_fhir(json.dumps(bundle).encode(), "kris.json")

    assert raised.value.location == f"kris.json, Bundle.entry[{index}]"
    assert raised.value.field == "valueQuantity.value"
    assert "not a valid FHIR Observation" in raised.value.reason


def patient(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {"system": "urn:lab", "value": "LAB-77"},
            {"system": "urn:trial:screening", "value": "0101-003"},
        ],
        "gender": "female",
        "birthDate": "1970-05-20",
        **extra,
    }


def observation(**extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": [{"system": "urn:vendor", "code": "GLU"}, {"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-03-01T08:30:00+01:00",
        "issued": "2024-03-01T14:00:00+01:00",
        "valueQuantity": {"value": 5.40, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    }
    resource.update(extra)
    return resource


def collection(*resources: dict[str, Any]) -> bytes:
    entries = [{"fullUrl": f"http://x/{r['resourceType']}/{r.get('id')}", "resource": r} for r in resources]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def test_a_single_observation_maps_every_field() -> None:
    text = (
        json.dumps(
            observation(
                identifier=[{"value": "ACC-9"}],
                meta={"versionId": "3", "lastUpdated": "2024-03-02T00:00:00Z"},
                referenceRange=[{"low": {"value": 3.9}, "high": {"value": 5.5}}],
                interpretation=[{"coding": [{"code": "H"}]}],
                note=[{"text": "hemolysed"}],
                subject={"reference": "Patient/p1", "identifier": {"value": "0101-003"}},
            )
        )
        .replace("5.4,", "5.40,")
        .replace("5.5}", "5.50}")
    )

    (result,) = parse_fhir(text.encode(), "obs.json")

    assert result == LabObservation(
        location="obs.json, Observation",
        patient_id="0101-003",
        accession="ACC-9",
        test_code="2345-7",
        test_system="LN",
        test_name=None,
        value="5.40",
        unit="mmol/L",
        status=ResultStatus.FINAL,
        version="3",
        collected_at="2024-03-01T08:30:00+01:00",
        reported_at="2024-03-01T14:00:00+01:00",
        reference_range="3.9-5.50",
        flags="H",
        comment="hemolysed",
    )


@pytest.mark.parametrize(
    ("fhir_status", "status"),
    [
        ("final", ResultStatus.FINAL),
        ("amended", ResultStatus.CORRECTED),
        ("corrected", ResultStatus.CORRECTED),
        ("preliminary", ResultStatus.PRELIMINARY),
        ("registered", ResultStatus.PRELIMINARY),
        ("cancelled", ResultStatus.CANCELLED),
        ("entered-in-error", ResultStatus.CANCELLED),
    ],
)
def test_fhir_statuses_map_to_result_statuses(fhir_status: str, status: ResultStatus) -> None:
    (result,) = parse_fhir(collection(patient(), observation(status=fhir_status)))

    assert result.status is status


def test_a_bundle_keeps_lab_results_and_skips_the_rest() -> None:
    vital = observation(id="o2", category=[{"coding": [{"code": "vital-signs"}]}])
    survey = observation(id="o3", category=[{"coding": [{"code": "survey"}]}])
    panel = observation(id="o4", hasMember=[{"reference": "Observation/o1"}])
    del panel["valueQuantity"]
    uncategorised = observation(id="o5", valueString="Positive", identifier=[{"value": "own"}])
    del uncategorised["category"], uncategorised["valueQuantity"]
    stray = observation(id="o6")
    del stray["category"]
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "identifier": [{"value": "REPORT-1"}],
        "status": "final",
        "code": {"text": "serology"},
        "subject": {"reference": "Patient/p1"},
        "result": [{"reference": "Observation/o5"}],
    }

    results = parse_fhir(collection(patient(), observation(), vital, survey, panel, uncategorised, stray, report))

    assert [(r.accession, r.value) for r in results] == [("o1", "5.4"), ("REPORT-1", "Positive")]
    assert results[1].location == "Bundle.entry[5]"
    assert {(r.patient_id, r.sex, r.age_years) for r in results} == {("LAB-77", "F", 53)}


def test_a_diagnostic_report_with_contained_observations() -> None:
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "identifier": [{"value": "ACC-1"}],
        "status": "final",
        "code": {"text": "panel"},
        "subject": {"reference": "Patient/p9"},
        "contained": [
            observation(id="a", subject={"reference": "Patient/p9"}),
            observation(
                id="b",
                code={"coding": [{"system": "http://snomed.info/sct", "code": "123", "display": "Culture"}]},
                valueCodeableConcept={"coding": [{"code": "POS", "display": "Growth"}]},
                status="amended",
            ),
        ],
        "result": [{"reference": "#a"}, {"reference": "#b"}],
    }
    del report["contained"][1]["valueQuantity"]

    first, second = parse_fhir(report, "report.json")

    assert (first.patient_id, first.accession, first.location) == (
        "p9",
        "ACC-1",
        "report.json, DiagnosticReport.contained[0]",
    )
    assert (second.test_code, second.test_system, second.test_name) == ("123", "http://snomed.info/sct", "Culture")
    assert (second.value, second.status) == ("Growth", ResultStatus.CORRECTED)


def test_an_invalid_contained_observation_is_located() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "panel"},
        "contained": [observation(id="a", effectiveDateTime="yesterday")],
        "result": [{"reference": "#a"}],
    }

    with pytest.raises(LabParseError) as raised:
        parse_fhir(report)

    assert raised.value.location == "DiagnosticReport.contained[0]"
    assert raised.value.field == "effectiveDateTime"


@pytest.mark.parametrize(
    ("document", "field", "reason"),
    [
        (b"{not json", None, "not JSON"),
        (json.dumps({"resourceType": "Patient"}).encode(), "resourceType", "expected a Bundle"),
        (json.dumps(observation(status="unknown")).encode(), "status", "'unknown'"),
        (json.dumps(observation(code={"text": "glucose"})).encode(), "code.coding", "no coded identifier"),
    ],
)
def test_documents_that_are_not_lab_results_are_refused(document: bytes, field: str | None, reason: str) -> None:
    with pytest.raises(LabParseError) as raised:
        parse_fhir(document, "in.json")

    assert raised.value.field == field
    assert reason in raised.value.reason


def test_a_vital_sign_sent_alone_is_skipped_not_refused() -> None:
    vital = copy.deepcopy(observation(category=[{"coding": [{"code": "vital-signs"}]}]))

    assert parse_fhir(vital) == []
