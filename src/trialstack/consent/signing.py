"""Decisions on signatures: sign, countersign, record on paper, withdraw, require re-consent. Pure.

The participant's typed name arrives here already sealed (a vault reference and keyed hash): decide never sees
personal data, and the signed copy's hash is filled in by the handler once the copy is rendered from the event.
"""

from __future__ import annotations

from datetime import date, datetime

from trialstack.clock import utc_timestamp
from trialstack.consent import commands as cmd
from trialstack.consent import events as ev
from trialstack.consent.model import (
    COUNTERSIGN_MEANING,
    PARTICIPANT_MEANING,
    SIGNERS,
    DocumentConsent,
    ParticipantConsent,
    WrongAnswer,
    consent_document,
    sections_of,
    text_for,
    version_in_force,
)
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.protocol.definition import ConsentDocument, ConsentVersion, StudyDefinition


def _choices(version: ConsentVersion, given: dict[str, bool]) -> list[ev.PartChoice]:
    known = {part.id for part in version.optional_parts}
    unknown = sorted(set(given) - known)
    if unknown:
        raise InvalidInput(f"unknown optional part {', '.join(unknown)} (parts: {', '.join(sorted(known)) or 'none'})",
                           field=f"choices.{unknown[0]}")  # fmt: skip
    missing = [part.id for part in version.optional_parts if part.id not in given]
    if missing:
        raise InvalidInput(f"answer Yes or No to the optional part {missing[0]}", field=f"choices.{missing[0]}")
    return [ev.PartChoice(part=part.id, agreed=given[part.id]) for part in version.optional_parts]


def _not_signed_already(document: DocumentConsent, version: str) -> None:
    if document.consented and document.signed_version == version:
        raise DomainRuleViolation(f"version {version} of {document.document_id} is already signed", field="version")


def decide_sign(
    state: ParticipantConsent,
    definition: StudyDefinition,
    study_version: str,
    command: cmd.SignConsent,
    username: str,
    printed_name: tuple[str, str],
    witness_name: tuple[str, str] | None,
    now: datetime,
) -> ev.ConsentSigned:
    """The signature event, without `copy_sha256` (the handler renders the copy from it and fills that in).

    `printed_name` and `witness_name` are (vault reference, keyed hash) of the names the signer typed.
    """
    document = consent_document(definition, command.document_id)
    version = version_in_force(document, state.site_id, now.date(), command.version)
    text = text_for(version, document, command.language)
    _not_signed_already(state.document(document.id), version.version)
    if command.signed_by not in SIGNERS:
        raise InvalidInput(f"signed_by must be one of {', '.join(SIGNERS)}", field="signed_by")
    relationship = (command.representative_relationship or "").strip() or None
    if command.signed_by == "legally_authorised_representative" and relationship is None:
        raise InvalidInput("a legally authorised representative states their relationship to the participant",
                           field="representative_relationship")  # fmt: skip
    sections = sections_of(document, text)
    unread = [s.number for s in sections if s.number not in command.sections_read]
    if unread:
        raise DomainRuleViolation(f"section {unread[0]} has not been read", field=f"sections_read.{unread[0]}")
    if any(seconds < 0 for seconds in command.sections_read.values()):
        raise InvalidInput("time spent on a section cannot be negative", field="sections_read")
    answers = []
    for question in text.questions:
        given = command.answers.get(question.id)
        if given is None:
            raise InvalidInput(f"answer question {question.id}", field=f"answers.{question.id}")
        if given != question.answer:
            raise WrongAnswer(
                f"the answer to {question.id} is not right: read section {question.section} again",
                field=f"answers.{question.id}",
                section=question.section,
            )
        attempts = max(1, command.attempts.get(question.id, 1))
        answers.append(ev.QuestionAnswered(question=question.id, answer=given, attempts=attempts))
    return ev.ConsentSigned(
        subject_id=state.subject_id,
        site_id=state.site_id,
        document_id=document.id,
        version=version.version,
        language=text.language,
        document_sha256=text.sha256,
        signed_by=command.signed_by,
        username=username,
        printed_name_ref=printed_name[0],
        printed_name_hash=printed_name[1],
        representative_relationship=relationship,
        witness_name_ref=witness_name[0] if witness_name else None,
        witness_name_hash=witness_name[1] if witness_name else None,
        signed_at=utc_timestamp(now),
        meaning=PARTICIPANT_MEANING,
        study_version=study_version,
        sections_read=[
            ev.SectionRead(section=s.number, title=s.title, seconds=command.sections_read[s.number]) for s in sections
        ],
        answers=answers,
        choices=_choices(version, command.choices),
        copy_sha256="",
    )


