"""Captured data as ODM 1.3.2 ClinicalData, one SubjectData element at a time.

The file is Transactional: every audit entry of an item is one ItemData (Insert, then Update) with its
AuditRecord, so the full trail survives, not only the current value. ODM allows one Signature per element;
earlier signatures of a form or casebook are written first as Context transactions that carry only the
signature. Queries become Annotations on the item: one per message, flagged with the query's status.
ODM 1.3.2 has no visit date: it is written as site Annotations on the StudyEventData, one per entry or
correction (with who, when and why), followed by the queries raised on the date.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from lxml import etree

from trialstack.errors import TrialStackError
from trialstack.protocol.definition import StudyDefinition
from trialstack.standards.clinical import (
    AuditEntry,
    FormRecord,
    ItemRecord,
    QueryRecord,
    SignatureRecord,
    SubjectRecord,
    VisitRecord,
)
from trialstack.standards.odm_export_meta import OdmOids, el

QUERY_STATUS_CODELIST = "CL.TRIALSTACK_QUERY_STATUS"


class ExportError(TrialStackError):
    """Captured data that does not fit the study definition or the declared users and sites."""

    code = "export-invalid-data"


def query_status_codelist() -> etree._Element:
    """The code list that Annotation flags use for a query's status (ODM flags must name a code list)."""
    codelist = el(
        None, "CodeList", {"OID": QUERY_STATUS_CODELIST, "Name": "TrialStack query status", "DataType": "text"}
    )
    for status in ("open", "answered", "closed"):
        entry = el(codelist, "CodeListItem", {"CodedValue": status})
        el(el(entry, "Decode"), "TranslatedText", text=status.capitalize())
    return codelist


def timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ExportError(f"{moment.isoformat()} has no UTC offset: audit times must be unambiguous")
    return moment.isoformat()


