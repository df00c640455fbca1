"""Informed consent in the simulation: how sites obtain it before the screening visit, and again after an amendment.

Every other site (the first, the third, ...) uses eConsent where the version in force has a text: the coordinator
invites the subject, the participant activates the invitation (their own account), reads every section, answers
the comprehension questions (now and then wrongly first), says Yes or No to the optional parts and signs; the
coordinator countersigns. The other sites record the consent signed on paper. Everything goes through the consent
and identity handlers, one unit of work per command, like the API.

Rendering a signed copy (a PDF, at each signature and countersignature) costs about a quarter of a second, so about
`APP_PARTICIPANTS` subjects per eConsent site, spread over the enrolment period (every n-th), use the app;
the others sign on paper there too.
Participant accounts get a cheap Argon2id profile while the simulation runs (demo databases only: 75 accounts at
the production profile would cost ~11 s); the first sign-in rehashes the password with the production profile.
"""

from __future__ import annotations

import math
import random
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher

from trialstack.consent import commands as cmd
from trialstack.consent import handlers as consent
from trialstack.consent.events import SAFETY_FOLLOW_UP
from trialstack.consent.model import sections_of
from trialstack.identity import commands as identity_cmd
from trialstack.identity import handlers as identity
from trialstack.identity.crypto import Passwords, use_passwords
from trialstack.identity.model import password_problems
from trialstack.identity.policy import Role
from trialstack.identity.readmodel import load_principal
from trialstack.ledger.envelope import Actor
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import ConsentDocument, ConsentVersion

if TYPE_CHECKING:
    from trialstack.simulation.simulator import Simulation, SubjectRun

APP_PARTICIPANTS = 6
"""About how many subjects per eConsent site consent in the participant app: bounds the demo's time at any size
(150 subjects: 22.6 s with 6, 31.0 s with 10, on an idle 2-core machine)."""
FIRST_NAMES = ("Alex", "Sam", "Maria", "Jürgen", "Aisha", "Wei", "Olga", "José", "Fatima", "Liam", "Noor", "Kenji")
LAST_NAMES = ("Novak", "García", "Okafor", "Müller", "Chen", "Haddad", "Rossi", "Kowalski", "Smith", "Tanaka")


@dataclass(frozen=True)
class Participant:
    username: str
    password: str
    subject_id: str
    site_id: str


@contextmanager
def simulated_credentials(rng: random.Random) -> Iterator[None]:
    """While the simulation runs: participant accounts are hashed with a cheap Argon2id profile (rehashed with the
    production one at first sign-in), and invitation codes are drawn from the seed, so that the same seed gives the
    same read models (the consent read model finds an invitation by its code's hash)."""
    previous = use_passwords(Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)))
    drawn = consent.new_invitation_code
    alphabet = consent._CODE_ALPHABET

    def seeded_code() -> str:
        raw = "".join(rng.choice(alphabet) for _ in range(12))
        return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"

    consent.new_invitation_code = seeded_code
    try:
        yield
    finally:
        use_passwords(previous)
        consent.new_invitation_code = drawn


def _password(username: str) -> str:
    while True:
        candidate = secrets.token_urlsafe(12)
        if not password_problems(username, candidate):
            return candidate


def _activate(uow: UnitOfWork, study_id: str, code: str, username: str, password: str) -> None:
    """The participant's first visit to the app: the consent context checks the code, identity opens the account."""
    activated = consent.activate_participant(uow, cmd.ActivateParticipant(code, username, password))
    identity.open_participant_account(
        uow,
        identity_cmd.OpenParticipantAccount(
            username, password, activated.study_id, activated.site_id, activated.subject_id
        ),
    )


