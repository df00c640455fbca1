"""The ASGI application: routers mounted on one FastAPI app built around a Platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

import trialstack
from trialstack.api import (
    routes_auth,
    routes_capture,
    routes_consent,
    routes_ecoa,
    routes_irt,
    routes_kris,
    routes_labs,
    routes_queries,
    routes_studies,
    routes_webhooks,
)
from trialstack.api.bodies import RequestBodyGuard
from trialstack.api.ecoa_sweeper import start_sweeper
from trialstack.api.kri_sweeper import start_kri_checks
from trialstack.api.openapi import install_openapi, problem_responses
from trialstack.api.reconcile_sweeper import start_reconcile_sweeps
from trialstack.api.security import install_security
from trialstack.bootstrap import Platform
from trialstack.web import install_web


def create_app(platform: Platform) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sweeper = start_sweeper(platform)  # TRIALSTACK_ECOA_SWEEP_MINUTES (0: off); first sweep after one period
        kri_checks = start_kri_checks(platform)  # TRIALSTACK_KRI_CHECK_MINUTES (0: off), likewise
        reconcile_sweeps = start_reconcile_sweeps(platform)  # TRIALSTACK_RECONCILE_SWEEP_MINUTES (0: off), likewise
        try:
            yield
        finally:
            if reconcile_sweeps is not None:
                reconcile_sweeps.stop()
            if sweeper is not None:
                sweeper.stop()
            if kri_checks is not None:
                kri_checks.stop()

    app = FastAPI(title="TrialStack", version=trialstack.__version__, openapi_url="/openapi.json", lifespan=lifespan)
    app.state.platform = platform
    app.add_middleware(RequestBodyGuard)  # added first: the secure headers wrap its answers too
    install_security(app)
    app.include_router(routes_auth.router)
    app.include_router(routes_studies.router)
    app.include_router(routes_capture.router)
    app.include_router(routes_queries.router)
    app.include_router(routes_consent.router)
    app.include_router(routes_ecoa.router)
    app.include_router(routes_irt.router)
    app.include_router(routes_labs.router)
    app.include_router(routes_kris.router)
    app.include_router(routes_webhooks.router)
    install_web(app)
    install_openapi(app)

    @app.get("/health", tags=["ops"], responses=problem_responses(503))
    def health() -> dict[str, str]:
        """Report liveness and whether the database answers."""
        with platform.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "database": platform.engine.dialect.name, "version": trialstack.__version__}

    return app