class SubjectWriter:
    """Builds the SubjectData elements of one subject, checking every id against the definition."""

    def __init__(
        self, definition: StudyDefinition, oids: OdmOids, users: set[str], sites: set[str], meanings: set[str]
    ) -> None:
        self.definition = definition
        self.oids = oids
        self.users = users
        self.sites = sites
        self.meanings = meanings
        self.forms = {form.id: form for form in definition.forms}

    def subject(self, subject: SubjectRecord) -> Iterable[etree._Element]:
        """The subject's SubjectData elements: earlier casebook signatures first, then the data."""
        self._site(subject.site_id, subject.subject_key)
        *earlier, latest = subject.signatures or (None,)
        for signature in earlier:
            if signature is not None:
                yield self._subject_element(subject, signature, "Context")
        node = self._subject_element(subject, latest, "Insert")
        for visit in subject.visits:
            self._visit(node, visit)
        if subject.log_forms:
            if self.oids.log_event is None:
                raise ExportError(f"subject {subject.subject_key} has log forms, but the definition declares none")
            event = el(node, "StudyEventData", {"StudyEventOID": self.oids.log_event})
            for form in subject.log_forms:
                self._form(event, form, subject.subject_key)
        yield node

    def _subject_element(
        self, subject: SubjectRecord, signature: SignatureRecord | None, transaction: str
    ) -> etree._Element:
        node = el(None, "SubjectData", {"SubjectKey": subject.subject_key, "TransactionType": transaction})
        if signature is not None:
            self._signature(node, signature)
        el(node, "SiteRef", {"LocationOID": subject.site_id})
        return node

    def _visit(self, parent: etree._Element, visit: VisitRecord) -> None:
        oid = self.oids.visits.get(visit.visit_id)
        if oid is None:
            raise ExportError(f"visit {visit.visit_id!r} is not in the study definition")
        attributes = {"StudyEventOID": oid}
        if visit.repeat is not None:
            attributes["StudyEventRepeatKey"] = str(visit.repeat)
        event = el(parent, "StudyEventData", attributes)
        self._visit_date(event, visit)
        for form in visit.forms:
            self._form(event, form, visit.visit_id)

    def _visit_date(self, event: etree._Element, visit: VisitRecord) -> None:
        """The date and its trail as site comments, then the date's queries, numbered in one sequence."""
        entries: list[tuple[str | None, AuditEntry | None]] = [(entry.new_value, entry) for entry in visit.date_audit]
        if not entries and visit.date is not None:
            entries = [(visit.date, None)]
        sequence = 0
        for value, entry in entries:
            sequence += 1
            text = f"visit date {value or 'cleared'}"
            if entry is not None:
                self._user(entry.user_id)
                self._site(entry.site_id, "a visit date entry")
                was = f" (was {entry.old_value})" if entry.old_value else ""
                why = f"; reason: {entry.reason}" if entry.reason else ""
                text += f"{was}, recorded by {entry.user_id} at {timestamp(entry.at)}{why}"
            annotation = el(event, "Annotation", {"SeqNum": str(sequence)})
            el(annotation, "Comment", {"SponsorOrSite": "Site"}, text)
        for query in visit.date_queries:
            for message in query.messages:
                sequence += 1
                self._annotation(event, sequence, query, message.text, message.author_id, message.at, message.from_site)

    def _form(self, parent: etree._Element, record: FormRecord, where: str) -> None:
        form = self.forms.get(record.form_id)
        if form is None:
            raise ExportError(f"form {record.form_id!r} (at {where}) is not in the study definition")
        attributes = {"FormOID": self.oids.forms[form.id]}
        if record.repeat is not None:
            attributes["FormRepeatKey"] = str(record.repeat)
        *earlier, latest = record.signatures or (None,)
        for signature in earlier:
            if signature is not None:
                self._signature(el(parent, "FormData", {**attributes, "TransactionType": "Context"}), signature)
        node = el(parent, "FormData", {**attributes, "TransactionType": "Insert"})
        if latest is not None:
            self._signature(node, latest)
        group = el(node, "ItemGroupData", {"ItemGroupOID": self.oids.groups[form.id]})
        for item in record.items:
            if form.item(item.item_id) is None:
                raise ExportError(f"item {item.item_id!r} is not in form {form.id}")
            self._item(group, self.oids.items[(form.id, item.item_id)], item)

    def _item(self, parent: etree._Element, oid: str, record: ItemRecord) -> None:
        entries: list[AuditEntry | None] = list(record.audit) or [None]
        if not record.audit and record.value is None and not record.queries:
            return
        last = parent
        for index, entry in enumerate(entries):
            value = entry.new_value if entry is not None else record.value
            first = index == 0 and (entry is None or entry.old_value is None)
            attributes = {"ItemOID": oid, "TransactionType": "Insert" if first else "Update"}
            if value is None:
                attributes["IsNull"] = "Yes"
            else:
                attributes["Value"] = value
            last = el(parent, "ItemData", attributes)
            if entry is not None:
                self._audit(last, entry)
        sequence = 0
        for query in record.queries:
            for message in query.messages:
                sequence += 1
                self._annotation(last, sequence, query, message.text, message.author_id, message.at, message.from_site)

    def _audit(self, parent: etree._Element, entry: AuditEntry) -> None:
        self._user(entry.user_id)
        self._site(entry.site_id, "an audit entry")
        audit = el(parent, "AuditRecord")
        el(audit, "UserRef", {"UserOID": entry.user_id})
        el(audit, "LocationRef", {"LocationOID": entry.site_id})
        el(audit, "DateTimeStamp", text=timestamp(entry.at))
        if entry.reason:
            el(audit, "ReasonForChange", text=entry.reason)

    def _signature(self, parent: etree._Element, signature: SignatureRecord) -> None:
        self._user(signature.user_id)
        self._site(signature.site_id, "a signature")
        if signature.definition_id not in self.meanings:
            raise ExportError(f"signature meaning {signature.definition_id!r} is not among the signature definitions")
        node = el(parent, "Signature")
        el(node, "UserRef", {"UserOID": signature.user_id})
        el(node, "LocationRef", {"LocationOID": signature.site_id})
        el(node, "SignatureRef", {"SignatureOID": signature.definition_id})
        el(node, "DateTimeStamp", text=timestamp(signature.signed_at))

    def _annotation(
        self,
        parent: etree._Element,
        sequence: int,
        query: QueryRecord,
        text: str,
        author: str,
        at: datetime,
        from_site: bool,
    ) -> None:
        self._user(author)
        annotation = el(parent, "Annotation", {"SeqNum": str(sequence)})
        comment = f"query {query.id}: {text} ({author}, {timestamp(at)})"
        el(annotation, "Comment", {"SponsorOrSite": "Site" if from_site else "Sponsor"}, comment)
        flag = el(annotation, "Flag")
        el(flag, "FlagValue", {"CodeListOID": QUERY_STATUS_CODELIST}, query.status)

    def _user(self, user_id: str) -> None:
        if user_id not in self.users:
            raise ExportError(f"user {user_id!r} is not among the users of the clinical data source")

    def _site(self, site_id: str, what: str) -> None:
        if site_id not in self.sites:
            raise ExportError(f"site {site_id!r} ({what}) is not a site of the study definition")
