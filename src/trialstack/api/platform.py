"""Request-scoped access to the Platform and the StudyVersion in force."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import Connection

from trialstack.bootstrap import Platform
from trialstack.capture.checks import StudyRules
from trialstack.capture.handlers import rules_in_force


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def study_rules_of(connection: Connection, study_id: str) -> StudyRules:
    return rules_in_force(connection, study_id)
