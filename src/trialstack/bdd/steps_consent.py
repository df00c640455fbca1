"""Steps about informed consent: paper consent, the participant app (invitation, activation, eConsent signature),
countersignature, withdrawal, and an amendment that asks subjects to consent again.

The steps act as the adapters do (ADR 0004): the participant re-enters their password to sign, the activation
opens their account in the same unit of work as the consent context records it. Scenario staff are not accounts,
so the coordinator's countersignature is not re-authenticated here (the API and web tests cover that).
"""

from __future__ import annotations

from datetime import date

from trialstack.bdd.errors import ExpectationFailed
from trialstack.bdd.registry import LIBRARY
from trialstack.bdd.world import PARTICIPANT, World
from trialstack.capture.checks import rules_for
from trialstack.consent import commands as cmd
from trialstack.consent import handlers as consent
from trialstack.consent.events import SAFETY_FOLLOW_UP
from trialstack.consent.model import DocumentConsent, sections_of
from trialstack.identity import commands as identity_cmd
from trialstack.identity import handlers as identity
from trialstack.identity.authentication import reauthenticate_for_signature
from trialstack.identity.policy import Action, Role
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import ConsentVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.simulation.amendment import with_consent_version

CONSENT = "Informed consent"
PASSWORD = "Scenario-Participant-7-pass"
"""The password every scenario participant chooses at activation (and re-enters to sign)."""
PRINTED_NAME = "Robin Example"
COORDINATOR_NAME = "Casey Coordinator"
step = LIBRARY.step


def _site(world: World) -> str:
    return world.casebook().site_id


def _version(world: World, document_id: str, label: str) -> ConsentVersion | None:
    document = world.rules.definition.consent_document(document_id)
    return document.version(label) if document is not None else None


def _language(version: ConsentVersion | None) -> str:
    languages = [text.language for text in version.texts] if version is not None else []
    return "en" if "en" in languages or not languages else languages[0]


@step(
    "the subject's consent to {consent} version {string} was recorded on paper on {date}",
    example='Given the subject\'s consent to "ICF" version "1.0" was recorded on paper on 2026-01-05',
    topic=CONSENT,
)
@step(
    "the coordinator records the subject's consent to {consent} version {string} signed on paper on {date}",
    example='When the coordinator records the subject\'s consent to "ICF" version "2.0" signed on paper on 2026-02-02',
    topic=CONSENT,
)
def paper(world: World, document_id: str, label: str, day: str) -> None:
    """The coordinator records a consent the subject signed on paper that day, on the version named (No to every
    optional part); the version must be the one in force at the subject's site on that day."""
    subject = world.require_subject()
    world.reach(day)
    version = _version(world, document_id, label)
    choices = {part.id: False for part in version.optional_parts} if version is not None else {}
    command = cmd.RecordPaperConsent(subject, document_id, label, day, _language(version), choices)
    site = _site(world)
    world.command(
        "coordinator",
        Action.CONSENT_OBTAIN,
        f"the paper consent to {document_id} version {label}",
        lambda uow: consent.record_paper_consent(uow, world.study_id, site, ("coordinator", COORDINATOR_NAME), command),
        site=site,
    )


@step(
    "the coordinator invites the subject to the participant app",
    example="When the coordinator invites the subject to the participant app",
    topic=CONSENT,
)
def invite(world: World) -> None:
    """The site invites the subject to sign electronically; the one-time code is handed to the participant."""
    subject, site = world.require_subject(), _site(world)
    invited = world.command(
        "coordinator",
        Action.CONSENT_OBTAIN,
        "the invitation",
        lambda uow: consent.invite_participant(uow, world.study_id, site, cmd.InviteParticipant(subject)),
        site=site,
    )
    if invited is not None:
        world.invitation_code = invited.code


@step(
    "the participant activates the invitation as {string}",
    example='When the participant activates the invitation as "robin-0101"',
    topic=CONSENT,
)
def activate(world: World, username: str) -> None:
    """The participant enters the site's code and chooses a username and password: their own account opens,
    bound to the subject. A used or replaced code is refused."""
    code = world.invitation_code
    if code is None:
        raise ExpectationFailed("no invitation yet: the coordinator invites the subject first")
    previous, world.participant = world.participant, username

    def work(uow: UnitOfWork) -> consent.Activation:
        activated = consent.activate_participant(uow, cmd.ActivateParticipant(code, username, PASSWORD))
        identity.open_participant_account(
            uow,
            identity_cmd.OpenParticipantAccount(
                username, PASSWORD, activated.study_id, activated.site_id, activated.subject_id
            ),
        )
        return activated

    if world.command(PARTICIPANT, Action.PARTICIPANT_SELF, "the activation", work) is None:
        world.participant = previous


