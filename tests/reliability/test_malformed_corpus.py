"""The malformed input corpus (generated here, never committed): every study file format truncated, UTF-16,
Latin-1, 50 MB, 100 000 levels deep or hostile (billion laughs, external entities, DTD fetching, alias bombs)
through `trialstack study validate` and `study load`, and broken JSON bodies through the API. Each is refused
with a message naming the file, line and column (or the body), the ledger is unchanged and no DTD is fetched;
the whole corpus runs in a process limited to 2 GiB of address space. tests/data/bad holds the small hostile
files checked to the exact position (tests/standards/test_bad_files.py)."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, create_postgres_database, drop_postgres_database, postgres_url_for
from trialstack.reliability.corpus import CaseResult, run_corpus

DEMO = REPO_ROOT / "studies" / "demo" / "study.yaml"
ADDRESS_SPACE = 2 * 1024**3
KINDS = ("truncated", "utf16", "utf16-no-bom", "latin1", "huge", "nested")


@pytest.fixture
def postgres_url(postgres_available: bool) -> Iterator[str]:
    if not postgres_available:
        pytest.fail("PostgreSQL does not answer at 127.0.0.1:5432")
    name = create_postgres_database()
    try:
        yield postgres_url_for(name)
    finally:
        drop_postgres_database(name)


def _by_name(results: list[CaseResult]) -> dict[str, CaseResult]:
    return {result.name: result for result in results}


def test_every_broken_input_is_refused_where_it_breaks_and_writes_nothing(postgres_url: str, tmp_path: Path) -> None:
    report = run_corpus(tmp_path / "corpus", DEMO, postgres_url)
    files, bodies = _by_name(report.files), _by_name(report.bodies)
    for kind in KINDS:
        for fmt, extension in (("yaml", "yaml"), ("odm", "xml"), ("usdm", "json")):
            assert f"{kind}.{fmt}.{extension}" in files, f"the corpus lacks {kind} {fmt}"
    for hostile in ("billion-laughs", "external-entity", "dtd-fetch", "parameter-entity"):
        assert f"{hostile}.odm.xml" in files
    assert "alias-bomb.yaml.yaml" in files
    assert set(bodies) >= {"truncated", "latin1", "utf16", "huge", "nested"}
    failed = [f"{r.name}: {r.problems}" for r in report.files + report.bodies if not r.ok]
    assert failed == [], "\n".join(failed)
    assert all(r.refused and r.located and r.ledger_unchanged for r in report.files + report.bodies)
    assert report.dtd_requests == []
    assert str(tmp_path / "corpus" / "huge.yaml.yaml") + ":1:1: /: the file is" in files["huge.yaml.yaml"].message
    assert "DOCTYPE" in files["dtd-fetch.odm.xml"].message
    assert "nested more than" in files["nested.usdm.json"].message
    assert '"field":"body"' in bodies["latin1"].message and "0xE9" in bodies["latin1"].message


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_the_corpus_command_runs_in_bounded_memory_on_sqlite(tmp_path: Path) -> None:
    """`trialstack reliability corpus`, as CI's long mode would run it, in a child limited to 2 GiB: an
    expanded billion laughs, a parsed 50 MB YAML file or a 50 MB body held in memory would not fit."""
    command = [sys.executable, "-c", "from trialstack.cli.main import main; main()", "reliability", "corpus"]
    completed = subprocess.run(
        [*command, "--keep", str(tmp_path / "corpus"), "--db", f"sqlite:///{tmp_path / 'corpus.db'}"],
        capture_output=True,
        text=True,
        preexec_fn=_limit_address_space,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-8000:]
    assert "study files: 24/24 refused with a located message, nothing written" in output
    assert "API bodies: 7/7 refused with a located message, nothing written" in output
    assert "DTD fetches seen by the trap on 127.0.0.1: 0" in output
