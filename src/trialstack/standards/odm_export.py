"""Export a StudyVersion as CDISC ODM 1.3.2: study metadata always, captured data when given a source.

Written with lxml's incremental `xmlfile`: the metadata is one small tree, and each subject's data is
built, written and dropped in turn, so memory stays flat however many subjects a study has. The output
validates against ODM1-3-2.xsd. What ODM 1.3.2 cannot hold (eligibility, randomization, consent,
blinding, site countries) is returned as warnings rather than silently dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, BinaryIO

from lxml import etree

from trialstack import __version__
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.questionnaire_forms import instrument_from_form
from trialstack.protocol.version import StudyVersion
from trialstack.standards.clinical import ClinicalDataSource, SignatureDefinition, UserRecord
from trialstack.standards.odm_export_clinical import ExportError, SubjectWriter, query_status_codelist, timestamp
from trialstack.standards.odm_export_meta import NS, MetadataWriter, el

__all__ = ["ExportError", "export_odm"]
_NSMAP: Any = {None: NS}


def export_odm(
    version: StudyVersion,
    out: BinaryIO,
    clinical: ClinicalDataSource | None = None,
    *,
    created_at: datetime | None = None,
) -> list[str]:
    """Write ODM 1.3.2 to `out`; return what the definition holds that ODM 1.3.2 could not carry."""
    definition = version.definition
    created = created_at or datetime.now(UTC)
    warnings = _not_exported(definition)
    metadata = MetadataWriter(definition, warnings)
    study = metadata.study([query_status_codelist()] if clinical is not None else [])
    attributes = {
        "FileOID": f"{definition.study.id}.{version.short_hash}",
        "FileType": "Transactional" if clinical is not None else "Snapshot",
        "Granularity": "All" if clinical is not None else "Metadata",
        "Description": f"{definition.study.name}; TrialStack StudyVersion {version.hash}",
        "CreationDateTime": timestamp(created),
        "ODMVersion": "1.3.2",
        "Originator": "TrialStack",
        "SourceSystem": "TrialStack",
        "SourceSystemVersion": __version__,
    }
    users = list(clinical.users()) if clinical is not None else []
    meanings = list(clinical.signature_definitions()) if clinical is not None else []
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(f"{{{NS}}}ODM", attributes, nsmap=_NSMAP):
            xf.write(study)
            if definition.sites or clinical is not None:
                xf.write(_admin_data(definition, users, meanings, created))
            if clinical is not None:
                writer = SubjectWriter(
                    definition,
                    metadata.oids,
                    {user.id for user in users},
                    {site.id for site in definition.sites},
                    {meaning.id for meaning in meanings},
                )
                _clinical_data(xf, definition, writer, clinical)
    return warnings


def _admin_data(
    definition: StudyDefinition, users: list[UserRecord], meanings: list[SignatureDefinition], created: datetime
) -> etree._Element:
    """Who entered and signed data, where (the sites), and what each kind of signature means."""
    admin = el(None, "AdminData", {"StudyOID": definition.study.id})
    for user in users:
        node = el(admin, "User", {"OID": user.id})
        if user.display_name:
            el(node, "DisplayName", text=user.display_name)
    for site in definition.sites:
        location = el(admin, "Location", {"OID": site.id, "Name": site.name, "LocationType": "Site"})
        reference = {"StudyOID": definition.study.id, "MetaDataVersionOID": definition.study.protocol_version}
        el(location, "MetaDataVersionRef", {**reference, "EffectiveDate": created.date().isoformat()})
    for meaning in meanings:
        node = el(admin, "SignatureDef", {"OID": meaning.id, "Methodology": meaning.methodology})
        el(node, "Meaning", text=meaning.meaning)
        el(node, "LegalReason", text=meaning.legal_reason)
    return admin


def _clinical_data(xf: Any, definition: StudyDefinition, writer: SubjectWriter, clinical: ClinicalDataSource) -> None:
    """Each subject built, written and flushed in turn: only one subject is ever held in memory."""
    attributes = {"StudyOID": definition.study.id, "MetaDataVersionOID": definition.study.protocol_version}
    with xf.element(f"{{{NS}}}ClinicalData", attributes):
        for subject in clinical.subjects():
            for element in writer.subject(subject):
                xf.write(element)
            xf.flush()


def _not_exported(definition: StudyDefinition) -> list[str]:
    """The parts of a definition that ODM 1.3.2 has no element for."""
    missing = []
    if definition.eligibility is not None:
        missing.append(
            f"eligibility: {len(definition.eligibility.criteria)} criteria are not exported (ODM 1.3.2 has none)"
        )
    if definition.randomization is not None:
        missing.append("randomization is not exported (ODM 1.3.2 has no randomization scheme)")
    if definition.consent:
        missing.append(f"consent: {len(definition.consent)} consent documents are not exported")
    if definition.questionnaires is not None:
        as_forms = [
            form.id
            for form in definition.forms
            if definition.instrument(form.id) == instrument_from_form(definition, form)
        ]
        others = [i.id for i in definition.questionnaires.instruments if i.id not in as_forms]
        if others:
            missing.append(
                f"questionnaires: {', '.join(others)} are not exported (ODM has no questionnaire; a form of the "
                "QS domain is exported as one)"
            )
    if definition.blinding is not None:
        missing.append("blinding is not exported")
    if definition.sites:
        missing.append(
            "sites are exported as AdminData Locations without their countries (ODM 1.3.2 Locations have none)"
        )
    return missing
