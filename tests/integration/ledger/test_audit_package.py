"""Audit packages: exported from SQLite and PostgreSQL, verified with no database, and refused after any change
to any single byte; the site key is generated once and reused, or read from TRIALSTACK_SIGNING_KEY."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from trialstack.bootstrap import Platform
from trialstack.cli.main import app
from trialstack.errors import NotFound
from trialstack.ledger.audit_package import PackageInvalid, export_audit_package, verify_audit_package
from trialstack.ledger.audit_package.container import PackageWriter
from trialstack.ledger.audit_package.export import EVENTS
from trialstack.ledger.checkpoint import SIGNING_KEY_ENV, SiteKey, key_directory, site_key
from trialstack.ledger.database import normalize_url
from trialstack.ledger.envelope import Actor, NewEvent
from trialstack.ledger.errors import LedgerError

STUDY = "HTN-201"
runner = CliRunner()


def record(platform: Platform, count: int, study: str = STUDY) -> None:
    with platform.unit_of_work(Actor("user:cora", "study_coordinator")) as uow:
        for index in range(count):
            payload = {"item": "SYSBP", "value": str(120 + index), "note": "tension artérielle", "ключ": "значение"}
            uow.append(
                study,
                "probe",
                f"{study}/probe-{index:03d}",
                [NewEvent("ProbeRecorded", payload)],
                expected_version=0,
            )
        uow.commit()


def export(platform: Platform, out: Path, key: SiteKey, study: str = STUDY) -> Path:
    with platform.engine.connect() as connection:
        export_audit_package(
            connection, study, out, key, exported_by="os:auditor", exported_at="2026-01-05T09:00:00.000000Z"
        )
    return out


@pytest.fixture
def key() -> SiteKey:
    return SiteKey(Ed25519PrivateKey.generate())


def test_a_package_verifies_offline_and_holds_the_whole_chain(platform: Platform, key: SiteKey, tmp_path: Path) -> None:
    record(platform, 30)
    record(platform, 3, study="OTHER-1")
    package = export(platform, tmp_path / "audit.zip", key)
    platform.close()
    report = verify_audit_package(package, expected_key_id=key.key_id)
    assert (report.study_id, report.events, report.head_seq, report.key_id) == (STUDY, 30, 30, key.key_id)
    names = [info.filename for info in zipfile.ZipFile(package).infolist()]
    assert names == ["events.ndjson", "manifest.json", "checkpoint.json", "checkpoint.sig", "public_key.pem"]
    assert zipfile.ZipFile(package).testzip() is None
    lines = zipfile.ZipFile(package).read(EVENTS).splitlines()
    assert len(lines) == 30 and b'"study_id":"HTN-201"' in lines[0] and b'"id"' not in lines[0]


def test_changing_any_single_byte_makes_verification_fail(platform: Platform, key: SiteKey, tmp_path: Path) -> None:
    record(platform, 4)
    original = export(platform, tmp_path / "audit.zip", key).read_bytes()
    tampered = tmp_path / "tampered.zip"
    reasons: set[str] = set()
    for position in range(len(original)):
        for flip in (0x01, 0x80):
            data = bytearray(original)
            data[position] ^= flip
            tampered.write_bytes(data)
            with pytest.raises(PackageInvalid) as refused:
                verify_audit_package(tampered)
            reasons.add(refused.value.message.split(":")[0].split(" line ")[0])
    assert {"manifest.json", "checkpoint.json", "checkpoint.sig", "public_key.pem", "ZIP structure", EVENTS} <= reasons


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda data: data + b"\x00", "bytes after the end of the archive"),
        (lambda data: data[:-1], "not a readable ZIP archive"),
        (lambda data: b"", "not a readable ZIP archive"),
    ],
)
def test_truncated_or_extended_packages_fail(
    platform: Platform, key: SiteKey, tmp_path: Path, mutate: object, reason: str
) -> None:
    record(platform, 2)
    package = export(platform, tmp_path / "audit.zip", key)
    package.write_bytes(mutate(package.read_bytes()))  # type: ignore[operator]
    with pytest.raises(PackageInvalid, match=reason):
        verify_audit_package(package)


def test_a_package_re_signed_with_another_key_fails_against_the_pinned_key(
    platform: Platform, key: SiteKey, tmp_path: Path
) -> None:
    record(platform, 2)
    impostor = SiteKey(Ed25519PrivateKey.generate())
    package = export(platform, tmp_path / "audit.zip", impostor)
    assert verify_audit_package(package).key_id == impostor.key_id
    with pytest.raises(PackageInvalid, match=f"not by the expected key {key.key_id}"):
        verify_audit_package(package, expected_key_id=key.key_id)


def test_export_refuses_a_study_without_events_and_a_broken_chain(
    platform: Platform, key: SiteKey, tmp_path: Path
) -> None:
    with pytest.raises(NotFound):
        export(platform, tmp_path / "none.zip", key)
    record(platform, 2)
    engine = create_engine(normalize_url(platform.settings.database_url))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ledger_event (study_id, study_seq, stream_type, stream_id, stream_version, event_type,"
                " schema_version, payload, actor_id, actor_role, occurred_at, recorded_at, prev_hash, hash)"
                " VALUES ('HTN-201', 3, 'subject', 'x', 1, 'Forged', 1, '{}', 'eve', 'admin',"
                " '2026-01-05T09:00:00.000000Z', '2026-01-05T09:00:00.000000Z', :g, :h)"
            ),
            {"g": "0" * 64, "h": "a" * 64},
        )
    engine.dispose()
    with pytest.raises(LedgerError, match="broken at study_seq 3"):
        export(platform, tmp_path / "out" / "broken.zip", key)
    assert list((tmp_path / "out").iterdir()) == [], "no partial package is left behind"


def test_the_site_key_is_generated_once_beside_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    url = f"sqlite:///{tmp_path / 'site.db'}"
    first, second = site_key(url), site_key(url)
    assert first.key_id == second.key_id and first.path == tmp_path / ".trialstack" / "keys" / "site-ed25519.pem"
    assert first.path is not None and stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert key_directory("postgresql://db/x") == Path.cwd() / ".trialstack" / "keys"
    own = tmp_path / "own.pem"
    own.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    monkeypatch.setenv(SIGNING_KEY_ENV, str(own))
    assert site_key(url).path == own and site_key(url).key_id != first.key_id


def test_export_and_verify_from_the_command_line(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    record(platform, 5)
    url = platform.settings.database_url
    out = tmp_path / "HTN-201-audit.zip"
    exported = runner.invoke(app, ["export", "audit", "--study", STUDY, "--out", str(out), "--db", url])
    assert exported.exit_code == 0, exported.output
    key_id = exported.output.split("signed with key ")[1].split()[0]
    verified = runner.invoke(app, ["verify-package", str(out), "--key-id", key_id])
    assert verified.exit_code == 0 and f"ok: 5 events of {STUDY}" in verified.output, verified.output
    data = bytearray(out.read_bytes())
    data[len(data) // 3] ^= 0x01
    out.write_bytes(data)
    refused = runner.invoke(app, ["verify-package", str(out)])
    assert refused.exit_code == 1 and "INVALID" in refused.output


def rewrite(package: Path, changes: dict[str, bytes]) -> None:
    """Rebuild a well-formed package with some entries replaced, as someone editing it with a ZIP tool would."""
    with zipfile.ZipFile(package) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents.update(changes)
    with package.open("w+b") as file:
        writer = PackageWriter(file)
        stream = writer.begin_streamed(EVENTS)
        stream.write(contents[EVENTS])
        writer.end_streamed(EVENTS, stream)
        for name in ("manifest.json", "checkpoint.json", "checkpoint.sig", "public_key.pem"):
            writer.add_stored(name, contents[name])
        writer.close()


def test_consistent_edits_are_caught_by_the_chain_and_the_signature(
    platform: Platform, key: SiteKey, tmp_path: Path
) -> None:
    record(platform, 3)
    package = export(platform, tmp_path / "audit.zip", key)
    original = package.read_bytes()
    rewrite(package, {})
    assert package.read_bytes() == original, "the container is canonical: rebuilding it gives the same bytes"
    lines = zipfile.ZipFile(package).read(EVENTS).splitlines(keepends=True)
    edited = [*lines[:1], lines[1].replace(b'"value":"121"', b'"value":"112"'), *lines[2:]]
    rewrite(package, {EVENTS: b"".join(edited)})
    with pytest.raises(PackageInvalid, match=r"events.ndjson line 2 \(study_seq 2\): hash does not match"):
        verify_audit_package(package)
    package.write_bytes(original)
    manifest = zipfile.ZipFile(package).read("manifest.json").replace(b"os:auditor", b"os:someone")
    rewrite(package, {"manifest.json": manifest})
    with pytest.raises(PackageInvalid, match=r"manifest\.json was altered"):
        verify_audit_package(package)
    package.write_bytes(original)
    rewrite(package, {EVENTS: b"".join(lines[:2])})
    with pytest.raises(PackageInvalid, match="differ from the digests"):
        verify_audit_package(package)
