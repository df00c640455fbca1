"""Central-lab result files in CSV or tab-delimited text, read with a per-vendor mapping file.

Every laboratory names its columns, codes its result statuses and writes its dates its own way, so the vendor's
conventions live in a small YAML mapping rather than in code:

    delimiter: ";"                      # , ; \\t |  (default: sniffed from the header line)
    encoding: latin-1                   # default utf-8-sig (Excel's BOM is dropped)
    columns:                            # LabObservation field -> the file's column header
      patient_id: SUBJID
      test_code: LBTESTCD
      value: LBORRES
      collected_at: LBDTC               # collected_at or visit (or both)
      range_low: LBORNRLO               # range_low + range_high are written "low-high"
      range_high: LBORNRHI
    constants: {test_system: LN}        # a field the file does not carry, the same on every row
    statuses: {V: final, K: corrected}  # added to the defaults F/P/C/X and the words
    date_format: "%d.%m.%Y %H:%M"       # strftime, when the dates are not ISO 8601
    decimal_comma: true                 # 5,4 -> 5.4 in values and ranges

Files are read one row at a time (an import of a million rows keeps memory flat). A broken row is yielded as a
located `LabParseError` and reading goes on, so the caller sees every bad row and decides whether to refuse the
file; a mapping that does not fit the header is refused once, before any row.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

from trialstack.standards.lab_results import LabObservation, LabParseError, ResultStatus

REQUIRED_COLUMNS: Final = ("patient_id", "test_code", "value")
OPTIONAL_COLUMNS: Final = (
    "accession",
    "test_system",
    "test_name",
    "unit",
    "reference_range",
    "range_low",
    "range_high",
    "flags",
    "status",
    "version",
    "collected_at",
    "reported_at",
    "visit",
    "sex",
    "age_years",
    "comment",
)
MAPPABLE_COLUMNS: Final = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
# Fields a mapping may fix for the whole file instead of reading a column.
CONSTANT_FIELDS: Final = frozenset(
    {"test_system", "test_name", "unit", "reference_range", "status", "version", "visit", "sex", "comment"}
)
DELIMITERS: Final = (",", "\t", ";", "|")
MAPPING_KEYS: Final = frozenset(
    {"delimiter", "encoding", "columns", "constants", "statuses", "date_format", "decimal_comma"}
)

DEFAULT_STATUSES: Final[Mapping[str, ResultStatus]] = {
    "F": ResultStatus.FINAL,
    "P": ResultStatus.PRELIMINARY,
    "C": ResultStatus.CORRECTED,
    "X": ResultStatus.CANCELLED,
    "final": ResultStatus.FINAL,
    "preliminary": ResultStatus.PRELIMINARY,
    "corrected": ResultStatus.CORRECTED,
    "amended": ResultStatus.CORRECTED,
    "cancelled": ResultStatus.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class CsvMapping:
    """How one vendor's file maps onto LabObservation: column headers per field, constants, codes and formats.

    `columns` None is the default mapping: headers named exactly like the LabObservation fields, the optional
    ones used when the header has them.
    """

    columns: Mapping[str, str] | None = None
    constants: Mapping[str, str] = field(default_factory=dict)
    statuses: Mapping[str, ResultStatus] = field(default_factory=lambda: dict(DEFAULT_STATUSES))
    delimiter: str | None = None
    encoding: str = "utf-8-sig"
    date_format: str | None = None
    decimal_comma: bool = False
    source: str = "<default mapping>"


DEFAULT_MAPPING: Final = CsvMapping()


# ---------------------------------------------------------------------------------------------------------------
# The mapping file


def load_mapping(path: str | Path) -> CsvMapping:
    """Read a vendor mapping; any problem is a LabParseError naming the file, the line and the key."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LabParseError(name, None, f"the mapping file cannot be read: {error}") from error
    try:
        root = YAML(typ="safe", pure=True).compose(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{name} line {mark.line + 1}" if mark is not None else name
        raise LabParseError(where, None, f"malformed YAML: {error.problem or error.context}") from error
    except YAMLError as error:
        raise LabParseError(name, None, f"malformed YAML: {error}") from error
    if not isinstance(root, MappingNode):
        raise LabParseError(name, None, "a lab CSV mapping is a YAML mapping (delimiter, columns, ...)")
    return _MappingReader(name).read(root)


class _MappingReader:
    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, node: Node, key: str, reason: str) -> LabParseError:
        return LabParseError(f"{self.file} line {node.start_mark.line + 1}", key, reason)

    def pairs(self, node: Node, key: str) -> list[tuple[str, Node, ScalarNode]]:
        """The (key, key node, scalar value node) pairs of a mapping of scalars; duplicates refused."""
        if not isinstance(node, MappingNode):
            raise self.error(node, key, "must be a mapping")
        seen: set[str] = set()
        result: list[tuple[str, Node, ScalarNode]] = []
        for key_node, value_node in node.value:
            name = str(key_node.value) if isinstance(key_node, ScalarNode) else ""
            where = f"{key}.{name}" if key else name
            if not name:
                raise self.error(key_node, key or "mapping", "keys must be plain text")
            if name in seen:
                raise self.error(key_node, where, "given twice")
            seen.add(name)
            if not isinstance(value_node, ScalarNode) and key:
                raise self.error(value_node, where, "must be a single value")
            result.append((name, key_node, value_node))
        return result

    def read(self, root: MappingNode) -> CsvMapping:
        values: dict[str, Node] = {}
        for name, key_node, value_node in self.pairs(root, ""):
            if name not in MAPPING_KEYS:
                allowed = ", ".join(sorted(MAPPING_KEYS))
                raise self.error(key_node, name, f"unknown key (allowed: {allowed})")
            values[name] = value_node
        columns = self.columns(values["columns"]) if "columns" in values else None
        constants = self.constants(values["constants"], columns) if "constants" in values else {}
        statuses = dict(DEFAULT_STATUSES)
        if "statuses" in values:
            statuses.update(self.statuses(values["statuses"]))
        return CsvMapping(
            columns=columns,
            constants=constants,
            statuses=statuses,
            delimiter=self.delimiter(values["delimiter"]) if "delimiter" in values else None,
            encoding=self.encoding(values["encoding"]) if "encoding" in values else "utf-8-sig",
            date_format=self.date_format(values["date_format"]) if "date_format" in values else None,
            decimal_comma=self.boolean(values["decimal_comma"], "decimal_comma")
            if "decimal_comma" in values
            else False,
            source=self.file,
        )

    def text(self, node: Node, key: str) -> str:
        if not isinstance(node, ScalarNode) or not str(node.value).strip():
            raise self.error(node, key, "must be a non-empty text")
        return str(node.value)

    def columns(self, node: Node) -> dict[str, str]:
        columns = {}
        for name, key_node, value_node in self.pairs(node, "columns"):
            if name not in MAPPABLE_COLUMNS:
                allowed = ", ".join(sorted(MAPPABLE_COLUMNS))
                raise self.error(key_node, f"columns.{name}", f"not a lab observation field (allowed: {allowed})")
            columns[name] = self.text(value_node, f"columns.{name}")
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise self.error(node, "columns", f"must name the column of {', '.join(missing)}")
        if "collected_at" not in columns and "visit" not in columns:
            raise self.error(node, "columns", "must name the column of collected_at or of visit")
        if ("range_low" in columns) != ("range_high" in columns):
            raise self.error(node, "columns", "range_low and range_high go together")
        if "reference_range" in columns and "range_low" in columns:
            raise self.error(node, "columns", "reference_range or range_low + range_high, not both")
        return columns

    def constants(self, node: Node, columns: Mapping[str, str] | None) -> dict[str, str]:
        constants = {}
        for name, key_node, value_node in self.pairs(node, "constants"):
            if name not in CONSTANT_FIELDS:
                allowed = ", ".join(sorted(CONSTANT_FIELDS))
                raise self.error(key_node, f"constants.{name}", f"cannot be a constant (allowed: {allowed})")
            if columns is not None and name in columns:
                raise self.error(key_node, f"constants.{name}", "is also mapped to a column")
            constants[name] = self.text(value_node, f"constants.{name}")
        if "status" in constants and constants["status"] not in {status.value for status in ResultStatus}:
            raise self.error(node, "constants.status", f"must be one of {', '.join(ResultStatus)}")
        return constants

    def statuses(self, node: Node) -> dict[str, ResultStatus]:
        statuses = {}
        for code, _key_node, value_node in self.pairs(node, "statuses"):
            target = self.text(value_node, f"statuses.{code}")
            try:
                statuses[code] = ResultStatus(target)
            except ValueError:
                raise self.error(
                    value_node, f"statuses.{code}", f"{target!r} is not one of {', '.join(ResultStatus)}"
                ) from None
        return statuses

    def delimiter(self, node: Node) -> str:
        value = {"\\t": "\t", "tab": "\t"}.get(str(getattr(node, "value", "")), getattr(node, "value", None))
        if value not in DELIMITERS:
            raise self.error(node, "delimiter", "must be one of ',' ';' '\\t' '|'")
        return str(value)

    def encoding(self, node: Node) -> str:
        import codecs

        value = self.text(node, "encoding")
        try:
            codecs.lookup(value)
        except LookupError:
            raise self.error(node, "encoding", f"{value!r} is not a known text encoding") from None
        return value

    def date_format(self, node: Node) -> str:
        value = self.text(node, "date_format")
        if "%" not in value:
            raise self.error(node, "date_format", "must be a strftime pattern such as '%d.%m.%Y %H:%M'")
        return value

    def boolean(self, node: Node, key: str) -> bool:
        value = str(getattr(node, "value", "")).lower()
        if value not in {"true", "false"}:
            raise self.error(node, key, "must be true or false")
        return value == "true"


