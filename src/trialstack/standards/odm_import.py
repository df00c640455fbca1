"""Import CDISC ODM 1.3.2 or 2.0 study metadata as a StudyDefinition.

The steps, each in its own module: schema validation first (`odm_xsd`), reading into version-neutral
records (`odm_parse`), reference checks (`odm_refs`), forms and items (`odm_forms`), the schedule
(`odm_schedule`, `odm_timing`), and the logic (`odm_rules`). The assembled definition must then pass
the same validation as a YAML study; a problem found there is reported at the ODM element it came from.
"""

from __future__ import annotations

from pathlib import Path

from trialstack.errors import InvalidInput, NotFound
from trialstack.protocol.definition import (
    EditCheck,
    Form,
    Instrument,
    Questionnaires,
    Study,
    StudyDefinition,
    StudyPhase,
)
from trialstack.protocol.problems import StudyDefinitionError, StudyProblem
from trialstack.protocol.questionnaire_forms import instrument_from_form
from trialstack.protocol.validation import validate_definition
from trialstack.standards import aliases
from trialstack.standards.identifiers import to_study_id
from trialstack.standards.odm_forms import FormMapper
from trialstack.standards.odm_meta import OdmMeta
from trialstack.standards.odm_parse import read_meta
from trialstack.standards.odm_refs import dangling_references, report_missing, report_unused
from trialstack.standards.odm_rules import RuleMapper
from trialstack.standards.odm_schedule import ScheduleMapper
from trialstack.standards.odm_xml import Where
from trialstack.standards.odm_xsd import parse_odm
from trialstack.standards.phases import phase_from_cdisc
from trialstack.standards.report import MappingReport
from trialstack.standards.study_import import ImportResult, Origin, locate, raise_if


