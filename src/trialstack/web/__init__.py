"""The web application: server-rendered pages (Jinja2 + htmx, assets served from here) over the same handlers,
authorization and sessions as the API. `install_web(app)` mounts it on the FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from trialstack.web import (
    routes_audit,
    routes_auth,
    routes_build,
    routes_consent,
    routes_dashboard,
    routes_ecoa,
    routes_ecoa_tablet,
    routes_forms,
    routes_home,
    routes_irt,
    routes_labs,
    routes_participant,
    routes_participant_ecoa,
    routes_pharmacy,
    routes_queries,
    routes_sdv,
    routes_sign,
    routes_status,
    routes_subjects,
    routes_visits,
)

ROUTERS = (
    routes_auth,
    routes_home,
    routes_subjects,
    routes_visits,
    routes_forms,
    routes_status,
    routes_queries,
    routes_sdv,
    routes_sign,
    routes_audit,
    routes_build,
    routes_consent,
    routes_participant,
    routes_participant_ecoa,
    routes_ecoa,
    routes_ecoa_tablet,
    routes_irt,
    routes_pharmacy,
    routes_labs,
    routes_dashboard,
)

STATIC = Path(__file__).resolve().parent / "static"


def install_web(app: FastAPI) -> None:
    """Mount the static assets under /static and every page router."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(routes_ecoa_tablet.TabletGuard)  # a handed-over site tablet shows only its questionnaire
    for module in ROUTERS:
        app.include_router(module.router)