# ---------------------------------------------------------------------------------------------------------------
# Reading rows


def sniff_delimiter(header_line: str) -> str:
    """The candidate delimiter the header line holds most of (a comma when it holds none: a one-column file)."""
    counts = [(header_line.count(candidate), candidate) for candidate in DELIMITERS]
    best = max(counts, key=lambda pair: pair[0])
    return best[1] if best[0] else ","


def read_csv(
    path: str | Path, mapping: CsvMapping = DEFAULT_MAPPING, *, delimiter: str | None = None, name: str | None = None
) -> Iterator[LabObservation | LabParseError]:
    """Each data row of the file as a LabObservation, or a LabParseError located "FILE line N"; lazily.

    The header is checked against the mapping when the first item is asked for: a mapped column the header lacks
    raises one LabParseError there, before any row. `delimiter` overrides the mapping's and the sniffed one; `name`
    is how locations call the file (default: the path as given).
    """
    path = Path(path)
    name = name or str(path)
    with path.open(encoding=mapping.encoding, newline="") as stream:
        try:
            header_line = stream.readline()
        except UnicodeDecodeError as error:
            raise LabParseError(f"{name} line 1", None, f"not {mapping.encoding} text: {error}") from error
        if not header_line.strip():
            raise LabParseError(f"{name} line 1", None, "the file has no header line")
        chosen = delimiter or mapping.delimiter or sniff_delimiter(header_line)
        if chosen not in DELIMITERS:
            raise LabParseError(name, "delimiter", "must be one of ',' ';' '\\t' '|'")
        reader = csv.reader(itertools.chain((header_line,), stream), delimiter=chosen)
        header = [column.strip() for column in next(reader)]
        build = _RowBuilder(name, mapping, header).build
        try:
            for row in reader:
                if row:
                    yield build(row, reader.line_num)
        except UnicodeDecodeError as error:
            raise LabParseError(f"{name} line {reader.line_num + 1}", None, f"not {mapping.encoding} text") from error
        except csv.Error as error:
            raise LabParseError(f"{name} line {reader.line_num}", None, f"malformed CSV: {error}") from error


