"""Files from outside: kit lists from the packaging vendor, pre-generated randomization lists from the statistician.

Both are CSV (comma, semicolon or tab, with a header row) and both are checked whole before anything is written: a
bad row is refused with the file, line, column and reason, and nothing of the file is kept. A randomization list
comes with the SHA-256 the statistician sent separately, so a file altered or truncated on the way is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Sequence

import orjson

from trialstack.clock import utc_timestamp
from trialstack.errors import InvalidInput
from trialstack.irt import commands as cmd
from trialstack.irt import events as ev
from trialstack.irt.handlers import (
    IRT,
    load_randomization,
    randomization_stream,
    register_kits,
    study_version_of,
    vault_owner,
)
from trialstack.irt.strata import all_strata
from trialstack.ledger.envelope import RecordedEvent
from trialstack.ledger.registry import encode
from trialstack.ledger.uow import UnitOfWork
from trialstack.protocol.definition import RandomizationScheme, StudyDefinition

KIT_COLUMNS = ("kit", "treatment", "lot", "expiry")
LIST_COLUMNS = ("stratum", "arm")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{name}: not UTF-8 text (byte {error.start})", field="file") from None


def _rows(data: bytes, name: str, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by lower-case column name) for each data row; the header must name `required`."""
    text = _text(data, name)
    if not text.strip():
        raise InvalidInput(f"{name}: the file is empty", field="file")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = [column.strip().lower() for column in next(reader)]
    missing = [column for column in required if column not in header]
    if missing:
        raise InvalidInput(
            f"{name} line 1: missing column {', '.join(missing)} (header: {', '.join(header)})", field="file"
        )
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        line = reader.line_num
        if len(cells) != len(header):
            raise InvalidInput(f"{name} line {line}: {len(cells)} cells, the header has {len(header)}", field="file")
        yield line, {column: cell.strip() for column, cell in zip(header, cells, strict=True)}


def parse_kit_list(data: bytes, name: str) -> tuple[cmd.KitEntry, ...]:
    """A kit list: columns kit, treatment, lot, expiry (YYYY-MM-DD); decide_register checks the values."""
    entries = tuple(
        cmd.KitEntry(row["kit"], row["treatment"], row["lot"], row["expiry"], line=line)
        for line, row in _rows(data, name, KIT_COLUMNS)
    )
    if not entries:
        raise InvalidInput(f"{name}: no kits after the header", field="file")
    return entries


def import_kit_list(
    uow: UnitOfWork, study_id: str, depot: str, data: bytes, name: str, checksum: str | None = None
) -> list[RecordedEvent]:
    actual = sha256_hex(data)
    _confirm(actual, checksum, name)
    command = cmd.RegisterKits(depot, parse_kit_list(data, name), "imported", actual)
    try:
        return register_kits(uow, study_id, command)
    except InvalidInput as error:
        raise InvalidInput(f"{name} {error.message}", field=error.field) from None


def _confirm(actual: str, expected: str | None, name: str) -> None:
    if expected is not None and expected.strip().lower() != actual:
        raise InvalidInput(
            f"{name}: the file's SHA-256 is {actual}, not the checksum given ({expected.strip()}): "
            "it is not the file that was sent, or it was altered",
            field="checksum",
        )


def parse_randomization_list(data: bytes, name: str, definition: StudyDefinition) -> dict[str, list[str]]:
    """Stratum → arms in list order: columns stratum, arm (and `position`, 1, 2, … per stratum, when present)."""
    arms = {arm.id for arm in definition.arms}
    strata = set(all_strata(definition))
    listed: dict[str, list[str]] = {}
    for line, row in _rows(data, name, LIST_COLUMNS):
        stratum, arm = row["stratum"], row["arm"]
        if stratum not in strata:
            known = ", ".join(sorted(strata))
            raise InvalidInput(f"{name} line {line}, column stratum: unknown stratum {stratum!r} (strata: {known})",
                               field="stratum")  # fmt: skip
        if arm not in arms:
            raise InvalidInput(f"{name} line {line}, column arm: {arm!r} is not an arm ({', '.join(sorted(arms))})",
                               field="arm")  # fmt: skip
        entries = listed.setdefault(stratum, [])
        position = row.get("position")
        if position is not None and position != str(len(entries) + 1):
            raise InvalidInput(
                f"{name} line {line}, column position: {position!r} in stratum {stratum}, expected {len(entries) + 1}",
                field="position",
            )
        entries.append(arm)
    if not listed:
        raise InvalidInput(f"{name}: no entries after the header", field="file")
    return listed


def import_randomization_list(
    uow: UnitOfWork, study_id: str, data: bytes, name: str, checksum: str
) -> list[RecordedEvent]:
    """Seal an imported list (extending any earlier list, stratum by stratum), recorded as the importing user's."""
    actual = sha256_hex(data)
    _confirm(actual, checksum, name)
    version = study_version_of(uow, study_id)
    randomization = version.definition.randomization
    if randomization is None or randomization.scheme is not RandomizationScheme.STRATIFIED_BLOCK:
        raise InvalidInput(f"study {study_id} does not randomize from a list (stratified_block)", field="study")
    listed = parse_randomization_list(data, name, version.definition)
    state = load_randomization(uow, study_id)
    list_id = state.next_list_id()
    document = {"list_id": list_id, "scheme": randomization.scheme.value, "seed": None, "file_checksum": actual,
                "strata": {stratum: {"arms": arms, "blocks": []} for stratum, arms in listed.items()}}  # fmt: skip
    content = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    stored = uow.vault.store_document(uow.connection, vault_owner(study_id), content, utc_timestamp(uow.clock.now()))
    event = ev.RandomizationListGenerated(
        list_id=list_id, scheme=randomization.scheme.value, source="imported",
        strata={stratum: len(arms) for stratum, arms in listed.items()}, checksum=stored, seed_commitment=None,
        study_version=version.hash, file_checksum=actual,
    )  # fmt: skip
    stream = randomization_stream(study_id)
    return uow.append(study_id, IRT, stream, [encode(event)], expected_version=state.version)
