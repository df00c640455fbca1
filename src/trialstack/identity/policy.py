"""Who may do what: role × action, scoped by study and site, and who may see allocations. Pure.

This is the one place authorization is decided (DESIGN.md §5); adapters call `authorize` before any handler.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from trialstack.errors import TrialStackError


class Role(StrEnum):
    INVESTIGATOR = "investigator"
    STUDY_COORDINATOR = "study_coordinator"
    MONITOR = "monitor"
    DATA_MANAGER = "data_manager"
    MEDICAL_MONITOR = "medical_monitor"
    SAFETY = "safety"
    SPONSOR_VIEWER = "sponsor_viewer"
    UNBLINDED_PHARMACIST = "unblinded_pharmacist"
    STUDY_BUILDER = "study_builder"
    ADMIN = "admin"
    PARTICIPANT = "participant"


class Action(StrEnum):
    STUDY_READ = "study.read"
    STUDY_BUILD = "study.build"
    STUDY_LOCK = "study.lock"
    SUBJECT_READ = "subject.read"
    SUBJECT_SCREEN = "subject.screen"
    SUBJECT_ENROL = "subject.enrol"
    SUBJECT_WITHDRAW = "subject.withdraw"
    DATA_ENTER = "data.enter"
    QUERY_OPEN = "query.open"
    QUERY_ANSWER = "query.answer"
    QUERY_CLOSE = "query.close"
    SDV_PERFORM = "sdv.perform"
    FORM_FREEZE = "form.freeze"
    CASEBOOK_LOCK = "casebook.lock"
    CASEBOOK_SIGN = "casebook.sign"
    AUDIT_READ = "audit.read"
    ALLOCATION_READ = "allocation.read"
    EVENTS_READ = "events.read"
    USER_ADMIN = "user.admin"
    PERSONAL_DATA_ERASE = "personal_data.erase"
    CONSENT_READ = "consent.read"
    CONSENT_OBTAIN = "consent.obtain"
    PARTICIPANT_SELF = "participant.self"
    ECOA_READ = "ecoa.read"
    ECOA_ADMINISTER = "ecoa.administer"
    ECOA_ALERT_ACKNOWLEDGE = "ecoa.alert.acknowledge"
    SUBJECT_RANDOMIZE = "subject.randomize"
    SUBJECT_UNBLIND = "subject.unblind"
    KIT_DISPENSE = "kit.dispense"
    SUPPLY_RECEIVE = "supply.receive"
    SUPPLY_MANAGE = "supply.manage"
    KRI_READ = "kri.read"
    WEBHOOK_MANAGE = "webhook.manage"
    LAB_READ = "lab.read"
    LAB_IMPORT = "lab.import"
    LAB_TRIAGE = "lab.triage"
    LAB_ALERT_REVIEW = "lab.alert.review"


_SITE_STAFF = {
    Action.STUDY_READ, Action.SUBJECT_READ, Action.AUDIT_READ, Action.CONSENT_READ, Action.ECOA_READ, Action.LAB_READ,
}  # fmt: skip
_OBTAINS_CONSENT = {Action.CONSENT_OBTAIN, Action.ECOA_ADMINISTER}
_TREATS = {Action.SUBJECT_RANDOMIZE, Action.KIT_DISPENSE, Action.SUPPLY_RECEIVE}
_MONITORING = _SITE_STAFF | {Action.QUERY_OPEN, Action.QUERY_CLOSE, Action.EVENTS_READ, Action.KRI_READ}

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.INVESTIGATOR: frozenset(
        _SITE_STAFF
        | {Action.SUBJECT_SCREEN, Action.SUBJECT_ENROL, Action.SUBJECT_WITHDRAW, Action.DATA_ENTER}
        | {Action.QUERY_ANSWER, Action.CASEBOOK_SIGN, Action.ECOA_ALERT_ACKNOWLEDGE, Action.SUBJECT_UNBLIND}
        | {Action.LAB_ALERT_REVIEW}
        | _OBTAINS_CONSENT
        | _TREATS
    ),
    Role.STUDY_COORDINATOR: frozenset(
        _SITE_STAFF
        | {Action.SUBJECT_SCREEN, Action.SUBJECT_ENROL, Action.SUBJECT_WITHDRAW, Action.DATA_ENTER}
        | {Action.QUERY_ANSWER}
        | _OBTAINS_CONSENT
        | _TREATS
    ),
    Role.MONITOR: frozenset(_MONITORING | {Action.SDV_PERFORM}),
    Role.DATA_MANAGER: frozenset(
        _MONITORING
        | {Action.FORM_FREEZE, Action.CASEBOOK_LOCK, Action.STUDY_LOCK, Action.PERSONAL_DATA_ERASE}
        | {Action.WEBHOOK_MANAGE, Action.LAB_IMPORT, Action.LAB_TRIAGE}
    ),
    Role.MEDICAL_MONITOR: frozenset(_MONITORING),
    Role.SAFETY: frozenset(_SITE_STAFF | {Action.EVENTS_READ, Action.KRI_READ}),
    Role.SPONSOR_VIEWER: frozenset({Action.STUDY_READ, Action.SUBJECT_READ, Action.KRI_READ}),
    Role.UNBLINDED_PHARMACIST: frozenset(
        {Action.STUDY_READ, Action.SUBJECT_READ, Action.ALLOCATION_READ, Action.SUPPLY_RECEIVE, Action.SUPPLY_MANAGE}
        | {Action.KIT_DISPENSE, Action.AUDIT_READ, Action.EVENTS_READ, Action.WEBHOOK_MANAGE}
    ),
    Role.STUDY_BUILDER: frozenset({Action.STUDY_READ, Action.STUDY_BUILD}),
    Role.ADMIN: frozenset(
        {Action.STUDY_READ, Action.USER_ADMIN, Action.AUDIT_READ, Action.EVENTS_READ, Action.WEBHOOK_MANAGE}
    ),
    Role.PARTICIPANT: frozenset({Action.PARTICIPANT_SELF}),
}

UNBLINDED_ROLES = frozenset({Role.UNBLINDED_PHARMACIST})
"""Roles that see allocations, arms and kit treatments; every other role is blinded."""


class Forbidden(TrialStackError):
    code = "forbidden"


ALL_SITES: frozenset[str] = frozenset({"*"})


@dataclass(frozen=True)
class Grant:
    """A role in one study, at some sites (`ALL_SITES` for sponsor-side roles that see every site).

    A participant's grant also names the one subject the account belongs to (`subject_id`).
    """

    study_id: str
    role: Role
    sites: frozenset[str] = ALL_SITES
    subject_id: str | None = None

    def covers_site(self, site_id: str | None) -> bool:
        return site_id is None or "*" in self.sites or site_id in self.sites


@dataclass(frozen=True)
class Principal:
    """An authenticated user with their grants; adapters build it from a session or a token."""

    user_id: str
    username: str
    display_name: str
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    def grants_in(self, study_id: str) -> list[Grant]:
        return [grant for grant in self.grants if grant.study_id == study_id]

    def sites_in(self, study_id: str) -> frozenset[str]:
        """The sites this principal may see in a study (`ALL_SITES` if any grant covers all)."""
        sites: set[str] = set()
        for grant in self.grants_in(study_id):
            if "*" in grant.sites:
                return ALL_SITES
            sites |= grant.sites
        return frozenset(sites)

    def own_subject(self, study_id: str) -> str | None:
        """The subject a participant account belongs to in the study; None for staff."""
        return next((grant.subject_id for grant in self.grants_in(study_id) if grant.subject_id), None)

    def is_unblinded(self, study_id: str) -> bool:
        return any(grant.role in UNBLINDED_ROLES for grant in self.grants_in(study_id))


def authorize(principal: Principal, action: Action, study_id: str, site_id: str | None = None) -> Grant:
    """The grant that allows `action` in the study at the site, or Forbidden saying what is missing."""
    for grant in principal.grants_in(study_id):
        if action in PERMISSIONS[grant.role] and grant.covers_site(site_id):
            return grant
    where = f" at site {site_id}" if site_id is not None else ""
    raise Forbidden(f"{principal.username} may not {action.value} in study {study_id}{where}")


def authorize_study_wide(principal: Principal, action: Action, study_id: str) -> Grant:
    """A grant allowing `action` at every site of the study (study-wide exports), or Forbidden."""
    for grant in principal.grants_in(study_id):
        if "*" in grant.sites and action in PERMISSIONS[grant.role]:
            return grant
    raise Forbidden(f"{principal.username} may not {action.value} across every site of study {study_id}")


def authorize_at_every_site(principal: Principal, action: Action, study_id: str, sites: Iterable[str]) -> Grant:
    """A grant allowing `action` at each of `sites` (every site of the study, for something that reaches all of
    them, like an unblinded webhook), or Forbidden naming the first site it is not granted at."""
    granted: Grant | None = None
    for site_id in sorted(sites):
        try:
            granted = authorize(principal, action, study_id, site_id)
        except Forbidden:
            raise Forbidden(
                f"{principal.username} may not {action.value} at every site of study {study_id} (not at site {site_id})"
            ) from None
    if granted is None:
        raise Forbidden(f"study {study_id} has no sites: nobody may {action.value} at every one")
    return granted