class _RowBuilder:
    """One row to one LabObservation, with every column index and conversion worked out once from the header.

    The per-row work is one closure over local indices (no per-row dictionary lookups or regular expressions):
    a million-row file is parsed in a few seconds. An unmapped optional field reads a blank cell appended to the
    row, so every field is read the same way.
    """

    def __init__(self, file: str, mapping: CsvMapping, header: list[str]) -> None:
        self.file = file
        self.width = len(header)
        self.mapping = mapping
        positions: dict[str, int] = {}
        for index, column in enumerate(header):
            positions.setdefault(column, index)
        if mapping.columns is None:
            columns: dict[str, str] = {
                name: name for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if name in positions
            }
            if "reference_range" in columns and "range_low" in columns:
                del columns["range_low"], columns["range_high"]
            if ("range_low" in columns) != ("range_high" in columns):
                columns.pop("range_low", None)
                columns.pop("range_high", None)
            missing = [name for name in REQUIRED_COLUMNS if name not in positions]
            if "collected_at" not in positions and "visit" not in positions:
                missing.append("collected_at (or visit)")
            if missing:
                raise LabParseError(
                    f"{file} line 1",
                    None,
                    f"the header lacks the column(s) {', '.join(missing)} of the default mapping "
                    f"(header: {', '.join(header)}); give a mapping file naming this vendor's columns",
                )
        else:
            columns = dict(mapping.columns)
            absent = [f"{name} -> {column!r}" for name, column in columns.items() if column not in positions]
            if absent:
                raise LabParseError(
                    f"{file} line 1",
                    None,
                    f"the mapping {mapping.source} names column(s) the header lacks: {', '.join(absent)} "
                    f"(header: {', '.join(header)})",
                )
        self.columns = columns
        self.index = {name: positions[column] for name, column in columns.items()}
        self.build = self._compile()

    def column(self, name: str) -> str:
        """The file's header for a field, as errors name it."""
        return self.columns.get(name, name)

    def _compile(self) -> Callable[[list[str], int], LabObservation | LabParseError]:
        file, width, mapping, index = self.file, self.width, self.mapping, self.index
        constants = mapping.constants
        blank = width  # the cell appended to every row: unmapped fields read it

        def at(name: str) -> int:
            return index.get(name, blank)

        i_patient, i_code, i_value = index["patient_id"], index["test_code"], index["value"]
        i_accession, i_system, i_name, i_unit = at("accession"), at("test_system"), at("test_name"), at("unit")
        i_flags, i_status, i_version = at("flags"), at("status"), at("version")
        i_collected, i_reported, i_visit = at("collected_at"), at("reported_at"), at("visit")
        i_sex, i_age, i_comment, i_range = at("sex"), at("age_years"), at("comment"), at("reference_range")
        i_low, i_high = at("range_low"), at("range_high")
        has_status, has_accession, split_range = "status" in index, "accession" in index, "range_low" in index
        system, name, unit = constants.get("test_system"), constants.get("test_name"), constants.get("unit")
        visit_constant, sex_constant = constants.get("visit"), constants.get("sex")
        comment_constant, range_constant = constants.get("comment"), constants.get("reference_range")
        version_constant = constants.get("version")
        status_constant = ResultStatus(constants.get("status", ResultStatus.FINAL))
        statuses = dict(mapping.statuses)
        statuses.update({code.lower(): status for code, status in mapping.statuses.items()})
        decimal_comma, date_format = mapping.decimal_comma, mapping.date_format
        fromisoformat = datetime.fromisoformat
        column = self.column

        def build(row: list[str], line: int) -> LabObservation | LabParseError:
            if len(row) != width:
                return LabParseError(f"{file} line {line}", None, f"{len(row)} fields where the header has {width}")
            row.append("")
            patient_id = row[i_patient].strip()
            test_code = row[i_code].strip()
            value = row[i_value].strip()
            try:
                if not patient_id:
                    raise _BadField(column("patient_id"), "blank: the patient id is required")
                if not test_code:
                    raise _BadField(column("test_code"), "blank: the test code is required")
                if not value:
                    raise _BadField(column("value"), "blank: the result value is required")
                if decimal_comma:
                    value = value.replace(",", ".")
                collected_at = row[i_collected].strip() or None
                if collected_at is not None:
                    if date_format is None:
                        try:
                            fromisoformat(collected_at)
                        except ValueError:
                            raise _BadField(
                                column("collected_at"), f"{collected_at!r} is not an ISO 8601 date"
                            ) from None
                    else:
                        collected_at = _formatted_date(collected_at, date_format, column("collected_at"))
                visit = row[i_visit].strip() or visit_constant
                if collected_at is None and visit is None:
                    blank_field = "collected_at" if "collected_at" in index else "visit"
                    raise _BadField(column(blank_field), "blank: a result needs its collection date or its visit")
                reported_at = row[i_reported].strip() or None
                if reported_at is not None:
                    if date_format is None:
                        try:
                            fromisoformat(reported_at)
                        except ValueError:
                            raise _BadField(column("reported_at"), f"{reported_at!r} is not an ISO 8601 date") from None
                    else:
                        reported_at = _formatted_date(reported_at, date_format, column("reported_at"))
                if has_status:
                    code = row[i_status].strip()
                    status = statuses.get(code) or statuses.get(code.lower())
                    if status is None:
                        raise _BadField(column("status"), f"{code!r} is not a known result status")
                else:
                    status = status_constant
                if split_range:
                    reference_range = _joined_range(row[i_low].strip(), row[i_high].strip(), decimal_comma)
                else:
                    reference_range = row[i_range].strip() or range_constant
                    if decimal_comma and reference_range:
                        reference_range = reference_range.replace(",", ".")
                accession = row[i_accession].strip() if has_accession else ""
                if not accession:
                    accession = _derived_accession(patient_id, collected_at or visit or "")
                age_text = row[i_age].strip()
                age_years = None
                if age_text:
                    if not age_text.isdigit():
                        raise _BadField(column("age_years"), f"{age_text!r} is not a whole number of years")
                    age_years = int(age_text)
            except _BadField as bad:
                return LabParseError(f"{file} line {line}", bad.field, bad.reason)
            return LabObservation(
                f"{file} line {line}",
                patient_id,
                accession,
                test_code,
                row[i_system].strip() or system,
                row[i_name].strip() or name,
                value,
                row[i_unit].strip() or unit,
                status,
                row[i_version].strip() or version_constant or reported_at or "1",
                collected_at,
                reported_at,
                reference_range,
                row[i_flags].strip() or None,
                visit,
                row[i_sex].strip() or sex_constant,
                age_years,
                row[i_comment].strip() or comment_constant,
            )

        return build


