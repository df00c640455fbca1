"""The casebook a save leaves in the shared cache is the one a fold of the ledger gives (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.capture.conftest import COORDINATOR, STUDY, Site
from trialstack.bootstrap import Platform
from trialstack.capture import commands as cmd
from trialstack.capture import handlers
from trialstack.capture.model import Casebook
from trialstack.capture.refs import FormKey, VisitKey, subject_stream_id
from trialstack.ledger.cache import Folded, StreamStateCache

SCREENING = VisitKey("SCREENING")


def cached_casebook(platform: Platform, subject: str) -> Casebook:
    entry = platform.cache.get("subject", subject_stream_id(STUDY, subject))
    assert isinstance(entry, Folded) and isinstance(entry.state, Casebook)
    return entry.state


def folded_afresh(platform: Platform, subject: str) -> Casebook:
    with platform.engine.connect() as connection:
        return handlers.read_casebook(connection, StreamStateCache(), STUDY, subject, platform.vault)


def test_each_save_leaves_the_casebook_a_fresh_fold_gives(demo: Platform) -> None:
    """Entries, a derivation, a failing check and its query, a correction, a personal value sealed in the vault."""
    site = Site(demo, COORDINATOR)
    subject = site.screen()
    saves: list[tuple[Callable[..., handlers.Outcome], object]] = [
        (handlers.record_visit_date, cmd.RecordVisitDate(subject, SCREENING, "2026-01-05")),
        (handlers.save_form, cmd.SaveForm(subject, FormKey("IC", SCREENING), {"ICDAT": cmd.ItemInput("2026-01-05")})),
        (
            handlers.save_form,
            cmd.SaveForm(
                subject,
                FormKey("VS", SCREENING),
                {
                    name: cmd.ItemInput(value)
                    for name, value in (("SYSBP", "190"), ("WEIGHT", "80.5"), ("HEIGHT", "175"))
                },
            ),
        ),
        (handlers.save_form, cmd.SaveForm(subject, FormKey("VS", SCREENING), {"SYSBP": cmd.ItemInput("165")}, "typo")),
        (handlers.save_form, cmd.SaveForm(subject, FormKey("DM", SCREENING), {"BRTHDAT": cmd.ItemInput("1961-02-17")})),
    ]
    for handler, command in saves:
        outcome = site.outcome(handler, STUDY, command)
        assert cached_casebook(demo, subject).version == outcome.stream_version
        assert cached_casebook(demo, subject) == folded_afresh(demo, subject)
    assert cached_casebook(demo, subject).item(FormKey("DM", SCREENING), "BRTHDAT").value == "1961-02-17"
