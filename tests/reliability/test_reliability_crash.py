"""Crash trials, CI's short mode: the demo's writers killed with SIGKILL at random moments, on SQLite and
PostgreSQL; after each restart every acknowledged command is in the ledger, none is half-written, the chains
verify and a rebuild reproduces the read models. `trialstack reliability crash --trials 100` is the long mode.

Beside it: the checker itself reports a lost, a half-written and an unexplained command (so a clean run means
something)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.conftest import REPO_ROOT
from trialstack.bootstrap import bootstrap
from trialstack.ledger import store
from trialstack.ledger.envelope import RecordedEvent
from trialstack.reliability.crash import TrialResult, check_trial, prepare, run_crash_trials, run_trial
from trialstack.reliability.journal import Journal, read_journal
from trialstack.reliability.keys import vault_key_for
from trialstack.settings import Settings

DEMO = REPO_ROOT / "studies" / "demo" / "study.yaml"


def test_killed_writers_lose_and_tear_nothing(database_url: str, tmp_path: Path) -> None:
    report = run_crash_trials(database_url, DEMO, tmp_path, trials=3, seed=3, max_delay=1.5)
    assert report.ok, report.summary()
    assert len(report.trials) == 3
    assert report.commands_checked > 0 and report.total("acknowledged") > 0, report.summary()
    assert report.total("events") > report.commands_checked, report.summary()
    last = report.trials[-1]
    assert last.checksum and last.verified_events > report.total("events"), report.summary()
    for trial in report.trials:
        journal = read_journal(tmp_path / f"trial-{trial.number:04d}.jsonl")
        assert journal.ready and len(journal.intents) == trial.intents


def _events(database_url: str) -> list[RecordedEvent]:
    platform = bootstrap(Settings.from_env(database_url))
    try:
        with platform.engine.connect() as connection:
            return [event for page in store.iter_all(connection) for event in page]
    finally:
        platform.close()


def test_the_checker_reports_lost_half_written_and_unexplained_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    prepare(url, DEMO)
    published = _events(url)
    assert published, "publishing the study wrote its event"
    first = published[0]
    key = [first.study_id, first.study_seq, first.hash]

    def check(lines: list[dict[str, object]]) -> TrialResult:
        path = tmp_path / f"journal-{random.randrange(10**9)}.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        result = TrialResult(1, 0.0)
        check_trial(url, path, 0, result)
        return result

    cid = str(first.correlation_id)
    whole = check([{"ready": 1}, {"intent": cid, "events": [key]}, {"ack": cid}])
    assert whole.problems == [] and whole.acknowledged == 1
    extra = [first.study_id, first.study_seq + 1, "0" * 64]
    half = check([{"intent": cid, "events": [key, extra]}, {"ack": cid}])
    assert any("half-written" in problem for problem in half.problems), half.problems
    lost = check([{"intent": cid, "events": [key]}, {"intent": "gone", "events": [extra]}, {"ack": "gone"}])
    assert any("gone" in problem and "lost" in problem for problem in lost.problems), lost.problems
    unexplained = check([{"ready": 1}])
    assert any("no intent names" in problem for problem in unexplained.problems), unexplained.problems
    in_flight = check([{"intent": cid, "events": [key]}, {"intent": "never-committed", "events": [extra]}])
    assert in_flight.problems == [] and (in_flight.committed_unacknowledged, in_flight.not_committed) == (1, 1)


def test_a_torn_last_journal_line_is_ignored_and_a_torn_middle_line_is_not(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.ready()
    journal.write({"intent": "a", "events": []})
    journal.close()
    with path.open("ab") as raw:
        raw.write(b'{"ack": "a')
    contents = read_journal(path)
    assert contents.torn_tail and contents.problems == [] and not contents.intents["a"].acknowledged
    path.write_bytes(b'{"ready": 1}\n{"intent": "a", "ev\n{"ack": "a"}\n')
    assert len(read_journal(path).problems) == 2  # the torn intent, and an acknowledgement without one


def test_a_writer_that_dies_by_itself_is_a_failed_trial(tmp_path: Path) -> None:
    """A trial whose writer exits before the kill (here: a study that is not loaded) is reported, not passed."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    prepare(url, DEMO)
    with vault_key_for(url, tmp_path):
        result = run_trial(url, "NO-SUCH-STUDY", 1, tmp_path, random.Random(1), max_delay=60.0, subjects=1, seed=1)
    assert result.problems and "NO-SUCH-STUDY" in result.problems[0], result.problems
