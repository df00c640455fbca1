"""API fuzzing: Schemathesis over `/openapi.json` of the real app, served on 127.0.0.1 over a real database.

`prepare_fuzz_target` loads the demo study into the database, simulates a few subjects through the real
handlers (so subjects, forms and queries exist to be hit) and issues an API token to a user who holds every
blinded role in the study at every site. `run_fuzz` serves `create_app` with uvicorn in a thread on a free local
port and runs Schemathesis's own command line (`st run`, every phase: examples, coverage, fuzzing, stateful;
every check) against it in a child process, then reads its JSON report: operations tested, test cases
generated, failures and errors. Path parameters are drawn from the study's real identifiers most of the time
(Schemathesis dictionaries), random otherwise, so requests reach the handlers rather than stopping at 403/404.

Schemathesis is a development dependency (`pip install -e '.[dev]'`); without it `run_fuzz` says so.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialstack.api.app import create_app
from trialstack.bootstrap import Platform, bootstrap
from trialstack.capture.readmodel import list_subjects
from trialstack.clock import FixedClock
from trialstack.errors import TrialStackError
from trialstack.identity import commands as identity_commands
from trialstack.identity import handlers as identity
from trialstack.identity.model import password_problems
from trialstack.identity.policy import Role
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.queries.readmodel import list_queries
from trialstack.reliability.keys import vault_key_for
from trialstack.reliability.serving import served
from trialstack.settings import Settings
from trialstack.simulation.simulator import DEFAULT_START, Simulation
from trialstack.standards.loader import load_study_file

FUZZ_USER = "fuzz-tester"
FUZZ_ROLES = (Role.INVESTIGATOR, Role.MONITOR, Role.DATA_MANAGER, Role.ADMIN)
BUILDER = Actor("system:reliability", "study_builder")
TOKEN_ENV = "TRIALSTACK_FUZZ_TOKEN"


@dataclass(frozen=True)
class FuzzTarget:
    """What the fuzzer aims at: the study, the ids that exist in it, and a token that may do everything."""

    study_id: str
    token: str
    subjects: list[str]
    forms: list[str]
    visits: list[str]
    queries: list[str]


@dataclass
class FuzzReport:
    """The figures of one Schemathesis run (from its JSON report)."""

    operations_total: int
    operations_tested: int
    cases: int
    cases_with_failures: int
    failures: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    phases: dict[str, str]
    seed: int | None
    exit_code: int
    output: str = ""
    warnings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors and self.exit_code == 0

    def summary(self) -> str:
        phases = ", ".join(f"{name} {status}" for name, status in self.phases.items())
        lines = [
            f"operations tested: {self.operations_tested}/{self.operations_total}",
            f"test cases: {self.cases} generated, {self.cases_with_failures} with failures",
            f"phases: {phases}",
            f"failures: {sum(int(f.get('count', 1)) for f in self.failures)}; errors: {len(self.errors)}",
        ]
        for failure in self.failures:
            where = ", ".join(failure.get("operations", []))
            lines.append(f"  {failure.get('code')} {failure.get('title')} x{failure.get('count')}: {where}")
        for error in self.errors:
            lines.append(f"  error: {error.get('title')} x{error.get('count')}")
        return "\n".join(lines)


def prepare_fuzz_target(platform: Platform, study: Path, *, subjects: int = 3, seed: int = 11) -> FuzzTarget:
    """Publish `study`, simulate `subjects` through the handlers and issue the fuzzing user's token."""
    definition = load_study_file(study)
    study_id = definition.study.id
    with platform.unit_of_work(BUILDER) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", study.name))
        uow.commit()
    simulated = bootstrap(platform.settings, clock=FixedClock(DEFAULT_START))
    try:
        Simulation(simulated, study_id, seed=seed, subjects=subjects, follow_up_days=40).run()
    finally:
        simulated.close()
    sites = frozenset(site.id for site in definition.sites)
    with platform.unit_of_work(BUILDER) as uow:
        identity.register_user(uow, identity_commands.RegisterUser(FUZZ_USER, "Fuzz Tester", _password()))
        for role in FUZZ_ROLES:
            at = sites if role is Role.INVESTIGATOR else frozenset()
            identity.grant_role(uow, identity_commands.GrantRole(FUZZ_USER, study_id, role, at))
        token = identity.issue_api_token(uow, FUZZ_USER, label="reliability fuzz")
        uow.commit()
    with platform.engine.connect() as connection:
        subject_ids = [str(row["subject_id"]) for row in list_subjects(connection, study_id)]
        query_ids = [str(row["query_id"]) for row in list_queries(connection, study_id)]
    return FuzzTarget(study_id, token.secret, subject_ids, _forms(definition), _visits(definition), query_ids)


def _password() -> str:
    """A password nobody knows: the fuzzer signs in with the token only (a signature attempt fails, as it should)."""
    while True:
        candidate = secrets.token_urlsafe(18)
        if not password_problems(FUZZ_USER, candidate):
            return candidate


def _visits(definition: StudyDefinition) -> list[str]:
    return [visit.id for visit in definition.schedule.visits]


