"""USDM eligibility criteria -> a CDASH-style eligibility confirmation form and the criteria that read it.

A USDM criterion is text ("Males and postmenopausal females at least 50 years of age."), and no rule can be
derived from text. What a site does with such a criterion is confirm it, so each one becomes a Y/N item of
an "IE" form, labelled with the criterion's full text, and a criterion whose expression reads that item:
`IN01 == "Y"` (the inclusion criterion is met) or `EX01 == "N"` (the exclusion does not apply). The
subject is then enrolled through the same eligibility rules as a TrialStack study.

The form is due at the anchor visit (study day 1, USDM's Fixed Reference). USDM does not link criteria to
an encounter; the anchor is the one visit every design has, where treatment starts (randomization or first
dose) and every screening result is in: where eligibility is confirmed (argued in docs/standards.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from trialstack.protocol.definition import (
    Codelist,
    CodelistItem,
    CriterionKind,
    Eligibility,
    EligibilityCriterion,
    Form,
    Item,
    ItemType,
    Schedule,
)
from trialstack.protocol.symbols import RESERVED_NAMES
from trialstack.standards.identifiers import IdentifierMap, to_identifier
from trialstack.standards.report import MappingReport
from trialstack.standards.usdm_model import StudyDesign, StudyVersion
from trialstack.standards.usdm_source import UsdmSource
from trialstack.standards.usdm_text import Lookup, plain_text

# NCI codes of the CDISC "Category of Inclusion/Exclusion" codelist (C66797).
_KINDS = {"C25532": CriterionKind.INCLUSION, "C25370": CriterionKind.EXCLUSION}
_ANSWER = {CriterionKind.INCLUSION: "Y", CriterionKind.EXCLUSION: "N"}
_NY = (CodelistItem(code="Y", decode="Yes"), CodelistItem(code="N", decode="No"))  # CDISC NY (C66742)


@dataclass(frozen=True)
class EligibilityForm:
    """The generated form, its Y/N code list, the criteria, and the schedule with the form due at the anchor."""

    form: Form
    codelist: Codelist
    eligibility: Eligibility
    schedule: Schedule
    origin: str


def eligibility_form(
    version: StudyVersion,
    design: StudyDesign,
    source: UsdmSource,
    report: MappingReport,
    taken: tuple[set[str], set[str]],
    schedule: Schedule,
    lookup: Lookup,
) -> EligibilityForm | None:
    """The eligibility confirmation form for the design's criteria; None when it has none.

    `taken` holds the form ids and code list ids already used, so the generated ones never clash.
    """
    if not design.eligibility_criteria:
        return None
    form_ids, codelist_ids = taken
    form_id = _free("IE", form_ids)
    codelist_id = _free("NY", codelist_ids)
    texts = {item.id: item for item in version.eligibility_criterion_items}
    dictionaries = {dictionary.id: dictionary for dictionary in version.dictionaries}
    ids = IdentifierMap(reserved=RESERVED_NAMES, fallback="IE")
    items: list[Item] = []
    criteria: list[EligibilityCriterion] = []
    for criterion in design.eligibility_criteria:
        pointer = source.pointers[criterion.id]
        kind = _KINDS.get(criterion.category.code) or _kind_from_text(criterion.category.decode)
        item = texts.get(criterion.criterion_item_id or "")
        text = plain_text(item.text, dictionaries.get(item.dictionary_id or ""), lookup) if item else ""
        text = text or criterion.title
        if kind is None:
            category = criterion.category.decode or criterion.category.code
            report.skip(
                pointer, f"criterion {criterion.name}: category {category!r} is neither inclusion nor exclusion"
            )
            continue
        item_id = ids.add(criterion.id, to_identifier(criterion.name or criterion.identifier, fallback="IE"))
        expression = f'{item_id} == "{_ANSWER[kind]}"'
        items.append(Item(id=item_id, label=text, type=ItemType.CHOICE, codelist=codelist_id, required=True))
        criteria.append(EligibilityCriterion(id=item_id, kind=kind, text=text, expression=expression))
        report.map(pointer, f"eligibility criterion {item_id}: {expression}", f"{kind.value} criterion {text!r}")
    if not criteria:
        return None
    form = Form(id=form_id, name="Eligibility Confirmation", items=tuple(items))
    visits = tuple(
        visit.model_copy(update={"forms": (*visit.forms, form_id)}) if visit.id == schedule.anchor else visit
        for visit in schedule.visits
    )
    origin = source.pointer(design.id, "eligibilityCriteria")
    report.note(
        origin,
        f"eligibility confirmation form {form_id} generated: one Y/N item per criterion (Y: the statement holds), "
        f"due at the anchor visit {schedule.anchor} (study day 1), where treatment starts; a subject is enrolled "
        "when every inclusion is Y and every exclusion N",
    )
    return EligibilityForm(
        form=form,
        codelist=Codelist(id=codelist_id, name="No Yes Response", items=_NY),
        eligibility=Eligibility(form=form_id, criteria=tuple(criteria)),
        schedule=schedule.model_copy(update={"visits": visits}),
        origin=origin,
    )


def _kind_from_text(decode: str) -> CriterionKind | None:
    """A category given only as a term ("Exclusion Criteria"), as some files do."""
    words = decode.lower()
    if "exclusion" in words and "inclusion" not in words:
        return CriterionKind.EXCLUSION
    if "inclusion" in words and "exclusion" not in words:
        return CriterionKind.INCLUSION
    return None


def _free(preferred: str, taken: set[str]) -> str:
    return next(c for c in (preferred, *(f"{preferred}_{n}" for n in range(2, 100))) if c not in taken)
