"""Import a CDISC USDM v4 study (JSON) as a StudyDefinition, with a mapping report.

USDM describes the protocol (design, schedule of activities, criteria) rather than the CRFs, so the
import builds what an EDC needs from it: visits with days and windows from the main timeline
(`usdm_schedule`), forms and items from activities and biomedical concepts (`usdm_forms`). Eligibility
criteria are text only in USDM, so they become a confirmation form with one Y/N item per criterion and
criteria that read it (`usdm_eligibility`). `usdm_mapping_report` renders the report for `--report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trialstack.errors import InvalidInput, NotFound
from trialstack.protocol.definition import Arm, Site, Study, StudyDefinition
from trialstack.protocol.problems import StudyDefinitionError
from trialstack.protocol.validation import validate_definition
from trialstack.standards.countries import alpha2
from trialstack.standards.identifiers import IdentifierMap, to_identifier, to_site_id, to_study_id
from trialstack.standards.phases import phase_from_cdisc
from trialstack.standards.report import MappingReport
from trialstack.standards.study_import import ImportResult, Origin, locate, raise_if
from trialstack.standards.usdm_eligibility import eligibility_form
from trialstack.standards.usdm_forms import FormBuilder
from trialstack.standards.usdm_model import StudyDesign, StudyVersion
from trialstack.standards.usdm_schedule import ScheduleBuilder
from trialstack.standards.usdm_source import UsdmSource, read_usdm
from trialstack.standards.usdm_text import Lookup

__all__ = ["ImportResult", "import_usdm", "import_usdm_file", "usdm_mapping_report"]
_NOT_MAPPED_VERSION = (
    "amendments",
    "studyInterventions",
    "narrativeContentItems",
    "abbreviations",
    "roles",
    "conditions",
)
_NOT_MAPPED_DESIGN = (
    "objectives",
    "estimands",
    "indications",
    "population",
    "studyCells",
    "elements",
    "analysisPopulations",
)


def import_usdm_file(path: str | Path) -> ImportResult:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NotFound(f"no study definition at {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"cannot read {path}: {error}") from None
    return import_usdm(text, str(path))


def import_usdm(text: str, file: str) -> ImportResult:
    """The StudyDefinition in USDM JSON `text`; StudyDefinitionError listing every located problem otherwise."""
    source, wrapper = read_usdm(text, file)
    report = MappingReport(file, f"USDM {wrapper.usdm_version}")
    study = wrapper.study
    version = study.versions[-1]
    for older in study.versions[:-1]:
        report.skip(source.pointers.get(older.id, "/study/versions"), "only the last study version is imported")
    design = version.study_designs[0]
    for other in version.study_designs[1:]:
        report.skip(source.pointers[other.id], "only the first study design is imported")
    _report_unmapped_sections(source, version, design, report)
    forms = FormBuilder(version, source, report).build(design.activities)
    if not forms.forms:
        pointer = source.pointers[design.id] + "/activities"
        raise StudyDefinitionError(
            file, [source.problem(pointer, "no activity has biomedical concepts: there is no form to collect")]
        )
    built = ScheduleBuilder(design, source, report, forms).build()
    taken = ({form.id for form in forms.forms}, {codelist.id for codelist in forms.codelists})
    confirmation = eligibility_form(version, design, source, report, taken, built.schedule, _lookup(source))
    if confirmation is not None:
        forms.forms.append(confirmation.form)
        forms.codelists.append(confirmation.codelist)
        forms.origin[confirmation.form.id] = confirmation.origin
    definition = StudyDefinition(
        study=_study(source, wrapper.study.name, version, design, report),
        sites=tuple(_sites(source, version, report)),
        arms=tuple(_arms(source, design, report)),
        epochs=tuple(built.epochs),
        codelists=tuple(forms.codelists),
        schedule=confirmation.schedule if confirmation is not None else built.schedule,
        forms=tuple(forms.forms),
        eligibility=confirmation.eligibility if confirmation is not None else None,
    )
    findings = validate_definition(definition)
    if findings:
        origins = {f"/forms/{f}": forms.origin[form.id] for f, form in enumerate(definition.forms)}
        origins |= {
            f"/schedule/visits/{v}": built.origin[visit.id] for v, visit in enumerate(definition.schedule.visits)
        }
        located = {key: Origin(*source.locate(pointer), pointer) for key, pointer in origins.items()}
        fallback = source.pointers[design.id]
        raise_if(file, locate(file, findings, located, Origin(*source.locate(fallback), fallback)))
    return ImportResult(definition, "usdm-4", report)


def usdm_mapping_report(path: str | Path) -> str:
    """The mapping report of importing the USDM file at `path`, as text (what `--report FILE` writes)."""
    return import_usdm_file(path).report.render()


def _study(source: UsdmSource, name: str, version: StudyVersion, design: StudyDesign, report: MappingReport) -> Study:
    kinds = {org.id: org.type.decode.lower() for org in version.organizations if org.type is not None}
    identifiers = version.study_identifiers
    sponsor = [identifier.text for identifier in identifiers if "sponsor" in kinds.get(identifier.scope_id or "", "")]
    study_id = to_study_id(
        (sponsor or [identifier.text for identifier in version.study_identifiers] or [name or "STUDY"])[0]
    )
    titles = {title.type.decode.lower(): title.text for title in version.titles}
    full = titles.get("official study title") or titles.get("brief study title") or name or study_id
    brief = titles.get("brief study title")
    phase = None
    if design.study_phase is not None:
        code = design.study_phase.standard_code
        phase = phase_from_cdisc(code.code, code.decode)
        if phase is None:
            report.skip(
                source.pointer(design.id, "studyPhase"),
                f"study phase {code.decode!r} has no TrialStack phase: left empty",
            )
    given = f"phase {phase.value}" if phase is not None else "no phase"
    report.map(
        source.pointers.get(version.id, "/study"),
        f"study {study_id}, {given}, protocol version {version.version_identifier}",
    )
    description = brief if brief and brief != full else None
    return Study(
        id=study_id, name=full, phase=phase, protocol_version=version.version_identifier, description=description
    )


def _sites(source: UsdmSource, version: StudyVersion, report: MappingReport) -> list[Site]:
    """The study sites the organizations manage; a site needs a country, as ISO 3166 alpha-2."""
    sites = []
    for organization in version.organizations:
        for site in organization.managed_sites:
            country = alpha2(site.country.code) if site.country is not None else None
            if country is None:
                given = site.country.code if site.country is not None else "none"
                report.skip(source.pointers[site.id], f"site {site.name}: country {given!r} is not an ISO 3166 code")
                continue
            sites.append(Site(id=to_site_id(site.name or site.id), name=site.title, country=country))
            report.map(
                source.pointers[site.id], f"site {sites[-1].id} ({country})", f"StudySite of {organization.title}"
            )
    if not sites:
        report.note(
            source.pointers.get(version.id, "/study"), "no study sites: add sites before subjects can be screened"
        )
    return sites


def _arms(source: UsdmSource, design: StudyDesign, report: MappingReport) -> list[Arm]:
    ids = IdentifierMap(fallback="A")
    arms = []
    for arm in design.arms:
        arms.append(Arm(id=ids.add(arm.id, to_identifier(arm.name, fallback="A")), name=arm.title))
        report.map(source.pointers[arm.id], f"arm {ids[arm.id]}")
    return arms


def _lookup(source: UsdmSource) -> Lookup:
    """(object id, attribute) -> the attribute's value in the file: what criterion text templates refer to."""

    def lookup(object_id: str, attribute: str) -> object:
        pointer = source.pointers.get(object_id)
        node: Any = _at(source.data, pointer) if pointer is not None else None
        return node.get(attribute) if isinstance(node, dict) else None

    return lookup


def _report_unmapped_sections(
    source: UsdmSource, version: StudyVersion, design: StudyDesign, report: MappingReport
) -> None:
    raw_version = _at(source.data, source.pointers.get(version.id, ""))
    raw_design = _at(source.data, source.pointers.get(design.id, ""))
    for raw, keys, owner in (
        (raw_version, _NOT_MAPPED_VERSION, version.id),
        (raw_design, _NOT_MAPPED_DESIGN, design.id),
    ):
        for key in keys:
            if isinstance(raw, dict) and raw.get(key):
                report.skip(source.pointer(owner, key), f"{key} has no place in a StudyDefinition")
    for activity in design.activities:
        if activity.bc_category_ids:
            report.skip(
                source.pointer(activity.id, "bcCategoryIds"),
                "biomedical concept categories are not expanded into items",
            )


def _at(data: Any, pointer: str) -> Any:
    node = data
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node.get(key) if isinstance(node, dict) else None
    return node
