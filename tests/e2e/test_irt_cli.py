"""`trialstack irt`: a supply manager signs in to register kit lists and randomization lists; a bad file is refused
whole in one line naming the file, line and column (exit 2, nothing written); an imported list is the one the
randomizations follow; the stock check and the status say nothing of treatments."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO_ROOT
from tests.enrolling import enrolled_subject
from trialstack.bootstrap import Platform
from trialstack.cli.main import app
from trialstack.identity import commands as identity_cmd
from trialstack.identity import handlers as identity
from trialstack.identity.policy import Role
from trialstack.irt import commands as irt_cmd
from trialstack.irt import handlers as irt
from trialstack.irt.readmodel import kits
from trialstack.ledger import store
from trialstack.ledger.envelope import Actor
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.handlers import publish_study_version
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file

runner = CliRunner()
STUDY = "HTN-201"
PASSWORD = "Correct-Horse-9-battery"
COORDINATOR = Actor("user:cora", "study_coordinator")
TREATMENTS = ("ZEL", "PBO")

KITS = """\
kit,treatment,lot,expiry
1001,ZEL,LOT-A01,2027-06-30
1002,PBO,LOT-A01,2027-06-30
1003,PBO,LOT-B02,2027-09-30
1004,ZEL,LOT-B02,2027-09-30
1005,ZEL,LOT-B02,2027-09-30
1006,PBO,LOT-B02,2027-09-30
"""
DUPLICATE = """\
kit,treatment,lot,expiry
2001,ZEL,LOT-C03,2027-06-30
2002,PBO,LOT-C03,2027-06-30
2001,PBO,LOT-C03,2027-06-30
"""
LIST = """\
stratum,arm,position
0101/LT160,PBO,1
0101/LT160,ZEL,2
0101/LT160,ZEL,3
0101/LT160,PBO,4
"""


@pytest.fixture
def study(platform: Platform) -> Platform:
    """The demo study published; sam is a supply manager (an unblinded pharmacist at every site), phil a pharmacist
    at site 0101 only, cora a coordinator."""
    definition = load_study_file(REPO_ROOT / "studies" / "demo" / "study.yaml")
    with platform.unit_of_work(Actor("user:builder", "study_builder")) as uow:
        publish_study_version(uow, PublishStudyVersion(study_version(definition), "yaml", "study.yaml"))
        uow.commit()
    with platform.unit_of_work(Actor("user:admin", "admin")) as uow:
        identity.register_user(uow, identity_cmd.RegisterUser("sam", "Sam Supply", PASSWORD))
        every_site = frozenset({"0101", "0102"})
        identity.grant_role(uow, identity_cmd.GrantRole("sam", STUDY, Role.UNBLINDED_PHARMACIST, every_site))
        identity.register_user(uow, identity_cmd.RegisterUser("phil", "Phil Pharmacist", PASSWORD))
        identity.grant_role(uow, identity_cmd.GrantRole("phil", STUDY, Role.UNBLINDED_PHARMACIST, frozenset({"0101"})))
        identity.register_user(uow, identity_cmd.RegisterUser("cora", "Cora Coordinator", PASSWORD))
        identity.grant_role(uow, identity_cmd.GrantRole("cora", STUDY, Role.STUDY_COORDINATOR, frozenset({"0101"})))
        uow.commit()
    return platform


def _irt(database_url: str, *args: str, user: str | None = "sam", password: str = PASSWORD) -> tuple[int, str]:
    signed = ["--as", user, "--password-stdin"] if user is not None else []
    result = runner.invoke(app, ["irt", *args, "--study", STUDY, *signed, "--db", database_url], input=password + "\n")
    return result.exit_code, result.output


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _kit_numbers(platform: Platform) -> list[str]:
    with platform.engine.connect() as connection:
        return [str(k["kit"]) for k in kits(connection, STUDY, unblinded=False)]


def _event_types(platform: Platform) -> list[str]:
    with platform.engine.connect() as connection:
        return [e.event_type for e in store.iter_study(connection, STUDY)]


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith("Password")]
    assert len(lines) == 1, output
    return lines[0]


def test_kit_lists_are_imported_whole_or_not_at_all(study: Platform, database_url: str, tmp_path: Path) -> None:
    good = _file(tmp_path, "kits.csv", KITS)
    digest = hashlib.sha256(good.read_bytes()).hexdigest()

    wrong = _irt(database_url, "kits", "import", str(good), "--depot", "DEPOT_US", "--checksum", "0" * 64)
    assert wrong[0] == 2 and f"the file's SHA-256 is {digest}, not the checksum given" in _one_error_line(wrong[1])
    blinded = _irt(database_url, "kits", "import", str(good), "--depot", "DEPOT_US", user="cora")
    assert blinded[0] == 2 and "cora may not supply.manage at every site of study HTN-201" in blinded[1]
    one_site = _irt(database_url, "kits", "import", str(good), "--depot", "DEPOT_US", user="phil")
    assert one_site[0] == 2 and "(not at site 0102)" in one_site[1]
    bad_password = _irt(database_url, "kits", "import", str(good), "--depot", "DEPOT_US", password="guess")
    assert bad_password[0] == 2 and "invalid username, password" in bad_password[1]
    unknown_depot = _irt(database_url, "kits", "import", str(good), "--depot", "DEPOT_EU")
    assert unknown_depot[0] == 2 and "unknown depot 'DEPOT_EU'" in unknown_depot[1]
    missing = _irt(database_url, "kits", "import", str(tmp_path / "nowhere.csv"), "--depot", "DEPOT_US")
    assert missing[0] == 2 and _one_error_line(missing[1]).endswith(
        "nowhere.csv: cannot be read (No such file or directory)"
    )
    assert _kit_numbers(study) == [] and "KitsRegistered" not in _event_types(study)

    code, output = _irt(database_url, "kits", "import", str(good), "--depot", "DEPOT_US", "--checksum", digest)
    assert code == 0, output
    assert "registered 6 kits at depot DEPOT_US" in output and f"SHA-256 {digest}" in output
    assert "lot LOT-A01: 2 kits" in output and "lot LOT-B02: 4 kits" in output
    assert not any(treatment in output for treatment in TREATMENTS)
    assert _kit_numbers(study) == ["1001", "1002", "1003", "1004", "1005", "1006"]

    duplicate = _file(tmp_path, "dup.csv", DUPLICATE)
    code, output = _irt(database_url, "kits", "import", str(duplicate), "--depot", "DEPOT_US")
    assert code == 2
    assert _one_error_line(output) == (
        f"error: {duplicate} line 4: kit number 2001 is a duplicate of line 2 (column kit)"
    )
    again = _irt(database_url, "kits", "import", str(good), "--depot", "DEPOT_US")
    assert again[0] == 2 and f"{good} line 2: kit number 1001 is already registered" in _one_error_line(again[1])
    no_expiry = _file(tmp_path, "short.csv", "kit,treatment,lot\n3001,ZEL,LOT-D04\n")
    code, output = _irt(database_url, "kits", "import", str(no_expiry), "--depot", "DEPOT_US")
    assert code == 2 and f"{no_expiry} line 1: missing column expiry" in _one_error_line(output)
    bad_date = _file(tmp_path, "date.csv", "kit,treatment,lot,expiry\n3001,ZEL,LOT-D04,2027-02-30\n")
    code, output = _irt(database_url, "kits", "import", str(bad_date), "--depot", "DEPOT_US")
    assert code == 2 and f"{bad_date} line 2: expiry '2027-02-30' of kit 3001 is not a date" in output
    assert "(column expiry)" in output
    assert _kit_numbers(study) == ["1001", "1002", "1003", "1004", "1005", "1006"]
    assert _event_types(study).count("KitsRegistered") == 1


def test_generated_kits_then_the_stock_check_and_a_blinded_status(
    study: Platform, database_url: str, tmp_path: Path
) -> None:
    generate = ("kits", "generate", "--depot", "DEPOT_US", "--per-arm", "12", "--lot", "LOT-G01")
    bad = _irt(database_url, *generate, "--expiry", "2027-13-01", "--first-number", "5001")
    assert bad[0] == 2 and "--expiry '2027-13-01' is not a date (YYYY-MM-DD)" in bad[1]
    code, output = _irt(database_url, *generate, "--expiry", "2027-12-31", "--first-number", "5001")
    assert code == 0, output
    assert "registered 24 kits at depot DEPOT_US, numbered 5001 to 5024" in output and "lot LOT-G01: 24 kits" in output
    assert not any(treatment in output for treatment in TREATMENTS)
    assert _kit_numbers(study) == [str(n) for n in range(5001, 5025)]

    code, output = _irt(database_url, "resupply", user=None)
    assert code == 0, output
    assert "site 0101: resupply (minimum), shipment SH-0001 of 16 kits from DEPOT_US" in output
    assert "the depot is short of" in output and "resupplies triggered" in output
    assert not any(treatment in output for treatment in TREATMENTS)

    code, output = _irt(database_url, "status", user=None)
    assert code == 0, output
    assert "HTN-201: IRT status (blinded)" in output and "Randomized: 0 subjects" in output
    assert "Kits: 24" in output and "Open shipments: 2" in output and "Emergency unblindings: 0" in output
    assert "SH-0001" in output and "SH-0002" in output and "requested" in output
    assert not any(treatment in output for treatment in TREATMENTS)


def _randomize(platform: Platform, subject: str) -> irt.Randomized:
    with platform.unit_of_work(COORDINATOR) as uow:
        randomized = irt.randomize(uow, STUDY, irt_cmd.RandomizeSubject(subject), lambda: secrets.token_bytes(32))
        uow.commit()
    return randomized


def test_an_imported_randomization_list_is_followed_in_its_order(
    study: Platform, database_url: str, tmp_path: Path
) -> None:
    listed = _file(tmp_path, "HTN-201-list.csv", LIST)
    digest = hashlib.sha256(listed.read_bytes()).hexdigest()
    altered = _file(tmp_path, "altered.csv", LIST.replace("PBO,4", "ZEL,4"))
    code, output = _irt(database_url, "list", "import", str(altered), "--checksum", digest)
    assert code == 2 and "not the checksum given" in _one_error_line(output)
    bad_arm = _file(tmp_path, "bad.csv", LIST.replace("ZEL,3", "ZELVO,3"))
    bad_digest = hashlib.sha256(bad_arm.read_bytes()).hexdigest()
    code, output = _irt(database_url, "list", "import", str(bad_arm), "--checksum", bad_digest)
    assert code == 2
    assert _one_error_line(output).startswith(f"error: {bad_arm} line 4, column arm: 'ZELVO' is not an arm")
    assert "RandomizationListGenerated" not in _event_types(study)

    code, output = _irt(database_url, "list", "import", str(listed), "--checksum", digest)
    assert code == 0, output
    assert "sealed randomization list L1 (imported, stratified_block): 4 entries in 1 strata" in output
    assert f"file SHA-256 {digest}" in output and "0101/LT160: 4 entries" in output
    assert not any(treatment in output for treatment in TREATMENTS)

    subjects = [enrolled_subject(study, sbp="150") for _ in range(3)]
    allocated = [_randomize(study, subject) for subject in subjects]
    assert [a.arm for a in allocated] == ["PBO", "ZEL", "ZEL"]
    assert [a.number for a in allocated] == ["1001", "1002", "1003"]
    assert {a.stratum.code for a in allocated} == {"0101/LT160"}
    with study.engine.connect() as connection:
        positions = [
            (e.payload["list_id"], e.payload["position"])
            for e in store.iter_study(connection, STUDY)
            if e.event_type == "TreatmentAllocated"
        ]
    assert positions == [("L1", 1), ("L1", 2), ("L1", 3)]
    # a stratum the imported list does not cover gets a generated list of its own
    other = _randomize(study, enrolled_subject(study, sbp="172"))
    assert other.stratum.code == "0101/GE160" and other.events[0].payload["list_id"] == "L2"
    assert other.events[0].payload["source"] == "generated" and list(other.events[0].payload["strata"]) == [
        "0101/GE160"
    ]

    with study.unit_of_work(Actor("user:ivan", "investigator")) as uow:
        reason = "anaphylaxis, the emergency physician must know"
        irt.unblind(uow, STUDY, irt_cmd.UnblindSubject(subjects[0], reason), "ivan", "investigator")
        uow.commit()
    code, output = _irt(database_url, "status", user=None)
    assert code == 0, output
    assert "Randomized: 4 subjects" in output and "0101/LT160" in output and "0101/GE160" in output
    assert "Emergency unblindings: 1" in output and "ivan" in output and subjects[0] in output
    assert not any(treatment in output for treatment in TREATMENTS)
