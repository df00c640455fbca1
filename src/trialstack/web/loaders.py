"""What most pages load first, authorized the way the API authorizes: the study in force, a subject's casebook."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import Request

from trialstack.api.access import actor_for, authorize_subject
from trialstack.api.platform import platform_of, study_rules_of
from trialstack.capture.checks import StudyRules
from trialstack.capture.handlers import read_casebook
from trialstack.capture.model import Casebook
from trialstack.capture.readmodel import get_subject
from trialstack.errors import NotFound
from trialstack.identity.policy import Action, Forbidden, Grant, Principal
from trialstack.ledger.envelope import Actor


@dataclass(frozen=True)
class SubjectPage:
    """A subject the principal may act on: the grant that allows it, the site, the rules and the casebook."""

    grant: Grant
    site_id: str
    rules: StudyRules
    casebook: Casebook
    subject: dict[str, Any]
    actor: Actor


def today(request: Request) -> date:
    return platform_of(request).clock.now().date()


def load_subject(request: Request, principal: Principal, study_id: str, subject_id: str, action: Action) -> SubjectPage:
    """NotFound for a subject at a site the user cannot see (as the API answers), Forbidden without the action."""
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        grant, site_id = authorize_subject(connection, principal, action, study_id, subject_id)
        rules = study_rules_of(connection, study_id)
        casebook = read_casebook(connection, platform.cache, study_id, subject_id, platform.vault)
        subject = get_subject(connection, study_id, subject_id) or {}
    return SubjectPage(grant, site_id, rules, casebook, subject, actor_for(principal, grant))


def load_rules(request: Request, study_id: str) -> StudyRules:
    with platform_of(request).engine.connect() as connection:
        return study_rules_of(connection, study_id)


def authorize_staff_on_subject(
    request: Request, principal: Principal, action: Action, study_id: str, subject_id: str
) -> tuple[Grant, str]:
    """The grant and site for `action` on the subject; a participant sees no other subject, and no staff page."""
    own = principal.own_subject(study_id)
    if own is not None:
        if own != subject_id:
            raise NotFound(f"subject {subject_id} not found in study {study_id}", field="subject")
        raise Forbidden(f"{principal.username} may not {action.value} in study {study_id}")
    with platform_of(request).engine.connect() as connection:
        return authorize_subject(connection, principal, action, study_id, subject_id)
