"""Capture's data as a `standards.clinical.ClinicalDataSource`: what `trialstack export odm --clinical-data` writes.

Subjects are listed from the rm_subject read model, a page at a time; each subject's casebook is then its
own ledger stream, read and folded alone (`clinical_casebook`), so memory holds one subject however many the
study has. Everything is read as of the study's ledger position when the source is made: users, signature
meanings and subjects agree with each other even while sites keep entering data, and a subject screened
later is simply not in this export. Queries belong to the queries context: the adapter passes their lookup.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

from sqlalchemy import Connection, Engine, select

from trialstack.capture import events as ev
from trialstack.capture import personal
from trialstack.capture.clinical_casebook import QueriesByTarget, signature_definition_id, subject_record
from trialstack.capture.handlers import SUBJECT
from trialstack.capture.readmodel import signature_table, subject_table
from trialstack.capture.refs import subject_stream_id
from trialstack.ledger import store
from trialstack.ledger.schema import ledger_event, study_head
from trialstack.ledger.vault import Vault
from trialstack.protocol.definition import StudyDefinition
from trialstack.queries import events as query_events
from trialstack.standards.clinical import SignatureDefinition, SubjectRecord, UserRecord

LEGAL_REASON = "21 CFR Part 11 electronic signature"
QueryLookup = Callable[[Connection, str, str, int], QueriesByTarget]
# The events an export writes: their actors are the users it must declare.
_CAPTURE_EXPORTED = (
    ev.VisitDateRecorded,
    ev.ItemValueEntered,
    ev.ItemValueChanged,
    ev.ItemMarkedNotDone,
    ev.ItemValueDerived,
    ev.PersonalDataErased,
    ev.CasebookSigned,
)
_QUERY_EVENTS = (
    query_events.QueryOpened,
    query_events.QueryAnswered,
    query_events.QueryRequeried,
    query_events.QueryClosed,
    query_events.QueryCancelled,
)


class CaptureClinicalData:
    """The captured data of one study as of its ledger position now; `subjects()` streams one at a time."""

    def __init__(
        self,
        engine: Engine,
        definition: StudyDefinition,
        queries: QueryLookup | None = None,
        page_size: int = 200,
        *,
        vault: Vault,
    ) -> None:
        self.engine = engine
        self.vault = vault
        self.definition = definition
        self.study_id = definition.study.id
        self.queries = queries
        self.page_size = page_size
        with engine.connect() as connection:
            head = connection.execute(
                select(study_head.c.last_seq).where(study_head.c.study_id == self.study_id)
            ).scalar()
        self.as_of = int(head or 0)

    def users(self) -> list[UserRecord]:
        """Every actor of an exported subject event or of a query event, named as they signed when they did."""
        kinds = _CAPTURE_EXPORTED + (_QUERY_EVENTS if self.queries is not None else ())
        events = ledger_event.c
        statement = (
            select(events.actor_id)
            .distinct()
            .where(
                events.study_id == self.study_id,
                events.study_seq <= self.as_of,
                events.event_type.in_([kind.__name__ for kind in kinds]),
            )
        )
        names = select(signature_table.c.signer, signature_table.c.printed_name).where(
            signature_table.c.study_id == self.study_id
        )
        with self.engine.connect() as connection:
            actors = sorted(str(row[0]) for row in connection.execute(statement))
            printed = {str(signer): str(name) for signer, name in connection.execute(names)}
        return [UserRecord(actor, printed.get(actor)) for actor in actors]

    def signature_definitions(self) -> list[SignatureDefinition]:
        """One definition per meaning any signature of the study was given under."""
        statement = select(signature_table.c.meaning).distinct().where(signature_table.c.study_id == self.study_id)
        with self.engine.connect() as connection:
            meanings = sorted(str(row[0]) for row in connection.execute(statement))
        return [SignatureDefinition(signature_definition_id(m), m, LEGAL_REASON) for m in meanings]

    def subjects(self) -> Iterator[SubjectRecord]:
        """Each subject in key order, complete with its trail; only one subject's events are held at a time."""
        with self.engine.connect() as connection:
            for subject_id, site_id in self._subject_keys(connection):
                stream = store.read_stream(connection, SUBJECT, subject_stream_id(self.study_id, subject_id))
                events = [event for event in stream if event.study_seq <= self.as_of]
                if not events:
                    continue
                queries = self.queries(connection, self.study_id, subject_id, self.as_of) if self.queries else None
                reveal = functools.partial(
                    personal.reveal, connection, self.vault, personal.vault_owner(self.study_id, subject_id)
                )
                yield subject_record(self.definition, subject_id, site_id, events, queries, reveal=reveal)

    def _subject_keys(self, connection: Connection) -> Iterator[tuple[str, str]]:
        """(subject, site) in subject order, a page at a time (keyset paging: flat memory, no open cursor)."""
        after = ""
        while True:
            statement = (
                select(subject_table.c.subject_id, subject_table.c.site_id)
                .where(subject_table.c.study_id == self.study_id, subject_table.c.subject_id > after)
                .order_by(subject_table.c.subject_id)
                .limit(self.page_size)
            )
            page = [(str(subject), str(site)) for subject, site in connection.execute(statement)]
            yield from page
            if len(page) < self.page_size:
                return
            after = page[-1][0]
