"""Informed consent for tests that screen a subject and then enter data: the site records a consent signed on paper.

A study whose definition has consent documents refuses visit data and enrolment until the subject has consented
(capture's consent gate). Tests about something else record the consent the way a site does, through the consent
handlers, right after screening; they never switch the gate off.
"""

from __future__ import annotations

from datetime import date

from trialstack.bootstrap import Platform
from trialstack.consent import commands as consent_cmd
from trialstack.consent import handlers as consent
from trialstack.consent.readmodel import consent_subject
from trialstack.ledger.envelope import Actor
from trialstack.protocol.readmodel import version_in_force

CONSENT_TAKER = Actor("user:cora", "study_coordinator")


def consent_on_paper(
    platform: Platform,
    study_id: str,
    subject_id: str,
    signed_on: str,
    *,
    actor: Actor = CONSENT_TAKER,
    choices: dict[str, bool] | None = None,
) -> None:
    """Record every required consent document of the study as signed on paper on `signed_on`, in the version in
    force at the subject's site that day (optional parts: No unless `choices` says Yes). No documents: nothing."""
    with platform.unit_of_work(actor) as uow:
        version = version_in_force(uow.connection, study_id)
        subject = consent_subject(uow.connection, study_id, subject_id)
        assert version is not None and subject is not None, f"{study_id} {subject_id} is not screened"
        for document in version.definition.consent:
            current = document.current_at(subject.site_id, date.fromisoformat(signed_on))
            assert current is not None, f"no version of {document.id} is in force at {subject.site_id} on {signed_on}"
            parts = {part.id: (choices or {}).get(part.id, False) for part in current.optional_parts}
            command = consent_cmd.RecordPaperConsent(subject_id, document.id, current.version, signed_on, "en", parts)
            username = actor.id.removeprefix("user:")
            consent.record_paper_consent(uow, study_id, subject.site_id, (username, username), command)
        uow.commit()
