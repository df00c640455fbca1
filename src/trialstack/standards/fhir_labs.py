"""FHIR R4 laboratory results (Bundle, Observation, DiagnosticReport) to LabObservation, validated with
fhir.resources.

fhir.resources 8 defaults to R5; its `fhir.resources.R4B` models are used here because R4B is R4's data model
for Observation, DiagnosticReport and Patient (R4B changed other resources), so R4 lab feeds such as Synthea's
bundles validate unchanged, while R5 models would refuse them. The models only validate: the values are read from
the JSON itself, parsed with decimals preserved, so "79.59564115112957" stays that text and never passes through
a binary float (DESIGN.md §2), and dates stay as the source wrote them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Final

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from pydantic import BaseModel, ValidationError

from trialstack.standards.lab_results import LabObservation, LabParseError, ResultStatus

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
LABORATORY: Final = "laboratory"
# Observation categories (terminology.hl7.org observation-category) that are never a laboratory result.
NOT_LABORATORY: Final = frozenset(
    {"vital-signs", "survey", "social-history", "imaging", "procedure", "exam", "therapy", "activity"}
)
OBSERVATION_STATUSES: Final[Mapping[str, ResultStatus]] = {
    "final": ResultStatus.FINAL,
    "amended": ResultStatus.CORRECTED,
    "corrected": ResultStatus.CORRECTED,
    "preliminary": ResultStatus.PRELIMINARY,
    "registered": ResultStatus.PRELIMINARY,
    "cancelled": ResultStatus.CANCELLED,
    "entered-in-error": ResultStatus.CANCELLED,
}
_MODELS: Final[Mapping[str, type[BaseModel]]] = {
    "Observation": Observation,
    "DiagnosticReport": DiagnosticReport,
    "Patient": Patient,
}
_SEX: Final = {"male": "M", "female": "F"}

Json = dict[str, Any]


def parse_fhir(
    document: bytes | str | Mapping[str, Any],
    location_prefix: str = "",
    *,
    patient_identifier_system: str | None = None,
) -> list[LabObservation]:
    """The laboratory results of a Bundle, a DiagnosticReport (with contained Observations) or one Observation.

    In a Bundle, an Observation is a lab result when its category is `laboratory` or a DiagnosticReport in the
    bundle lists it; other categories (vital signs, surveys, social history) and panels without a value of their
    own are skipped. `patient_identifier_system` names the Patient identifier to use as the patient id, by its
    system URI or its type code (e.g. "MR"); without it the first identifier is used. Pass the JSON as bytes or
    text to keep decimals exact (a dict's floats are only as exact as the float).
    """
    resource = _loaded(document, location_prefix)
    kind = resource.get("resourceType")
    reader = _Reader(location_prefix, patient_identifier_system)
    if kind == "Bundle":
        return reader.bundle(resource)
    if kind == "DiagnosticReport":
        return reader.standalone_report(resource)
    if kind == "Observation":
        return reader.standalone_observation(resource)
    raise LabParseError(
        _join(location_prefix, str(kind or "the document")),
        "resourceType",
        f"expected a Bundle, DiagnosticReport or Observation, not {kind or 'a document without resourceType'}",
    )


def _loaded(document: bytes | str | Mapping[str, Any], prefix: str) -> Json:
    if isinstance(document, Mapping):
        return dict(document)
    try:
        loaded = json.loads(document, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as error:
        raise LabParseError(prefix or "the document", None, f"not JSON: {error}") from error
    if not isinstance(loaded, dict):
        raise LabParseError(prefix or "the document", None, "a FHIR resource is a JSON object")
    return loaded


def _join(prefix: str, path: str) -> str:
    return f"{prefix}, {path}" if prefix else path


class _Reader:
    def __init__(self, prefix: str, identifier_system: str | None) -> None:
        self.prefix = prefix
        self.identifier_system = identifier_system
        self.resources: dict[str, tuple[str, Json]] = {}  # reference -> (location, resource)

    # --- document shapes ------------------------------------------------------------------------------------

    def bundle(self, bundle: Json) -> list[LabObservation]:
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            raise LabParseError(_join(self.prefix, "Bundle.entry"), "entry", "must be a list")
        located: list[tuple[str, Json]] = []
        for index, entry in enumerate(entries):
            where = _join(self.prefix, f"Bundle.entry[{index}]")
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            self.validate(resource, where)
            located.append((where, resource))
            kind, resource_id = resource.get("resourceType"), resource.get("id")
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                self.resources[full_url] = (where, resource)
            if kind and resource_id:
                self.resources[f"{kind}/{resource_id}"] = (where, resource)
        reports = self.reports_by_result(resource for _, resource in located)
        results = []
        for where, resource in located:
            if resource.get("resourceType") != "Observation":
                continue
            report = reports.get(where)
            if not (_is_laboratory(resource) or (report is not None and not _categories(resource) & NOT_LABORATORY)):
                continue
            observation = self.observation(resource, where, report)
            if observation is not None:
                results.append(observation)
        return results

    def standalone_report(self, report: Json) -> list[LabObservation]:
        where = _join(self.prefix, "DiagnosticReport")
        self.index_contained(report, where)  # first, so that an invalid contained result is located as such
        self.validate(report, where)
        results = []
        for index, reference in enumerate(report.get("result") or []):
            target = self.resolve(reference, report)
            if target is None or target[1].get("resourceType") != "Observation":
                raise LabParseError(where, f"result[{index}]", "refers to no Observation contained in the report")
            observation = self.observation(target[1], target[0], report)
            if observation is not None:
                results.append(observation)
        return results

    def standalone_observation(self, resource: Json) -> list[LabObservation]:
        where = _join(self.prefix, "Observation")
        self.index_contained(resource, where)
        self.validate(resource, where)
        if _categories(resource) & NOT_LABORATORY and not _is_laboratory(resource):
            return []
        observation = self.observation(resource, where, None)
        return [observation] if observation is not None else []

    # --- resources -------------------------------------------------------------------------------------------

    def validate(self, resource: Json, where: str) -> None:
        """Check a resource against its R4B model; other resource types in a bundle are not ours to judge."""
        model = _MODELS.get(str(resource.get("resourceType")))
        if model is None:
            return
        try:
            model.model_validate(resource)
        except ValidationError as error:
            first = error.errors()[0]
            path = ".".join(str(part) for part in first["loc"]) or None
            count = error.error_count()
            more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
            raise LabParseError(
                where, path, f"not a valid FHIR {resource['resourceType']}: {first['msg']}{more}"
            ) from None

    def index_contained(self, resource: Json, where: str) -> None:
        for index, contained in enumerate(resource.get("contained") or []):
            if isinstance(contained, dict) and contained.get("id"):
                inner = f"{where}.contained[{index}]"
                self.validate(contained, inner)
                self.resources[f"#{contained['id']}"] = (inner, contained)

    def resolve(self, reference: Any, container: Json | None = None) -> tuple[str, Json] | None:
        target = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(target, str):
            return None
        if target.startswith("#") and container is not None:
            for contained in container.get("contained") or []:
                if isinstance(contained, dict) and f"#{contained.get('id')}" == target:
                    return self.resources.get(target, ("contained", contained))
        return self.resources.get(target)

    def reports_by_result(self, resources: Any) -> dict[str, Json]:
        """Which DiagnosticReport lists each Observation (by the Observation's location)."""
        reports: dict[str, Json] = {}
        for resource in resources:
            if resource.get("resourceType") != "DiagnosticReport":
                continue
            for reference in resource.get("result") or []:
                target = self.resolve(reference, resource)
                if target is not None:
                    reports.setdefault(target[0], resource)
        return reports

    def observation(self, resource: Json, where: str, report: Json | None) -> LabObservation | None:
        status_code = resource.get("status")
        status = OBSERVATION_STATUSES.get(str(status_code))
        if status is None:
            raise LabParseError(where, "status", f"{status_code!r} is not a result status this platform reads")
        value, unit = self.value(resource, where)
        if value is None:
            if status is not ResultStatus.CANCELLED:
                return None  # a panel (hasMember) or a result without a value: nothing to record
            value = ""
        test_code, test_system, test_name = self.code(resource, where)
        patient_id, sex, birth_date = self.patient(resource, report, where)
        effective = resource.get("effectiveDateTime") or resource.get("effectiveInstant")
        if effective is None and isinstance(resource.get("effectivePeriod"), dict):
            effective = resource["effectivePeriod"].get("start")
        issued = resource.get("issued")
        meta = resource.get("meta") or {}
        version = meta.get("versionId") or meta.get("lastUpdated") or issued or "1"
        return LabObservation(
            location=where,
            patient_id=patient_id,
            accession=self.accession(resource, report, where),
            test_code=test_code,
            test_system=test_system,
            test_name=test_name,
            value=value,
            unit=unit,
            status=status,
            version=str(version),
            collected_at=effective,
            reported_at=issued,
            reference_range=_reference_range(resource.get("referenceRange")),
            flags=_flags(resource.get("interpretation")),
            visit=None,
            sex=sex,
            age_years=_age(birth_date, effective),
            comment=_notes(resource.get("note")),
        )

    def value(self, resource: Json, where: str) -> tuple[str | None, str | None]:
        if "valueQuantity" in resource:
            quantity = resource["valueQuantity"]
            if quantity.get("value") is None:
                return None, None
            text = _decimal_text(quantity["value"])
            comparator = quantity.get("comparator") or ""
            unit = quantity.get("code") if quantity.get("system") == UCUM and quantity.get("code") else None
            return comparator + text, unit or quantity.get("unit") or quantity.get("code")
        if "valueString" in resource:
            return str(resource["valueString"]), None
        if "valueCodeableConcept" in resource:
            return _concept_text(resource["valueCodeableConcept"]), None
        if "valueInteger" in resource:
            return str(resource["valueInteger"]), None
        if "valueBoolean" in resource:
            return ("true" if resource["valueBoolean"] else "false"), None
        if "valueRange" in resource:
            value_range = resource["valueRange"]
            return _reference_range([value_range]), _quantity_unit(value_range.get("low") or value_range.get("high"))
        if "valueRatio" in resource:
            ratio = resource["valueRatio"]
            numerator = (ratio.get("numerator") or {}).get("value")
            denominator = (ratio.get("denominator") or {}).get("value")
            if numerator is None or denominator is None:
                return None, None
            return f"{_decimal_text(numerator)}:{_decimal_text(denominator)}", None
        for key in ("valueDateTime", "valueTime"):
            if key in resource:
                return str(resource[key]), None
        for key in ("valuePeriod", "valueSampledData"):
            if key in resource:
                raise LabParseError(where, key, "a value of this type is not a laboratory result this platform reads")
        return None, None

    def code(self, resource: Json, where: str) -> tuple[str, str | None, str | None]:
        concept = resource.get("code") or {}
        codings = [coding for coding in concept.get("coding") or [] if coding.get("code")]
        if not codings:
            raise LabParseError(where, "code.coding", "the test has no coded identifier (a LOINC code, usually)")
        coding = next((coding for coding in codings if coding.get("system") == LOINC), codings[0])
        system = coding.get("system")
        test_system = "LN" if system == LOINC else system
        return str(coding["code"]), test_system, coding.get("display") or concept.get("text")

    def patient(self, resource: Json, report: Json | None, where: str) -> tuple[str, str | None, date | None]:
        subject = resource.get("subject") or (report or {}).get("subject")
        if not isinstance(subject, dict):
            raise LabParseError(where, "subject", "a lab result needs the patient it is about")
        target = self.resolve(subject, resource)
        if target is not None and target[1].get("resourceType") == "Patient":
            patient = target[1]
            chosen = self.identifier(patient.get("identifier") or [])
            if chosen is None:
                chosen = str(patient.get("id") or _reference_id(subject))
            birth = patient.get("birthDate")
            birth_date = date.fromisoformat(birth) if isinstance(birth, str) and len(birth) == 10 else None
            gender = patient.get("gender")
            sex = _SEX.get(str(gender), "U") if gender else None
            return chosen, sex, birth_date
        identifier = subject.get("identifier")
        if isinstance(identifier, dict) and identifier.get("value"):
            return str(identifier["value"]), None, None
        reference_id = _reference_id(subject)
        if not reference_id:
            raise LabParseError(where, "subject", "the patient reference names no patient")
        return reference_id, None, None

    def identifier(self, identifiers: list[Json]) -> str | None:
        usable = [identifier for identifier in identifiers if identifier.get("value")]
        wanted = self.identifier_system
        if wanted:
            for identifier in usable:
                type_codes = {coding.get("code") for coding in (identifier.get("type") or {}).get("coding") or []}
                if identifier.get("system") == wanted or wanted in type_codes:
                    return str(identifier["value"])
        return str(usable[0]["value"]) if usable else None

    def accession(self, resource: Json, report: Json | None, where: str) -> str:
        for holder in (report, resource):
            for identifier in (holder or {}).get("identifier") or []:
                if identifier.get("value"):
                    return str(identifier["value"])
        if resource.get("id"):
            return str(resource["id"])
        for reference, (location, _resource) in self.resources.items():
            if location == where and reference.startswith("urn:uuid:"):
                return reference.removeprefix("urn:uuid:")
        raise LabParseError(where, "identifier", "the result has no identifier and no id to tell it apart")


def _categories(resource: Json) -> set[str]:
    return {
        str(coding.get("code"))
        for category in resource.get("category") or []
        for coding in (category or {}).get("coding") or []
        if coding.get("code")
    }


def _is_laboratory(resource: Json) -> bool:
    return LABORATORY in _categories(resource)


def _decimal_text(value: Any) -> str:
    """A JSON number as the text it was written as (json parsed with Decimal), never via a binary float."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _quantity_unit(quantity: Json | None) -> str | None:
    if not quantity:
        return None
    if quantity.get("system") == UCUM and quantity.get("code"):
        return str(quantity["code"])
    unit = quantity.get("unit") or quantity.get("code")
    return str(unit) if unit else None


def _concept_text(concept: Json) -> str | None:
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return None


def _reference_range(ranges: Any) -> str | None:
    """The first range as "low-high" (">=low" or "<=high" when open), else its text."""
    if not ranges:
        return None
    first = ranges[0] or {}
    low = (first.get("low") or {}).get("value")
    high = (first.get("high") or {}).get("value")
    if low is not None and high is not None:
        return f"{_decimal_text(low)}-{_decimal_text(high)}"
    if low is not None:
        return f">={_decimal_text(low)}"
    if high is not None:
        return f"<={_decimal_text(high)}"
    return str(first["text"]) if first.get("text") else None


def _flags(interpretations: Any) -> str | None:
    codes = [
        str(coding["code"])
        for concept in interpretations or []
        for coding in (concept or {}).get("coding") or []
        if coding.get("code")
    ]
    return "~".join(codes) or None


def _notes(notes: Any) -> str | None:
    texts = [str(note["text"]) for note in notes or [] if isinstance(note, dict) and note.get("text")]
    return " ".join(texts) or None


def _reference_id(reference: Json) -> str:
    target = str(reference.get("reference") or "")
    return target.removeprefix("urn:uuid:").rsplit("/", 1)[-1].lstrip("#")


def _age(birth: date | None, effective: str | None) -> int | None:
    """Whole years at the collection date; the birth date itself never leaves the parser (DESIGN.md §2)."""
    if birth is None or not effective or len(effective) < 10:
        return None
    try:
        collected = date.fromisoformat(effective[:10])
    except ValueError:
        return None
    years = collected.year - birth.year - ((collected.month, collected.day) < (birth.month, birth.day))
    return years if years >= 0 else None
