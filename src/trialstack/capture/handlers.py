"""Capture use cases: load the casebook and the StudyVersion in force, decide, append in the unit of work.

Handlers do not commit: the adapter that opened the unit of work commits it, so the reactions (system queries)
and read models land in the same transaction, and the response can report them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from sqlalchemy import Connection

from trialstack.capture import commands as cmd
from trialstack.capture import decide as rules_of
from trialstack.capture import erasure, personal, signatures
from trialstack.capture.checks import CheckResult, StudyRules, rules_for
from trialstack.capture.consent_gate import check_consent
from trialstack.capture.model import Casebook, StudyStatus, evolve, evolve_study
from trialstack.capture.readmodel import next_subject_number
from trialstack.capture.refs import subject_stream_id
from trialstack.clock import utc_timestamp
from trialstack.consent.events import ConsentView, see
from trialstack.errors import NotFound
from trialstack.ledger import store
from trialstack.ledger.cache import StreamLoad, StreamStateCache, load_streams
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.errors import ConcurrencyConflict
from trialstack.ledger.registry import decode, encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.ledger.vault import Vault
from trialstack.protocol.readmodel import study_version_table, version_by_hash, version_in_force

SUBJECT = "subject"
STUDY = "study"
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Outcome:
    """What a command did: the events it appended (reactions come with the commit) and the checks it ran."""

    subject_id: str | None
    events: list[RecordedEvent] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    stream_version: int = 0


def rules_in_force(connection: Connection, study_id: str) -> StudyRules:
    """The compiled logic of the StudyVersion in force; NotFound when the study was never loaded."""
    version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return rules_for(version)


def study_rules(uow: UnitOfWork, study_id: str) -> StudyRules:
    return rules_in_force(uow.connection, study_id)


def _fold_casebook(connection: Connection, vault: Vault, state: Casebook, events: Sequence[RecordedEvent]) -> Casebook:
    """Fold recorded subject events into a casebook, revealing personal values from the vault as they fold."""
    owner = personal.vault_owner(state.study_id, state.subject_id)
    for payload in personal.reveal(connection, vault, owner, list(map(decode, events))):
        state = evolve(payload, state)
    return replace(state, version=events[-1].stream_version) if events else state


def _casebook_load(connection: Connection, vault: Vault, study_id: str, subject_id: str) -> StreamLoad[Casebook]:
    return StreamLoad(
        SUBJECT,
        subject_stream_id(study_id, subject_id),
        Casebook(study_id, subject_id),
        lambda state, events: _fold_casebook(connection, vault, state, events),
    )


def read_casebook(
    connection: Connection, cache: StreamStateCache, study_id: str, subject_id: str, vault: Vault
) -> Casebook:
    """Fold the subject's stream (committed events, outside a unit of work), from the cached state when there is one.

    Personal values are revealed from the vault as they fold, so checks, derivations and pages read plain values.
    """
    (folded,) = load_streams(connection, cache, [_casebook_load(connection, vault, study_id, subject_id)])
    casebook: Casebook = folded.state
    return casebook


def load_casebook(uow: UnitOfWork, study_id: str, subject_id: str) -> Casebook:
    """The casebook as this unit's transaction sees it (the shared cache gets it only if the unit commits)."""
    load = _casebook_load(uow.connection, uow.vault, study_id, subject_id)
    return uow.load(load.stream_type, load.stream_id, load.empty, load.fold)


def _fold_study(state: StudyStatus, events: Sequence[RecordedEvent]) -> StudyStatus:
    for recorded in events:
        state = evolve_study(decode(recorded), state)
    return replace(state, version=events[-1].stream_version)


def _study_load(study_id: str) -> StreamLoad[StudyStatus]:
    return StreamLoad(STUDY, study_id, StudyStatus(study_id), _fold_study)


def load_study_status(uow: UnitOfWork, study_id: str) -> StudyStatus:
    """The study-level stream (lock state), folded from the cached state onwards."""
    return uow.load(STUDY, study_id, StudyStatus(study_id), _fold_study)


CONSENT = "consent"


def _fold_consent(state: ConsentView, events: Sequence[RecordedEvent]) -> ConsentView:
    for recorded in events:
        state = see(state, decode(recorded))
    return replace(state, version=events[-1].stream_version) if events else state


def _consent_load(study_id: str, subject_id: str) -> StreamLoad[ConsentView]:
    """The subject's consent events (the consent context's stream), as capture sees them for gating."""
    return StreamLoad(CONSENT, subject_stream_id(study_id, subject_id), ConsentView(), _fold_consent)


