"""Key risk indicators: every KRI per site and over the caller's sites, and the rows behind one (the drill-down).

Figures are computed as of the server's day from ops' read model, which folds no blinded event: what a blinded
caller receives is what anyone receives, and derives from nothing that reveals a treatment (ADR 13).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import Connection

from trialstack.api.openapi import AUTHENTICATED_ERRORS
from trialstack.api.platform import platform_of
from trialstack.api.security import Authorized, requires
from trialstack.errors import NotFound
from trialstack.identity.policy import Action
from trialstack.ops.drilldown import kri_id, kri_rows
from trialstack.ops.figures import kri_report
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.readmodel import version_in_force

router = APIRouter(prefix="/api/v1/studies", tags=["kris"], responses=AUTHENTICATED_ERRORS)
KriRead = Annotated[Authorized, requires(Action.KRI_READ, site=None)]


def definition_of(connection: Connection, study_id: str) -> StudyDefinition:
    version = version_in_force(connection, study_id)
    if version is None:
        raise NotFound(f"study {study_id} is not loaded", field="study")
    return version.definition


@router.get("/{study_id}/kris")
def get_kris(study_id: str, request: Request, auth: KriRead) -> dict[str, Any]:
    """Every KRI as of today: per site the caller sees, and over those sites (`scope` "study" when that is every
    site), each with its value, status (`none`, `ok`, `warn`, `breach`), the level that decided it, and the
    status last recorded by a KRI check; the enrolment plan month by month; the KRIs not available yet."""
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        definition = definition_of(connection, study_id)
        return kri_report(connection, definition, study_id, platform.clock.now().date(), auth.sites)


@router.get("/{study_id}/kris/{kri}")
def get_kri_rows(
    study_id: str,
    kri: str,
    request: Request,
    auth: KriRead,
    site: Annotated[str | None, Query(description="One site's rows (one the caller may see)")] = None,
) -> dict[str, Any]:
    """The rows behind a KRI at the caller's sites: subjects, queries, forms, visits, edit checks or kits."""
    chosen = kri_id(kri)
    if site is not None:
        auth.at_site(site)
    platform = platform_of(request)
    with platform.engine.connect() as connection:
        definition = definition_of(connection, study_id)
        return kri_rows(connection, definition, study_id, chosen, platform.clock.now().date(), auth.sites, site)