def _sign(world: World, document_id: str, label: str, answers: dict[str, str], choices: dict[str, bool]) -> None:
    subject, username = world.require_subject(), world.participant
    if username is None:
        raise ExpectationFailed("no participant account yet: the participant activates an invitation first")
    document = world.rules.definition.consent_document(document_id)
    version = _version(world, document_id, label)
    text = version.text_in(_language(version)) if version is not None else None
    read = {section.number: 45 for section in sections_of(document, text)} if document and text else {}
    right = {question.id: question.answer for question in text.questions} if text is not None else {}
    parts = {part.id: False for part in version.optional_parts} if version is not None else {}
    command = cmd.SignConsent(
        subject, document_id, label, _language(version), PRINTED_NAME, read, right | answers, parts | choices
    )

    def work(uow: UnitOfWork) -> object:
        reauthenticate_for_signature(uow, username, PASSWORD)
        return consent.sign_consent(uow, world.study_id, username, command)

    world.command(PARTICIPANT, Action.PARTICIPANT_SELF, f"the signature of {document_id} version {label}", work)


@step(
    "the participant signs {consent} version {string}",
    example='When the participant signs "ICF" version "1.0"',
    topic=CONSENT,
)
def sign(world: World, document_id: str, label: str) -> None:
    """The participant reads every section, answers every comprehension question right, says No to each optional
    part, types their name and re-enters their password to sign."""
    _sign(world, document_id, label, {}, {})


@step(
    "the participant signs {consent} version {string} answering {string} to {string}",
    example='When the participant signs "ICF" version "1.0" answering "Yes, both will know" to "Q1"',
    topic=CONSENT,
)
def sign_answering(world: World, document_id: str, label: str, answer: str, question: str) -> None:
    """As `the participant signs`, with this answer to one comprehension question: a wrong answer is refused and
    sends the participant back to the question's section."""
    _sign(world, document_id, label, {question: answer}, {})


@step(
    "the participant signs {consent} version {string} saying {string} to {string}",
    example='When the participant signs "ICF" version "1.0" saying "Yes" to "BIOBANK"',
    topic=CONSENT,
)
def sign_choosing(world: World, document_id: str, label: str, choice: str, part: str) -> None:
    """As `the participant signs`, answering Yes or No to one optional part of the document."""
    if choice.lower() not in ("yes", "no"):
        raise ExpectationFailed(f'answer "Yes" or "No" to an optional part, not "{choice}"')
    _sign(world, document_id, label, {}, {part: choice.lower() == "yes"})


@step(
    "the coordinator countersigns the subject's {consent}",
    example='When the coordinator countersigns the subject\'s "ICF"',
    topic=CONSENT,
)
def countersign(world: World, document_id: str) -> None:
    """The person who obtained consent signs after the participant; the signed copy gains their signature."""
    subject, site = world.require_subject(), _site(world)
    command = cmd.CountersignConsent(subject, document_id)
    world.command(
        "coordinator",
        Action.CONSENT_OBTAIN,
        f"the countersignature of {document_id}",
        lambda uow: consent.countersign_consent(
            uow, world.study_id, "coordinator", COORDINATOR_NAME, Role.STUDY_COORDINATOR.value, command
        ),
        site=site,
    )


def _withdraw(world: World, command: cmd.WithdrawConsent) -> None:
    world.reach(command.withdrawn_on)
    site = _site(world)
    world.command(
        "coordinator",
        Action.CONSENT_OBTAIN,
        f"the withdrawal from {command.part or command.document_id}",
        lambda uow: consent.withdraw_consent(uow, world.study_id, command),
        site=site,
    )


@step(
    "the subject withdraws consent to {consent} on {date} because {string}",
    example='When the subject withdraws consent to "ICF" on 2026-02-20 because "moving abroad"',
    topic=CONSENT,
)
def withdraw(world: World, document_id: str, day: str, reason: str) -> None:
    """The coordinator records the subject's withdrawal of consent to the whole document: nothing goes on."""
    _withdraw(world, cmd.WithdrawConsent(world.require_subject(), document_id, day, reason))


@step(
    "the subject withdraws consent to {consent} on {date} because {string}, safety follow-up continuing",
    example='When the subject withdraws consent to "ICF" on 2026-02-20 because "side effects", '
    "safety follow-up continuing",
    topic=CONSENT,
)
def withdraw_keeping_safety(world: World, document_id: str, day: str, reason: str) -> None:
    """A full withdrawal after which the follow-up of safety (adverse events) goes on, as the subject agreed."""
    command = cmd.WithdrawConsent(world.require_subject(), document_id, day, reason, continues=(SAFETY_FOLLOW_UP,))
    _withdraw(world, command)