def decide_countersign(
    state: ParticipantConsent,
    command: cmd.CountersignConsent,
    username: str,
    printed_name: str,
    role: str,
    now: datetime,
) -> ev.ConsentCountersigned:
    """The countersignature event, without `copy_sha256` (filled in once the copy with both signatures is rendered)."""
    document = state.document(command.document_id)
    if document.signature is None or not document.consented:
        raise DomainRuleViolation(f"{command.document_id} has no electronic signature to countersign",
                                  field="document_id")  # fmt: skip
    if document.countersignature is not None:
        raise DomainRuleViolation(f"{command.document_id} version {document.signed_version} is already countersigned",
                                  field="document_id")  # fmt: skip
    if username == document.signature.username:
        raise DomainRuleViolation("the person obtaining consent cannot be the signer", field="username")
    return ev.ConsentCountersigned(
        subject_id=state.subject_id,
        document_id=document.document_id,
        version=document.signature.version,
        username=username,
        printed_name=printed_name,
        role=role,
        signed_at=utc_timestamp(now),
        meaning=COUNTERSIGN_MEANING,
        copy_sha256="",
    )


def decide_record_paper(
    state: ParticipantConsent,
    definition: StudyDefinition,
    command: cmd.RecordPaperConsent,
    site_id: str,
    obtained_by: tuple[str, str],
    today: date,
) -> list[ev.ConsentEvent]:
    document = consent_document(definition, command.document_id)
    try:
        signed_on = date.fromisoformat(command.signed_on)
    except ValueError:
        raise InvalidInput(f"signed_on {command.signed_on!r} is not a date (YYYY-MM-DD)", field="signed_on") from None
    if signed_on > today:
        raise InvalidInput(f"signed_on {signed_on} is in the future (today is {today})", field="signed_on")
    version = version_in_force(document, site_id, signed_on, command.version)
    _not_signed_already(state.document(document.id), version.version)
    if version.texts and not version.text_in(command.language):
        raise InvalidInput(f"{document.id} version {version.version} has no {command.language!r} text",
                           field="language")  # fmt: skip
    return [
        ev.ConsentRecordedOnPaper(
            subject_id=state.subject_id, site_id=site_id, document_id=document.id, version=version.version,
            language=command.language, signed_on=signed_on.isoformat(), obtained_by=obtained_by[0],
            obtained_by_name=obtained_by[1], choices=_choices(version, command.choices),
        )
    ]  # fmt: skip


def decide_withdraw(
    state: ParticipantConsent, definition: StudyDefinition, command: cmd.WithdrawConsent, today: date
) -> list[ev.ConsentEvent]:
    consent_document(definition, command.document_id)
    document = state.document(command.document_id)
    if not document.consented:
        raise DomainRuleViolation(f"{command.document_id} was never consented (or is already withdrawn): "
                                  "nothing to withdraw", field="document_id")  # fmt: skip
    if not command.reason.strip():
        raise InvalidInput("a withdrawal needs a reason", field="reason")
    try:
        withdrawn_on = date.fromisoformat(command.withdrawn_on)
    except ValueError:
        raise InvalidInput(f"withdrawn_on {command.withdrawn_on!r} is not a date", field="withdrawn_on") from None
    if withdrawn_on > today:
        raise InvalidInput(f"withdrawn_on {withdrawn_on} is in the future", field="withdrawn_on")
    unknown = sorted(set(command.continues) - ev.CONTINUATIONS)
    if unknown:
        raise InvalidInput(f"unknown continuation {unknown[0]!r} (known: {', '.join(sorted(ev.CONTINUATIONS))})",
                           field="continues")  # fmt: skip
    if command.part is not None:
        if document.choices.get(command.part) is not True:
            raise NotFound(f"optional part {command.part} of {command.document_id} was never agreed to",
                           field="part")  # fmt: skip
        if command.continues:
            raise InvalidInput("`continues` applies to a withdrawal from the whole document", field="continues")
    return [
        ev.ConsentWithdrawn(
            subject_id=state.subject_id, document_id=command.document_id, part=command.part,
            continues=sorted(command.continues), withdrawn_on=withdrawn_on.isoformat(),
        )
    ]  # fmt: skip


def decide_reconsent(
    state: ParticipantConsent, document: ConsentDocument, version: ConsentVersion, study_version: str, today: date
) -> list[ev.ConsentEvent]:
    """ReconsentRequired when the subject consented to an earlier version and this one asks for re-consent."""
    held = state.document(document.id)
    if document.reconsent_of(version) is None or not held.consented or held.signed_version == version.version:
        return []
    if held.reconsent is not None and held.reconsent.version == version.version:
        return []
    required_on = max(today, version.effective or today)
    return [
        ev.ReconsentRequired(
            subject_id=state.subject_id, document_id=document.id, version=version.version,
            previous_version=held.signed_version or "", study_version=study_version,
            required_on=required_on.isoformat(),
        )
    ]  # fmt: skip
