"""`trialstack bench pages` at toy sizes: replicated subjects are faithful copies with a valid hash chain, and the
whole run (serve, sign in per role, measure) prints one line per page."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from trialstack.bootstrap import bootstrap
from trialstack.capture import status_readmodel as status
from trialstack.cli.main import app, load_benchmark
from trialstack.ledger import store
from trialstack.ledger.verify import verify

bench = load_benchmark("pages_bench")


def test_replicas_copy_the_templates_and_the_chain_verifies(tmp_path: Path) -> None:
    lines: list[str] = []
    templates = bench.build_templates(f"sqlite:///{tmp_path / 't.db'}", 3, 7, 7, 7 * 160, lines.append)
    url = f"sqlite:///{tmp_path / 's.db'}"
    events = bench.build_study(templates, url, 7, lines.append)
    assert any(line.strip().startswith("verify: ok") for line in lines)
    platform = bootstrap(bench._settings(url, templates.key))
    try:
        with platform.engine.connect() as connection:
            assert store.count_events(connection) == events and verify(connection).ok
            rows = [dict(r._mapping) for r in connection.execute(select(status.status_subject_table))]
            by_id = {row["subject_id"]: row for row in rows}
            forms: dict[str, dict[str, tuple[str, int, str | None]]] = {}
            for row in connection.execute(select(status.status_form_table)):
                forms.setdefault(row.subject_id, {})[row.form] = (row.status, row.sdv_due, row.work)
            streams = {}
            for subject in by_id:
                stream = store.read_stream(connection, "subject", f"{bench.STUDY}/{subject}")
                streams[subject] = [(e.stream_version, e.event_type, e.actor_id) for e in stream]
    finally:
        platform.close()
    names = [subject for subject, _site in templates.subjects]
    assert len(by_id) == 7 and set(names) < set(by_id)
    copied_from: dict[str, int] = dict.fromkeys(names, 0)
    for copy in sorted(set(by_id) - set(names)):
        (original,) = [name for name in names if streams[name] == streams[copy]]
        copied_from[original] += 1
        assert by_id[copy]["site_id"] == by_id[original]["site_id"] and forms[copy] == forms[original]
        assert (by_id[copy]["status"], by_id[copy]["version"]) == (
            by_id[original]["status"],
            by_id[original]["version"],
        )
    assert [copied_from[name] + 1 for name in names] == [bench._instances(i, 3, 7) for i in range(3)]
    assert min(len(stream) for stream in streams.values()) >= 100


def test_the_pages_bench_measures_every_page_over_http() -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "pages", "--subjects", "6", "--events", "900", "--baseline", "4", "--templates", "3",
         "--samples", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    output = result.output
    for page in ("subject list, first page:", "SDV list, first page:", "casebook ", "home as monitor:",
                 "home as study_coordinator:", "home as investigator:"):  # fmt: skip
        assert page in output
    assert "6 subjects p50" in output and "4 subjects p50" in output and "× baseline" in output
    assert output.count("verify: ok") == 2