class ConsentDesk:
    """The sites' consent work for one simulation; `participants` are the accounts opened, in order."""

    def __init__(self, simulation: Simulation) -> None:
        self.sim = simulation
        self.rng = random.Random(f"consent:{simulation.seed}")
        """Its own generator: consent work leaves the draws of the rest of the simulation as they were."""
        self.electronic_sites = {site.id for site in simulation.definition.sites[::2]}
        self.participants: list[Participant] = []
        self._names: dict[str, str] = {}
        self._part_withdrawals = 0
        per_site = simulation.subjects / max(1, len(simulation.definition.sites))
        self._stride = max(1, math.ceil(per_site / APP_PARTICIPANTS))
        self._screened: dict[str, int] = {}

    @property
    def documents(self) -> tuple[ConsentDocument, ...]:
        return self.sim.definition.consent

    def _today(self) -> date:
        return self.sim.clock.now().date()

    def _in_force(self, run: SubjectRun, document: ConsentDocument) -> ConsentVersion | None:
        return document.current_at(run.site_id, self._today())

    def _display_name(self, actor: Actor) -> str:
        username = actor.id.removeprefix("user:")
        if username not in self._names:
            with self.sim.platform.engine.connect() as connection:
                principal = load_principal(connection, username)
            self._names[username] = principal.display_name if principal is not None else username
        return self._names[username]

    def _typed_name(self, run: SubjectRun) -> str:
        if run.typed_name is None:
            run.typed_name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
        return run.typed_name

    # Obtaining consent ------------------------------------------------------------------------------------------
    def obtain(self, run: SubjectRun) -> None:
        """Consent to every document whose version in force the subject has not signed (first or re-consent)."""
        for document in self.documents:
            version = self._in_force(run, document)
            if version is None or run.signed.get(document.id) == version.version:
                continue
            if version.electronic and self._uses_app(run):
                self._sign_electronically(run, document, version)
            else:
                self._record_on_paper(run, document, version)
        run.reconsent_due = any(
            (version := self._in_force(run, document)) is not None and run.signed.get(document.id) != version.version
            for document in self.documents
            if document.required
        )

    def _uses_app(self, run: SubjectRun) -> bool:
        """Every n-th subject screened at an eConsent site (n spreads about APP_PARTICIPANTS over the period)."""
        if run.uses_app is None:
            order = self._screened[run.site_id] = self._screened.get(run.site_id, -1) + 1
            run.uses_app = run.site_id in self.electronic_sites and order % self._stride == 0
        return run.uses_app

    def _record_on_paper(self, run: SubjectRun, document: ConsentDocument, version: ConsentVersion) -> None:
        coordinator = self.sim.staff.coordinator(run.site_id)
        choices = {part.id: self.rng.random() < 0.6 for part in version.optional_parts}
        language = version.texts[0].language if version.texts and not version.text_in("en") else "en"
        command = cmd.RecordPaperConsent(
            run.subject_id, document.id, version.version, self._today().isoformat(), language, choices
        )
        obtained_by = (coordinator.id.removeprefix("user:"), self._display_name(coordinator))
        if self.sim._do(coordinator, consent.record_paper_consent, run.site_id, obtained_by, command) is not None:
            self._signed(run, document, version, choices)

    def account(self, run: SubjectRun, language: str) -> str | None:
        """The subject's participant account: invited and activated now unless they have one (for eConsent, or
        for questionnaires on their own phone)."""
        if run.username is not None:
            return run.username
        coordinator = self.sim.staff.coordinator(run.site_id)
        invitation: dict[str, str] = {}

        def invite(uow: UnitOfWork, study_id: str, command: cmd.InviteParticipant) -> None:
            invitation["code"] = consent.invite_participant(uow, study_id, run.site_id, command).code

        if self.sim._do(coordinator, invite, cmd.InviteParticipant(run.subject_id, language)) is None:
            return None
        username = re.sub(r"[^a-z0-9._-]+", "-", f"p-{run.subject_id.lower()}")
        password = _password(username)
        participant = Actor(f"user:{username}", Role.PARTICIPANT.value)
        if self.sim._do(participant, _activate, invitation["code"], username, password) is None:
            return None
        self.participants.append(Participant(username, password, run.subject_id, run.site_id))
        run.username = username
        return username

    def _sign_electronically(self, run: SubjectRun, document: ConsentDocument, version: ConsentVersion) -> None:
        text = version.text_in("en") or version.texts[0]
        username = self.account(run, text.language)
        if username is None:
            return
        participant = Actor(f"user:{username}", Role.PARTICIPANT.value)
        read = {section.number: self.rng.randint(20, 240) for section in sections_of(document, text)}
        answers = {question.id: question.answer for question in text.questions}
        choices = {part.id: self.rng.random() < 0.6 for part in version.optional_parts}
        attempts: dict[str, int] = {}
        if text.questions and self.rng.random() < 0.1:  # a wrong answer first: back to the section, then right
            question = self.rng.choice(text.questions)
            wrong = next(option for option in question.options if option != question.answer)
            self._sign(participant, username, run, document, version, text.language, read,
                       answers | {question.id: wrong}, choices, {})  # fmt: skip
            attempts = {question.id: 2}
        if self._sign(participant, username, run, document, version, text.language, read, answers, choices, attempts):
            self._signed(run, document, version, choices)
            coordinator = self.sim.staff.coordinator(run.site_id)
            self.sim._do(
                coordinator, consent.countersign_consent, coordinator.id.removeprefix("user:"),
                self._display_name(coordinator), coordinator.role, cmd.CountersignConsent(run.subject_id, document.id),
            )  # fmt: skip

    def _sign(
        self,
        participant: Actor,
        username: str,
        run: SubjectRun,
        document: ConsentDocument,
        version: ConsentVersion,
        language: str,
        *details: Any,
    ) -> bool:
        read, answers, choices, attempts = details
        command = cmd.SignConsent(
            run.subject_id, document.id, version.version, language, self._typed_name(run), read, answers, choices,
            attempts=attempts,
        )  # fmt: skip
        return self.sim._do(participant, consent.sign_consent, username, command) is not None

    def _signed(
        self, run: SubjectRun, document: ConsentDocument, version: ConsentVersion, choices: dict[str, bool]
    ) -> None:
        run.signed[document.id] = version.version
        run.parts = {held for held in run.parts if held[0] != document.id}
        run.parts |= {(document.id, part) for part, agreed in choices.items() if agreed}
        if run.parts and (self._part_withdrawals == 0 or self.rng.random() < 0.06):
            self._part_withdrawals += 1
            document_id, part = sorted(run.parts)[0]
            self.later((10, 40), lambda: self.withdraw_part(run, document_id, part))

    def later(self, days: tuple[int, int], action: Callable[[], None]) -> None:
        offset = timedelta(days=self.rng.randint(*days), hours=self.rng.randint(1, 7))
        self.sim.at(self.sim.clock.now() + offset, action)

    # Withdrawals ------------------------------------------------------------------------------------------------
    def withdraw_part(self, run: SubjectRun, document_id: str, part: str) -> None:
        """The participant no longer wants their samples kept: the optional part is withdrawn, the consent stands."""
        if (document_id, part) not in run.parts or document_id in run.withdrawn_documents:
            return
        reason = "Participant no longer wants samples stored for future research"
        command = cmd.WithdrawConsent(run.subject_id, document_id, self._today().isoformat(), reason, part=part)
        if self.sim._do(self.sim.staff.coordinator(run.site_id), consent.withdraw_consent, command) is not None:
            run.parts.discard((document_id, part))

    def withdraw(self, run: SubjectRun, on: date) -> None:
        """The subject withdraws consent to every document; the follow-up of safety goes on, as they agreed."""
        reason = "Subject withdrew consent for further visits"
        for document_id in list(run.signed):
            if document_id in run.withdrawn_documents:
                continue
            command = cmd.WithdrawConsent(
                run.subject_id, document_id, on.isoformat(), reason, continues=(SAFETY_FOLLOW_UP,)
            )
            if self.sim._do(self.sim.staff.coordinator(run.site_id), consent.withdraw_consent, command) is not None:
                run.withdrawn_documents.add(document_id)