def _forms(definition: StudyDefinition) -> list[str]:
    keys = [f"{visit.id}.{form}" for visit in definition.schedule.visits for form in visit.forms]
    return keys + [f"{form}.1" for form in definition.schedule.log_forms]


def schemathesis_config(target: FuzzTarget) -> str:
    """The Schemathesis project configuration (TOML): the bearer token from the environment, real ids."""

    def values(items: list[str]) -> str:
        return json.dumps(items or ["NONE"])

    return f"""
headers = {{ Authorization = "Bearer ${{{TOKEN_ENV}}}" }}

[dictionaries.subjects]
values = {values(target.subjects)}
[dictionaries.forms]
values = {values(target.forms)}
[dictionaries.visits]
values = {values(target.visits)}
[dictionaries.queries]
values = {values(target.queries)}
[dictionaries.short_streams]
values = [0, 1]

[parameters]
"path.study_id" = "{target.study_id}"
"path.subject_id" = {{ dictionary = "subjects", probability = 0.8 }}
"path.form" = {{ dictionary = "forms", probability = 0.8 }}
"path.visit" = {{ dictionary = "visits", probability = 0.8 }}
"path.query_id" = {{ dictionary = "queries", probability = 0.8 }}
"query.max_seconds" = {{ dictionary = "short_streams", probability = 1.0 }}

# A request the schema allows may still be refused as invalid input (422): whether an item is on a form, a date
# is not in the future, or a change carries its reason depends on the study definition (data) and on the
# subject's state, which no static schema can state; 429 is the sign-in throttle at work. 5xx stays a failure
# (not_a_server_error).
[checks.positive_data_acceptance]
expected-statuses = ["2xx", 401, 403, 404, 409, 412, 422, 429]
"""


def schemathesis_available() -> bool:
    return importlib.util.find_spec("schemathesis") is not None


def run_schemathesis(
    base_url: str,
    config: str,
    token: str,
    *,
    examples: int,
    seed: int | None = None,
    max_time: int | None = None,
    workers: int = 1,
    extra: tuple[str, ...] = (),
) -> FuzzReport:
    """Run `st run BASE/openapi.json` with every phase and check; its JSON report as a FuzzReport."""
    if not schemathesis_available():
        raise TrialStackError("schemathesis is not installed: pip install -e '.[dev]' (it is a dev dependency)")
    with tempfile.TemporaryDirectory(prefix="trialstack-fuzz-") as folder:
        config_file = Path(folder) / "schemathesis.toml"
        config_file.write_text(config, encoding="utf-8")
        report = Path(folder) / "report.json"
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file),
            "run", f"{base_url}/openapi.json",
            "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", str(examples),
            "--workers", str(workers),
            "--request-timeout", "30",
            "--report", "json", "--report-json-path", str(report),
            *(("--seed", str(seed)) if seed is not None else ()),
            *(("--max-time", str(max_time)) if max_time is not None else ()),
            *extra,
        ]  # fmt: skip
        environment = {**os.environ, TOKEN_ENV: token, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"}
        completed = subprocess.run(
            command, cwd=folder, env=environment, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        output = completed.stdout + completed.stderr
        if not report.exists():
            raise TrialStackError(f"schemathesis wrote no report (exit {completed.returncode}):\n{output[-4000:]}")
        data = json.loads(report.read_text(encoding="utf-8"))
    return FuzzReport(
        operations_total=int(data["operations"]["total"]),
        operations_tested=int(data["operations"]["tested"]),
        cases=int(data["test_cases"]["generated"]),
        cases_with_failures=int(data["test_cases"]["with_failures"]),
        failures=list(data.get("failures") or []),
        errors=list(data.get("errors") or []),
        phases={name: str(phase.get("status")) for name, phase in (data.get("phases") or {}).items()},
        seed=data.get("seed"),
        exit_code=completed.returncode,
        output=output,
        warnings=dict(data.get("warnings") or {}),
    )


@contextmanager
def fuzz_target(database_url: str, study: Path, *, subjects: int = 3) -> Iterator[tuple[Platform, FuzzTarget]]:
    """A migrated platform on `database_url` with the study loaded and the fuzzing user's token."""
    with tempfile.TemporaryDirectory(prefix="trialstack-fuzz-key-") as keys, vault_key_for(database_url, Path(keys)):
        platform = bootstrap(Settings.from_env(database_url), migrate=True)
        try:
            yield platform, prepare_fuzz_target(platform, study, subjects=subjects)
        finally:
            platform.close()


def run_fuzz(
    database_url: str,
    study: Path,
    *,
    examples: int,
    seed: int | None = None,
    max_time: int | None = None,
    subjects: int = 3,
) -> FuzzReport:
    """Load the study into an empty database, serve the real app on it and fuzz every route."""
    with fuzz_target(database_url, study, subjects=subjects) as (platform, target), served(create_app(platform)) as url:
        return run_schemathesis(
            url, schemathesis_config(target), target.token, examples=examples, seed=seed, max_time=max_time
        )