def _joined_range(low: str, high: str, decimal_comma: bool) -> str | None:
    """Separate low and high limit columns as one range text: "low-high", ">=low" or "<=high"."""
    if decimal_comma:
        low, high = low.replace(",", "."), high.replace(",", ".")
    if low and high:
        return f"{low}-{high}"
    if low:
        return f">={low}"
    if high:
        return f"<={high}"
    return None


class _BadField(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason


_DATE_CACHE: dict[tuple[str, str], str] = {}
_DATE_CACHE_LIMIT: Final = 100_000


def _formatted_date(text: str, date_format: str, column: str) -> str:
    """A vendor-format date as ISO text; cached, as strptime is slow and lab files repeat collection times."""
    key = (text, date_format)
    cached = _DATE_CACHE.get(key)
    if cached is not None:
        return cached
    try:
        parsed = datetime.strptime(text, date_format)
    except ValueError:
        raise _BadField(column, f"{text!r} does not match the date format {date_format!r}") from None
    has_time = any(directive in date_format for directive in ("%H", "%I", "%M", "%S", "%X", "%c", "%T"))
    iso = parsed.isoformat() if has_time else parsed.date().isoformat()
    if len(_DATE_CACHE) >= _DATE_CACHE_LIMIT:
        _DATE_CACHE.clear()
    _DATE_CACHE[key] = iso
    return iso


def _derived_accession(patient_id: str, collected: str) -> str:
    """A stable accession for files without one: one sample per patient and collection time."""
    digest = hashlib.sha256(f"{patient_id}\x1f{collected}".encode()).hexdigest()[:16]
    return f"DERIVED-{digest}"