@step(
    "the subject withdraws the optional part {string} of {consent} on {date} because {string}",
    example='When the subject withdraws the optional part "BIOBANK" of "ICF" on 2026-02-20 because "changed mind"',
    topic=CONSENT,
)
def withdraw_part(world: World, part: str, document_id: str, day: str, reason: str) -> None:
    """Only the optional part is withdrawn (its forms are refused from then on); the main consent stands."""
    _withdraw(world, cmd.WithdrawConsent(world.require_subject(), document_id, day, reason, part=part))


@step(
    "an amendment publishes {consent} version {string} effective {date}, asking every subject to consent again",
    example='Given an amendment publishes "ICF" version "2.0" effective 2026-02-02, asking every subject to consent '
    "again",
    topic=CONSENT,
)
def amendment(world: World, document_id: str, label: str, day: str) -> None:
    """The study builder publishes a protocol amendment on that day: a new version of the document (the text of
    the latest version with a section on what changed; same questions and optional parts) that every subject
    who consented must sign again before their next visit."""
    world.reach(day)
    definition = with_consent_version(
        world.rules.definition, document_id, label, date.fromisoformat(day), f"EC-{day}-{label}"
    )
    version = study_version(definition)
    reason = f"Amendment: {document_id} version {label}"
    published = world.command(
        "study builder",
        Action.STUDY_BUILD,
        f"the amendment with {document_id} version {label}",
        lambda uow: publish_study_version(uow, PublishStudyVersion(version, "yaml", "amendment", reason=reason)),
    )
    if published is not None:
        world.rules = rules_for(version)


def _held(world: World, document_id: str) -> DocumentConsent:
    with world.platform.engine.connect() as connection:
        return consent.read_consent(connection, world.study_id, world.require_subject()).document(document_id)


@step(
    "the subject has consented to {consent} version {string}",
    example='Then the subject has consented to "ICF" version "2.0"',
    topic=CONSENT,
)
def has_consented(world: World, document_id: str, label: str) -> None:
    """The subject's consent to the document stands, on this version (signed electronically or on paper)."""
    held = _held(world, document_id)
    if not held.consented or held.signed_version != label:
        state = f"version {held.signed_version}" if held.signed_version else "not signed"
        state += f", withdrawn on {held.withdrawn_on}" if held.withdrawn_on else ""
        raise ExpectationFailed(f"{document_id} is not consented on version {label}", expected=label, actual=state)


@step(
    "the subject must consent again to {consent} version {string}",
    example='Then the subject must consent again to "ICF" version "2.0"',
    topic=CONSENT,
)
def must_reconsent(world: World, document_id: str, label: str) -> None:
    """An amendment asked for re-consent to this version, and the subject has not signed it yet."""
    due = _held(world, document_id).reconsent
    if due is None or due.version != label:
        actual = f"version {due.version} is due" if due is not None else "no re-consent is due"
        raise ExpectationFailed(f"re-consent to {document_id} {label} is not due", expected=label, actual=actual)


@step(
    "the subject's consent to {consent} is countersigned",
    example='Then the subject\'s consent to "ICF" is countersigned',
    topic=CONSENT,
)
def is_countersigned(world: World, document_id: str) -> None:
    """The latest electronic signature carries the countersignature of the person who obtained consent."""
    held = _held(world, document_id)
    if held.signature is None or held.countersignature is None:
        actual = "no electronic signature" if held.signature is None else "awaiting countersignature"
        raise ExpectationFailed(f"{document_id} is not countersigned", expected="countersigned", actual=actual)


@step(
    "the subject's consent to {consent} is withdrawn",
    example='Then the subject\'s consent to "ICF" is withdrawn',
    topic=CONSENT,
)
def is_withdrawn(world: World, document_id: str) -> None:
    """Consent to the whole document was withdrawn."""
    held = _held(world, document_id)
    if held.withdrawn_on is None:
        raise ExpectationFailed(f"{document_id} is not withdrawn", expected="withdrawn", actual="consent stands")


@step(
    "the subject said {string} to the optional part {string} of {consent}",
    example='Then the subject said "No" to the optional part "BIOBANK" of "ICF"',
    topic=CONSENT,
)
def said_to_part(world: World, choice: str, part: str, document_id: str) -> None:
    """The subject's current answer to the optional part (a withdrawn part reads No)."""
    agreed = _held(world, document_id).choices.get(part)
    actual = "no answer" if agreed is None else ("Yes" if agreed else "No")
    if actual.lower() != choice.lower():
        raise ExpectationFailed(f"the answer to {part} is {actual}", expected=choice, actual=actual)