def import_odm_file(path: str | Path) -> ImportResult:
    """Read and import the ODM file at `path`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no study definition at {path}") from None
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error}") from None
    return import_odm(data, str(path))


def import_odm(data: bytes, file: str) -> ImportResult:
    """The StudyDefinition in ODM `data`; StudyDefinitionError listing every located problem otherwise."""
    meta = read_meta(parse_odm(data, file))
    raise_if(file, dangling_references(meta))
    report = MappingReport(file, f"ODM {meta.version}")
    for where, what in meta.skipped:
        report.skip(where, what)
    report_missing(meta, report)
    report_unused(meta, report)
    return _Assembly(meta, report).build()


def _origin(where: Where) -> Origin:
    return Origin(where.line, 1, where.path)


class _Assembly:
    def __init__(self, meta: OdmMeta, report: MappingReport) -> None:
        self.meta = meta
        self.report = report
        self.origins: dict[str, Origin] = {}

    def build(self) -> ImportResult:
        meta, report = self.meta, self.report
        forms = FormMapper(meta, report)
        for oid, (name, repeating, children, where, alias) in forms.odm_forms().items():
            forms.plan(oid, name, repeating, children, where, alias)
        mapper = ScheduleMapper(meta, report, forms)
        built = mapper.build()
        problems = []
        if not forms.plans:
            problems.append(self._problem('defines no forms (FormDef; ItemGroupDef Type="Form" in 2.0)'))
        if built.schedule is None:
            problems.append(self._problem("defines no StudyEventDef that is a visit"))
        if problems or built.schedule is None:
            raise StudyDefinitionError(meta.file, problems)
        for v, visit in enumerate(built.schedule.visits):
            self.origins[f"/schedule/visits/{v}"] = _origin(built.visit_where[visit.id])
        draft_forms = self._forms(forms)
        codelists = forms.codelists()
        for c, codelist in enumerate(codelists):
            source = next(cl for oid, cl in meta.codelists.items() if forms.codelist_ids.get(oid) == codelist.id)
            self.origins[f"/codelists/{c}"] = _origin(source.where)
        parts = {
            "study": self._study(),
            "arms": tuple(built.arms),
            "epochs": tuple(built.epochs),
            "codelists": tuple(codelists),
            "schedule": built.schedule,
        }
        draft = StudyDefinition(**parts, forms=tuple(draft_forms))
        rules = RuleMapper(meta, report, forms, mapper.visit_ids, draft)
        final_forms: list[Form] = []
        checks: list[EditCheck] = []
        for plan, form in zip(forms.plans, draft_forms, strict=True):
            items = [rules.item(plan, entry, item) for entry, item in zip(plan.entries, form.items, strict=True)]
            checks += [
                check
                for entry, item in zip(plan.entries, form.items, strict=True)
                for check in rules.checks(plan, entry, item)
            ]
            final_forms.append(form.model_copy(update={"items": tuple(items)}))
        for c, check_source in enumerate(rules.check_sources):
            self.origins[f"/edit_checks/{c}"] = _origin(check_source.where)
        definition = StudyDefinition(**parts, forms=tuple(final_forms), edit_checks=tuple(checks))
        instruments = self._questionnaires(definition, forms)
        if instruments:
            definition = definition.model_copy(update={"questionnaires": Questionnaires(instruments=instruments)})
        raise_if(meta.file, locate(meta.file, validate_definition(definition), self.origins, _origin(meta.where)))
        return ImportResult(definition, "odm-1.3.2" if meta.version == "1.3.2" else "odm-2.0", report)

    def _forms(self, forms: FormMapper) -> list[Form]:
        """Every planned form with its items, before conditions, derivations and checks are translated."""
        built = []
        for f, plan in enumerate(forms.plans):
            items = tuple(forms.item(plan, entry) for entry in plan.entries)
            built.append(Form(id=plan.id, name=plan.name, repeating=plan.repeating, items=items))
            self.origins[f"/forms/{f}"] = _origin(plan.where)
            for i, entry in enumerate(plan.entries):
                self.origins[f"/forms/{f}/items/{i}"] = _origin(entry.ref.where)
            kind = ", repeating" if plan.repeating else ""
            self.report.map(plan.where.path, f"form {plan.id} ({len(items)} items{kind})")
        return built

    def _questionnaires(self, definition: StudyDefinition, forms: FormMapper) -> tuple[Instrument, ...]:
        """Forms whose items all belong to item groups of the SDTM QS domain are questionnaires too (eCOA)."""
        questionnaire_items = {
            ref.oid for group in self.meta.groups.values() if (group.domain or "").upper() == "QS"
            for ref in group.children if ref.kind == "item"
        }  # fmt: skip
        instruments = []
        for plan, form in zip(forms.plans, definition.forms, strict=True):
            if not plan.entries or any(entry.item_oid not in questionnaire_items for entry in plan.entries):
                continue
            instrument = instrument_from_form(definition, form)
            if not instrument.schedule.visits:
                self.report.note(
                    plan.where.path, f"form {form.id} (domain QS) is collected at no visit: not a questionnaire"
                )
                continue
            instruments.append(instrument)
            where = ", ".join(instrument.schedule.visits)
            self.report.map(plan.where.path, f"questionnaire {instrument.id} (domain QS), due at {where}")
        return tuple(instruments)

    def _problem(self, message: str) -> StudyProblem:
        where = self.meta.mdv_where or self.meta.where
        text = f"MetaDataVersion {self.meta.mdv_oid} {message}: a study needs at least one form and one visit"
        return StudyProblem(self.meta.file, where.line, 1, where.path, text)

    def _study(self) -> Study:
        meta, report = self.meta, self.report
        phase = self._phase()
        study_id = to_study_id(meta.study_oid)
        report.map(meta.where.path, f"study {study_id}, protocol version {meta.mdv_oid}", "Study")
        return Study(
            id=study_id,
            name=meta.study_name,
            phase=phase,
            protocol_version=meta.mdv_oid,
            description=meta.study_description,
        )

    def _phase(self) -> StudyPhase | None:
        """The phase from our Alias, else from 2.0's TrialPhase; None when the file has none (1.3.2)."""
        meta = self.meta
        aliased = meta.protocol_aliases.get(aliases.PHASE)
        if aliased is not None and aliased in {phase.value for phase in StudyPhase}:
            return StudyPhase(aliased)
        if not meta.trial_phase:
            return None
        phase = phase_from_cdisc(None, meta.trial_phase)
        if phase is None:
            self.report.skip(meta.where.path, f"TrialPhase {meta.trial_phase!r} has no TrialStack phase: left empty")
        return phase
