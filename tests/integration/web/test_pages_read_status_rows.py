"""The subject list, the study home and the SDV list read capture's casebook status rows (and the queries read
model), a page at a time: on SQLite and PostgreSQL, over a simulated study, they show what folding every casebook
shows, per role and site, and they answer without reading a single event stream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, create_postgres_database, drop_postgres_database, postgres_url_for
from tests.integration.identity.support import PASSWORD, SITE_A, STUDY, add_user, client_class
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform, bootstrap
from trialstack.capture import status_readmodel as status
from trialstack.capture.decide import sdv_items
from trialstack.capture.handlers import read_casebook, rules_in_force
from trialstack.capture.readmodel import latest_signature, list_subjects
from trialstack.capture.views import casebook_matrix, form_status
from trialstack.clock import FixedClock
from trialstack.identity.crypto import Passwords, use_passwords
from trialstack.identity.policy import Action, Principal, Role
from trialstack.identity.readmodel import load_principal
from trialstack.ledger import store
from trialstack.ledger.cache import StreamStateCache
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.queries.commands import OpenQuery
from trialstack.queries.handlers import open_manual_query
from trialstack.queries.readmodel import list_queries
from trialstack.settings import Settings
from trialstack.simulation.simulator import DEFAULT_START, Simulation
from trialstack.standards.loader import load_study_file
from trialstack.web import paging
from trialstack.web.attention import LIMIT, attention
from trialstack.web.grid import build_grid, is_overdue, visit_summaries
from trialstack.web.templating import can

TestClient = client_class()
PEOPLE = {
    "coordinator": (Role.STUDY_COORDINATOR, frozenset({SITE_A})),
    "investigator": (Role.INVESTIGATOR, frozenset({SITE_A})),
    "monitor": (Role.MONITOR, frozenset()),
    "manager": (Role.DATA_MANAGER, frozenset()),
    "viewer": (Role.SPONSOR_VIEWER, frozenset()),
}
SUBJECTS = 14


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def study(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The demo study simulated for SUBJECTS subjects (seed 5) through the real handlers, with one user per role."""
    from argon2 import PasswordHasher

    if request.param == "sqlite":
        url, name = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'pages.db'}", None
    else:
        if not request.getfixturevalue("postgres_available"):
            pytest.fail("PostgreSQL does not answer: .ci/run must start it")
        name = create_postgres_database()
        url = postgres_url_for(name)
    previous = use_passwords(Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)))
    platform = bootstrap(Settings(database_url=url), clock=FixedClock(DEFAULT_START), migrate=True)
    try:
        version = study_version(load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml"))
        with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
            publish_study_version(uow, PublishStudyVersion(version, "yaml", "study.yaml"))
            uow.commit()
        for username, (role, sites) in PEOPLE.items():
            add_user(platform, username, role, sites)
        Simulation(platform, STUDY, seed=5, subjects=SUBJECTS).run()
        with platform.unit_of_work(Actor("user:monitor", "monitor")) as uow:
            for form, item in (("SCREENING.VS", "PULSE"), ("SCREENING.VS", "WEIGHT"), ("SCREENING", "VISIT_DATE")):
                open_manual_query(uow, STUDY, SITE_A, OpenQuery(f"{SITE_A}-001", form, item, "Please check."))
            uow.commit()
        yield platform
    finally:
        platform.close()
        use_passwords(previous)
        if name is not None:
            drop_postgres_database(name)


def principal(platform: Platform, username: str) -> Principal:
    with platform.engine.connect() as connection:
        found = load_principal(connection, username)
    assert found is not None
    return found


def folded_attention(platform: Platform, who: Principal, today: date) -> dict[str, list[tuple[str, ...]]]:
    """The work lists as the pages computed them before the status rows: by folding every casebook."""
    sites_held = who.sites_in(STUDY)
    sites = None if "*" in sites_held else sites_held
    lists: dict[str, list[tuple[str, ...]]] = {"overdue": [], "to_verify": [], "incomplete": [], "to_sign": []}
    with platform.engine.connect() as connection:
        rules = rules_in_force(connection, STUDY)
        for row in list_subjects(connection, STUDY, sites):
            casebook = read_casebook(connection, StreamStateCache(), STUDY, row["subject_id"], platform.vault)
            subject = casebook.subject_id
            state_of = casebook.status.value if casebook.status is not None else None
            if can(who, Action.DATA_ENTER, STUDY) or can(who, Action.SDV_PERFORM, STUDY):
                for visit in casebook_matrix(rules, casebook)["visits"]:
                    if is_overdue(visit, state_of, today):
                        lists["overdue"].append((subject, visit["visit"]))
            for key, state in casebook.forms.items():
                shown = form_status(rules, casebook, key)
                due = [i for i in sdv_items(rules, key, state.items) if i not in state.verified and i in state.items]
                if can(who, Action.SDV_PERFORM, STUDY) and due and shown.status == "complete":
                    lists["to_verify"].append((subject, str(key), str(len(due))))
                if can(who, Action.DATA_ENTER, STUDY) and shown.status == "in_progress":
                    lists["incomplete"].append((subject, str(key), str(len(shown.required_missing))))
            if can(who, Action.CASEBOOK_SIGN, STUDY) and casebook.forms:
                signature = latest_signature(connection, STUDY, subject)
                if signature is None or not signature.valid:
                    lists["to_sign"].append((subject,))
    return {name: sorted(rows) for name, rows in lists.items()}


def read_attention(platform: Platform, who: Principal, today: date) -> dict[str, list[tuple[str, ...]]]:
    """The same lists from the status rows (every page of them), and the home page's own answer."""
    sites_held = who.sites_in(STUDY)
    sites = None if "*" in sites_held else sites_held
    with platform.engine.connect() as connection:
        home = attention(connection, who, STUDY, today)
        overdue = status.overdue_page(connection, STUDY, today.isoformat(), sites, limit=10_000)
        verify = status.work_page(connection, STUDY, status.VERIFY, sites, limit=10_000)
        incomplete = status.work_page(connection, STUDY, status.INCOMPLETE, sites, limit=10_000)
        unsigned = status.unsigned_page(connection, STUDY, sites, limit=10_000)
    lists: dict[str, list[tuple[str, ...]]] = {
        "overdue": [(r["subject_id"], r["visit"]) for r in overdue],
        "to_verify": [(r["subject_id"], r["form"], str(r["sdv_due"])) for r in verify],
        "incomplete": [(r["subject_id"], r["form"], str(r["missing"])) for r in incomplete],
        "to_sign": [(r["subject_id"],) for r in unsigned],
    }
    allowed = {
        "overdue": can(who, Action.DATA_ENTER, STUDY) or can(who, Action.SDV_PERFORM, STUDY),
        "to_verify": can(who, Action.SDV_PERFORM, STUDY),
        "incomplete": can(who, Action.DATA_ENTER, STUDY),
        "to_sign": can(who, Action.CASEBOOK_SIGN, STUDY),
    }
    for name, rows in lists.items():
        shown = getattr(home, name)
        assert shown.total == (len(rows) if allowed[name] else 0), name
        assert len(shown.rows) == min(shown.total, LIMIT)
    return {name: sorted(rows) if allowed[name] else [] for name, rows in lists.items()}


@pytest.mark.parametrize("username", sorted(PEOPLE))
@pytest.mark.parametrize("today", [date(2026, 3, 1), date(2026, 9, 1)])
def test_the_home_work_lists_are_what_folding_every_casebook_gives(study: Platform, username: str, today: date) -> None:
    who = principal(study, username)
    expected = folded_attention(study, who, today)
    assert read_attention(study, who, today) == expected
    if username == "monitor":
        assert expected["to_verify"] and (today.month == 3 or expected["overdue"])


def test_the_subject_list_shows_what_the_folded_casebooks_show(study: Platform) -> None:
    today = date(2026, 9, 1)
    with study.engine.connect() as connection:
        rules = rules_in_force(connection, STUDY)
        ids = [row["subject_id"] for row in list_subjects(connection, STUDY)]
        rows = status.visits_of(connection, STUDY, ids, scheduled_only=True)
        queries = {q["query_id"]: q for q in list_queries(connection, STUDY)}
        expected_columns = {}
        for subject in ids:
            casebook = read_casebook(connection, StreamStateCache(), STUDY, subject, study.vault)
            mine = [q for q in queries.values() if q["subject_id"] == subject]
            grid = build_grid(rules, casebook, mine, today)
            expected_columns[subject] = {
                c.visit: (c.date, c.earliest, c.summary, c.overdue, c.open_queries)
                for c in grid.columns
                if c.visit == c.visit_id
            }
    assert len(ids) == SUBJECTS
    cells = [cell for columns in expected_columns.values() for cell in columns.values()]
    assert {cell[2] for cell in cells} >= {"not_started", "complete"}
    assert any(cell[3] for cell in cells) and any(cell[4] == 2 for cell in cells)
    for subject in ids:
        opened = {q["form"]: 1 for q in queries.values() if q["subject_id"] == subject and q["status"] == "open"}
        counts = {form: sum(1 for q in queries.values() if q["subject_id"] == subject and q["status"] == "open"
                            and q["form"] == form) for form in opened}  # fmt: skip
        shown = visit_summaries(rows[subject], counts, rules, today)
        assert {v: (s.date, s.earliest, s.summary, s.overdue, s.open_queries) for v, s in shown.items()} == (
            expected_columns[subject]
        )


def signed_in(platform: Platform, username: str) -> Any:
    client = TestClient(create_app(platform), follow_redirects=False)
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
    assert answer.status_code == 303
    return client


def test_pages_answer_without_folding_a_stream_and_page_through_the_list(
    study: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor, coordinator = signed_in(study, "monitor"), signed_in(study, "coordinator")
    with study.engine.connect() as connection:
        everyone = [row["subject_id"] for row in list_subjects(connection, STUDY)]
        at_a = [row["subject_id"] for row in list_subjects(connection, STUDY, frozenset({SITE_A}))]
        to_verify = status.count_work(connection, STUDY, status.VERIFY)

    def no_fold(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a list page read an event stream")

    monkeypatch.setattr(store, "read_stream", no_fold)
    monkeypatch.setattr(paging, "PAGE_SIZE", 5)
    base = f"/studies/{STUDY}"
    pages = [monitor.get(f"{base}/subjects", params={"page": n}) for n in (1, 2, 3, 4)]
    assert all(page.status_code == 200 for page in pages)
    assert f"{len(everyone)} subjects at your sites, 5 a page" in pages[0].text
    listed = [[s for s in everyone if f'href="{base}/subjects/{s}"' in page.text] for page in pages]
    assert listed == [everyone[0:5], everyone[5:10], everyone[10:15], everyone[10:15]]
    assert "Page 3 of 3" in pages[3].text
    own = coordinator.get(f"{base}/subjects", params={"page": 1})
    assert own.status_code == 200 and [s for s in everyone if f'href="{base}/subjects/{s}"' in own.text] == at_a[:5]

    sdv = monitor.get(f"{base}/sdv")
    assert sdv.status_code == 200 and sdv.text.count(">Verify</a>") == min(5, to_verify)
    assert f"Page 1 of {-(-to_verify // 5)}" in sdv.text or to_verify <= 5
    for who in (monitor, coordinator):
        assert who.get(base).status_code == 200