def _in_force_read(connection: Connection, study_id: str) -> store.Read:
    """The read behind `version_in_force` (the hash of the version in force), to send with a command's other reads."""
    table, m = study_version_table, store.marker(connection)
    return f"SELECT version_hash FROM {table.name} WHERE study_id = {m} AND in_force = TRUE", (study_id,)


def load_for_subject(
    uow: UnitOfWork, study_id: str, subject_id: str
) -> tuple[StudyRules, StudyStatus, Casebook, ConsentView]:
    """The rules in force, the study's lock state, the subject's casebook and consent: one round trip on PostgreSQL."""
    (in_force,), (study, casebook, consent) = uow.fetch_and_load(
        [_in_force_read(uow.connection, study_id)],
        [
            _study_load(study_id),
            _casebook_load(uow.connection, uow.vault, study_id, subject_id),
            _consent_load(study_id, subject_id),
        ],
    )
    version = version_by_hash(uow.connection, study_id, str(in_force[0][0])) if in_force else None
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return rules_for(version), study, casebook, consent


def _today(uow: UnitOfWork) -> date:
    return uow.clock.now().date()


def _append(
    uow: UnitOfWork,
    study_id: str,
    casebook: Casebook,
    decision: rules_of.Decision,
    expected: int,
    personal_items: frozenset[tuple[str, str]] = frozenset(),
) -> Outcome:
    owner = personal.vault_owner(study_id, casebook.subject_id)
    at = utc_timestamp(uow.clock.now())
    events = personal.seal(uow.connection, uow.vault, owner, personal_items, decision.events, at)
    new = [encode(event, reason=decision.reasons.get(index)) for index, event in enumerate(events)]
    stream_id = subject_stream_id(study_id, casebook.subject_id)
    recorded = uow.append(study_id, SUBJECT, stream_id, new, expected_version=expected)
    version = recorded[-1].stream_version if recorded else casebook.version
    if recorded:  # the next command on this subject starts from here (the decided events hold plain values)
        uow.remember(
            SUBJECT, stream_id, version, lambda: replace(rules_of.fold(casebook, decision.events), version=version)
        )
    return Outcome(casebook.subject_id, recorded, decision.checks, version)


SubjectDecision = Callable[[Casebook, StudyStatus, StudyRules, date], rules_of.Decision]


def _on_subject(
    uow: UnitOfWork, study_id: str, subject_id: str, decide: SubjectDecision, expected_version: int | None
) -> Outcome:
    """Load, decide, append; `expected_version` (If-Match) pins the version the user saw."""
    rules, study, casebook, consent = load_for_subject(uow, study_id, subject_id)
    if not casebook.exists:
        raise NotFound(f"subject {subject_id} does not exist in study {study_id}", field="subject")
    if expected_version is not None and expected_version != casebook.version:
        raise ConcurrencyConflict(SUBJECT, subject_stream_id(study_id, subject_id), expected_version, casebook.version)
    decision = decide(casebook, study, rules, _today(uow))
    check_consent(rules.definition, casebook, consent, decision.events)
    return _append(uow, study_id, casebook, decision, casebook.version, rules.personal)


def screen_subject(uow: UnitOfWork, study_id: str, command: cmd.ScreenSubject) -> Outcome:
    """Screen a new subject under the next screening number of the site (`0101-003`)."""
    rules = study_rules(uow, study_id)
    study = load_study_status(uow, study_id)
    for _attempt in range(MAX_ATTEMPTS):
        number = next_subject_number(uow.connection, study_id, command.site_id)
        subject_id = f"{command.site_id}-{number:03d}"
        if uow.stream_version(SUBJECT, subject_stream_id(study_id, subject_id)) != 0:
            continue
        decision = rules_of.screen(study, rules, command, subject_id, _today(uow))
        return _append(uow, study_id, Casebook(study_id, subject_id), decision, 0, rules.personal)
    raise ConcurrencyConflict(SUBJECT, f"{study_id}/{command.site_id}-*", 0, -1)


def record_visit_date(
    uow: UnitOfWork, study_id: str, command: cmd.RecordVisitDate, expected_version: int | None = None
) -> Outcome:
    return _on_subject(
        uow,
        study_id,
        command.subject_id,
        lambda c, s, r, today: rules_of.record_visit_date(c, s, r, command, today),
        expected_version,
    )


