"""`trialstack demo` finishes at any size and seed (and on a study imported from USDM), its ledger verifies, and the
only commands the platform refuses are the ones a real site would have had refused too (enrolling a subject who is
not eligible). On SQLite, at small sizes."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from argon2 import PasswordHasher
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import shared_data
from trialstack.cli.main import app
from trialstack.identity.crypto import Passwords, use_passwords

runner = CliRunner()
LEGITIMATE_REFUSALS = re.compile(
    r"^(enrol_subject: not eligible: |enrol_subject: eligibility cannot be decided: "
    r"|sign_consent: the answer to \w+ is not right: read section \d+ again$"
    r"|\w+: .* is refused: re-consent to \w+ version [^ ]+ is required )"
)
"""An investigator tries to enrol at Day 1 and the platform names the criteria that fail: the subject then fails
screening. A participant answers a comprehension question wrongly and is sent back to its section. A subject who
had not yet signed the amended consent comes to a visit: the save is refused, the site obtains re-consent there.
Anything else refused means the simulation asked for something no site would (a bug to fix there)."""


@contextmanager
def fast_passwords() -> Iterator[None]:
    """The demo's users hashed with a cheap Argon2 profile: the same code path, not what this test is about."""
    previous = use_passwords(Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)))
    try:
        yield
    finally:
        use_passwords(previous)


def refusals(output: str) -> dict[str, int]:
    block = re.search(r"refused commands: (\d+)\n(.*?)projections checksum", output, re.DOTALL)
    assert block is not None, output
    found = {reason: int(count) for count, reason in re.findall(r"^\s+(\d+)  (.+)$", block.group(2), re.MULTILINE)}
    assert sum(found.values()) == int(block.group(1)), output
    return found


def run_demo(database: str, *arguments: str) -> str:
    with fast_passwords():
        demo = runner.invoke(app, ["demo", "--db", database, *arguments])
    assert demo.exit_code == 0, demo.output
    unexpected = {r: n for r, n in refusals(demo.output).items() if not LEGITIMATE_REFUSALS.match(r)}
    assert unexpected == {}, demo.output
    verified = runner.invoke(app, ["verify", "--db", database])
    assert verified.exit_code == 0 and "2 studies verified" in verified.output, verified.output
    return str(demo.output)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subjects=st.integers(min_value=1, max_value=14), seed=st.integers(min_value=0, max_value=2**32))
@example(subjects=25, seed=3)  # stopped at a correction of a screen failure's screening data before it was allowed
def test_the_demo_finishes_at_any_size_and_its_ledger_verifies(subjects: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        database = f"sqlite:///{Path(directory) / 'demo.db'}"
        output = run_demo(database, "--subjects", str(subjects), "--seed", str(seed))
        assert f"{subjects} subjects simulated from seed {seed}" in output


def test_the_demo_simulates_a_study_imported_from_usdm(tmp_path: Path) -> None:
    """The CDISC pilot (LZZT): its coded answers (sex as C16576) and one eligibility question per criterion."""
    pilot = shared_data("cdisc-usdm-examples", "CDISC_Pilot_Study.json")
    output = run_demo(f"sqlite:///{tmp_path / 'lzzt.db'}", "--study", str(pilot), "--subjects", "6", "--seed", "7")
    enrolled = re.search(r"SubjectEnrolled: (\d+)", output)
    assert enrolled is not None and int(enrolled.group(1)) > 0, output
