"""Authorization at the edge: which grant allows this request, and the ledger actor it acts as.

A subject at a site the user cannot see is answered as not found (its existence is not disclosed).
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import Connection

from trialstack.capture.readmodel import get_subject
from trialstack.errors import NotFound
from trialstack.identity.policy import Action, Grant, Principal, authorize
from trialstack.ledger.envelope import Actor
from trialstack.queries.readmodel import get_query


def actor_for(principal: Principal, grant: Grant) -> Actor:
    return Actor(id=f"user:{principal.username}", role=grant.role.value)


def visible_sites(principal: Principal, study_id: str) -> frozenset[str] | None:
    """The sites whose subjects the principal sees in the study; None means every site."""
    sites = principal.sites_in(study_id)
    return None if "*" in sites else sites


def subject_site(connection: Connection, principal: Principal, study_id: str, subject_id: str) -> str:
    row = get_subject(connection, study_id, subject_id)
    sites = visible_sites(principal, study_id)
    if row is None or (sites is not None and row["site_id"] not in sites):
        raise NotFound(f"subject {subject_id} not found in study {study_id}", field="subject")
    return str(row["site_id"])


def subject_site_of(request: Request, principal: Principal) -> str:
    """Site resolver for `requires(..., site=subject_site_of)`: the site of the subject in the path."""
    with request.app.state.platform.engine.connect() as connection:
        return subject_site(connection, principal, request.path_params["study_id"], request.path_params["subject_id"])


def query_site_of(request: Request, principal: Principal) -> str:
    """Site resolver for query routes: the site of the query in the path (not found outside the user's sites)."""
    study_id, query_id = request.path_params["study_id"], request.path_params["query_id"]
    with request.app.state.platform.engine.connect() as connection:
        row = get_query(connection, study_id, query_id)
    sites = visible_sites(principal, study_id)
    if row is None or (sites is not None and row["site_id"] not in sites):
        raise NotFound(f"query {query_id} not found in study {study_id}", field="query_id")
    return str(row["site_id"])


def authorize_subject(
    connection: Connection, principal: Principal, action: Action, study_id: str, subject_id: str
) -> tuple[Grant, str]:
    """The grant for `action` on the subject's site, and that site; NotFound or Forbidden otherwise."""
    site_id = subject_site(connection, principal, study_id, subject_id)
    return authorize(principal, action, study_id, site_id), site_id