def save_form(uow: UnitOfWork, study_id: str, command: cmd.SaveForm, expected_version: int | None = None) -> Outcome:
    return _on_subject(
        uow,
        study_id,
        command.subject_id,
        lambda c, s, r, today: rules_of.save_form(c, s, r, command, today),
        expected_version,
    )


def enrol_subject(uow: UnitOfWork, study_id: str, command: cmd.EnrolSubject) -> Outcome:
    return _on_subject(
        uow, study_id, command.subject_id, lambda c, s, r, today: rules_of.enrol(c, s, r, command, today), None
    )


def screen_fail_subject(uow: UnitOfWork, study_id: str, command: cmd.ScreenFailSubject) -> Outcome:
    return _on_subject(
        uow, study_id, command.subject_id, lambda c, s, r, today: rules_of.screen_fail(c, s, r, command, today), None
    )


def withdraw_subject(uow: UnitOfWork, study_id: str, command: cmd.WithdrawSubject) -> Outcome:
    return _on_subject(
        uow, study_id, command.subject_id, lambda c, s, r, today: rules_of.withdraw(c, s, command, today), None
    )


def complete_subject(uow: UnitOfWork, study_id: str, command: cmd.CompleteSubject) -> Outcome:
    return _on_subject(
        uow, study_id, command.subject_id, lambda c, s, r, today: rules_of.complete(c, s, command, today), None
    )


def verify_source_data(uow: UnitOfWork, study_id: str, command: cmd.VerifySourceData) -> Outcome:
    return _on_subject(
        uow, study_id, command.subject_id, lambda c, s, r, _: rules_of.verify_source_data(c, s, r, command), None
    )


def freeze_form(uow: UnitOfWork, study_id: str, command: cmd.FreezeForm) -> Outcome:
    return _on_subject(uow, study_id, command.subject_id, lambda c, s, r, _: rules_of.freeze(c, s, command), None)


def unfreeze_form(uow: UnitOfWork, study_id: str, command: cmd.UnfreezeForm) -> Outcome:
    return _on_subject(uow, study_id, command.subject_id, lambda c, s, r, _: rules_of.unfreeze(c, s, command), None)


def lock_casebook(uow: UnitOfWork, study_id: str, command: cmd.LockCasebook) -> Outcome:
    return _on_subject(uow, study_id, command.subject_id, lambda c, s, r, _: rules_of.lock_casebook(c, s), None)


def unlock_casebook(uow: UnitOfWork, study_id: str, command: cmd.UnlockCasebook) -> Outcome:
    return _on_subject(
        uow, study_id, command.subject_id, lambda c, s, r, _: rules_of.unlock_casebook(c, s, command), None
    )


def sign_casebook(uow: UnitOfWork, study_id: str, command: cmd.SignCasebook) -> Outcome:
    """Append the signature; the adapter re-authenticated the signer in this same unit of work."""
    signed_at = utc_timestamp(uow.clock.now())
    return _on_subject(
        uow,
        study_id,
        command.subject_id,
        lambda c, s, r, _: rules_of.Decision(list(signatures.sign(c, s, command, signed_at))),
        None,
    )


def erase_personal_data(uow: UnitOfWork, study_id: str, command: cmd.ErasePersonalData) -> Outcome:
    """Crypto-shred the subject's personal data and record it: the event and the key's destruction commit together."""
    outcome = _on_subject(
        uow, study_id, command.subject_id, lambda c, s, r, _: erasure.erase_personal_data(c, r, command), None
    )
    uow.vault.erase(uow.connection, personal.vault_owner(study_id, command.subject_id), utc_timestamp(uow.clock.now()))
    return outcome


def lock_study(uow: UnitOfWork, command: cmd.LockStudy) -> Outcome:
    study_rules(uow, command.study_id)
    study = load_study_status(uow, command.study_id)
    recorded = uow.append(
        command.study_id, STUDY, command.study_id, [encode(e) for e in rules_of.lock_study(study)],
        expected_version=study.version,
    )  # fmt: skip
    return Outcome(None, recorded)


def unlock_study(uow: UnitOfWork, command: cmd.UnlockStudy) -> Outcome:
    study = load_study_status(uow, command.study_id)
    recorded = uow.append(
        command.study_id, STUDY, command.study_id,
        [encode(e, reason=command.reason) for e in rules_of.unlock_study(study, command)],
        expected_version=study.version,
    )  # fmt: skip
    return Outcome(None, recorded)
