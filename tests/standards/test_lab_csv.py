"""Central-lab CSV files: default and vendor mappings, located errors, and reading a large file as a stream."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from trialstack.standards.lab_csv import CsvMapping, load_mapping, read_csv, sniff_delimiter
from trialstack.standards.lab_results import LabObservation, LabParseError, ResultStatus

DEFAULT_HEADER = "patient_id,accession,test_code,test_system,test_name,value,unit,reference_range,status,collected_at"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def observations(items: list[LabObservation | LabParseError]) -> list[LabObservation]:
    return [item for item in items if isinstance(item, LabObservation)]


def errors(items: list[LabObservation | LabParseError]) -> list[LabParseError]:
    return [item for item in items if isinstance(item, LabParseError)]


def test_the_default_mapping_reads_columns_named_like_the_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "labs.csv",
        f"{DEFAULT_HEADER}\n"
        "0101-001,A1,2345-7,LN,Glucose,5.4,mmol/L,3.9-5.5,F,2024-03-01T08:30:00+01:00\n"
        "0101-001,A1,2160-0,LN,Creatinine, 88 ,umol/L,,corrected,2024-03-01T08:30:00+01:00\n",
    )

    items = list(read_csv(path))

    assert errors(items) == []
    glucose, creatinine = observations(items)
    assert glucose == LabObservation(
        location=f"{path} line 2",
        patient_id="0101-001",
        accession="A1",
        test_code="2345-7",
        test_system="LN",
        test_name="Glucose",
        value="5.4",
        unit="mmol/L",
        status=ResultStatus.FINAL,
        version="1",
        collected_at="2024-03-01T08:30:00+01:00",
        reference_range="3.9-5.5",
    )
    assert creatinine.value == "88"  # cells are trimmed
    assert creatinine.status is ResultStatus.CORRECTED
    assert creatinine.reference_range is None
    assert creatinine.location == f"{path} line 3"


def test_without_an_accession_column_the_accession_is_derived_from_patient_and_collection(tmp_path: Path) -> None:
    path = write(
        tmp_path / "labs.csv",
        "patient_id,test_code,value,collected_at\n"
        "0101-001,2345-7,5.4,2024-03-01T08:30\n"
        "0101-001,2160-0,88,2024-03-01T08:30\n"
        "0101-002,2345-7,5.1,2024-03-01T08:30\n",
    )

    first, second, other = observations(list(read_csv(path)))

    assert first.accession == second.accession  # one sample, two tests
    assert first.accession != other.accession
    assert observations(list(read_csv(path)))[0].accession == first.accession  # stable across reads


def test_tab_delimited_files_are_sniffed(tmp_path: Path) -> None:
    path = write(tmp_path / "labs.tsv", "patient_id\ttest_code\tvalue\tvisit\n0101-001\t2345-7\t5,4\tV2\n")

    (item,) = list(read_csv(path))

    assert isinstance(item, LabObservation)
    assert (item.value, item.visit, item.collected_at) == ("5,4", "V2", None)  # no decimal comma unless mapped
    assert sniff_delimiter("a|b|c") == "|"
    assert sniff_delimiter("a;b,c;d") == ";"


def test_a_delimiter_override_wins_over_sniffing(tmp_path: Path) -> None:
    path = write(tmp_path / "labs.txt", "patient_id|test_code|value|visit\n0101-001|2345-7|1,5;2|V2\n")

    (item,) = list(read_csv(path, delimiter="|"))

    assert isinstance(item, LabObservation)
    assert item.value == "1,5;2"


VENDOR_MAPPING = """\
delimiter: ";"
encoding: latin-1
columns:
  patient_id: SUBJID
  accession: PROBE
  test_code: LBTESTCD
  test_name: LBTEST
  value: LBORRES
  unit: LBORRESU
  range_low: LBORNRLO
  range_high: LBORNRHI
  flags: LBNRIND
  status: LBSTAT
  collected_at: LBDTC
  reported_at: BERICHT
  visit: VISITE
  sex: GESCHL
  age_years: ALTER
  comment: KOMMENTAR
constants:
  test_system: LN
statuses:
  V: final
  K: corrected
date_format: "%d.%m.%Y %H:%M"
decimal_comma: true
"""

VENDOR_FILE = (
    "SUBJID;PROBE;LBTESTCD;LBTEST;LBORRES;LBORRESU;LBORNRLO;LBORNRHI;LBNRIND;LBSTAT;LBDTC;BERICHT;VISITE;GESCHL;"
    "ALTER;KOMMENTAR\n"
    "0101-001;P77;2345-7;Glucose;5,4;mmol/l;3,9;5,5;N;V;01.03.2024 08:30;01.03.2024 14:00;V2;F;54;hämolytisch\n"
    "0101-001;P77;2160-0;Kreatinin;91;µmol/l;;106;H;K;01.03.2024 08:30;02.03.2024 09:15;V2;F;54;\n"
)


def test_a_vendor_mapping_renames_columns_and_reads_its_formats(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path / "vendor.yaml", VENDOR_MAPPING))
    path = write(tmp_path / "export.csv", VENDOR_FILE, encoding="latin-1")

    items = list(read_csv(path, mapping))

    assert errors(items) == []
    glucose, creatinine = observations(items)
    assert glucose == LabObservation(
        location=f"{path} line 2",
        patient_id="0101-001",
        accession="P77",
        test_code="2345-7",
        test_system="LN",
        test_name="Glucose",
        value="5.4",
        unit="mmol/l",
        status=ResultStatus.FINAL,
        version="2024-03-01T14:00:00",  # no version column: the report time tells reports apart
        collected_at="2024-03-01T08:30:00",
        reported_at="2024-03-01T14:00:00",
        reference_range="3.9-5.5",
        flags="N",
        visit="V2",
        sex="F",
        age_years=54,
        comment="hämolytisch",
    )
    assert creatinine.status is ResultStatus.CORRECTED
    assert creatinine.reference_range == "<=106"
    assert creatinine.unit == "µmol/l"
    assert creatinine.comment is None


def test_a_mapped_column_missing_from_the_header_is_one_error_before_any_row(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path / "vendor.yaml", VENDOR_MAPPING))
    path = write(tmp_path / "export.csv", VENDOR_FILE.replace("LBORRESU", "UNIT"), encoding="latin-1")

    rows = read_csv(path, mapping)
    with pytest.raises(LabParseError) as raised:
        next(rows)

    message = raised.value.message
    assert "unit -> 'LBORRESU'" in message
    assert "header: SUBJID, PROBE" in message and "UNIT" in message
    assert raised.value.location == f"{path} line 1"


def test_the_default_mapping_names_the_required_columns_it_misses(tmp_path: Path) -> None:
    path = write(tmp_path / "labs.csv", "subject,test_code,result\n1,2,3\n")

    with pytest.raises(LabParseError, match=r"patient_id, value, collected_at \(or visit\)"):
        list(read_csv(path))


def test_bad_rows_are_located_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(
        tmp_path / "labs.csv",
        f"{DEFAULT_HEADER}\n"
        "0101-001,A1,2345-7,LN,Glucose,5.4,mmol/L,,F,2024-03-01\n"  # 2: good
        "0101-001,A1,2345-7,LN,Glucose,5.4,mmol/L,,F\n"  # 3: a field short
        "0101-001,A1,2345-7,LN,Glucose,,mmol/L,,F,2024-03-01\n"  # 4: blank value
        "0101-001,A1,2345-7,LN,Glucose,5.4,mmol/L,,F,01/03/2024\n"  # 5: not ISO
        "0101-001,A1,2345-7,LN,Glucose,5.4,mmol/L,,Z,2024-03-01\n"  # 6: unknown status
        "\n"
        ',A1,2345-7,LN,"Glucose,\nfasting",5.4,mmol/L,,F,2024-03-01\n'  # 8-9: blank patient (quoted newline)
        "0101-002,A2,2345-7,LN,Glucose,6.1,mmol/L,,F,2024-03-02\n",  # 10: good
    )

    items = list(read_csv(path))

    assert [item.location for item in observations(items)] == [f"{path} line 2", f"{path} line 10"]
    found = [(error.location, error.field, error.reason) for error in errors(items)]
    assert found[0] == (f"{path} line 3", None, "9 fields where the header has 10")
    assert found[1][:2] == (f"{path} line 4", "value") and "blank" in found[1][2]
    assert found[2][:2] == (f"{path} line 5", "collected_at") and "'01/03/2024' is not an ISO 8601 date" in found[2][2]
    assert found[3][:2] == (f"{path} line 6", "status") and "'Z'" in found[3][2]
    assert found[4][:2] == (f"{path} line 9", "patient_id")
    assert len(found) == 5


def test_a_bad_vendor_date_names_the_vendor_column(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path / "vendor.yaml", VENDOR_MAPPING))
    path = write(tmp_path / "export.csv", VENDOR_FILE.replace("01.03.2024 08:30", "2024-03-01 08:30", 1), "latin-1")

    first, second = list(read_csv(path, mapping))

    assert isinstance(first, LabParseError)
    assert first.field == "LBDTC"
    assert "does not match the date format '%d.%m.%Y %H:%M'" in first.reason
    assert isinstance(second, LabObservation)


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"),
    [
        ("delimiter: ';'\nseparator: ','\n", 2, "separator", "unknown key"),
        ("columns:\n  patient_id: A\n  test_code: B\n  value: C\n  visit: D\n  colour: E\n", 6, "columns.colour", ""),
        ("columns:\n  patient_id: A\n  test_code: B\n  value: C\n", 2, "columns", "collected_at or of visit"),
        ("statuses:\n  V: valid\n", 2, "statuses.V", "'valid' is not one of"),
        ("delimiter: ':'\n", 1, "delimiter", "must be one of"),
        ("decimal_comma: maybe\n", 1, "decimal_comma", "true or false"),
        ("encoding: klingon\n", 1, "encoding", "not a known text encoding"),
        ("constants:\n  patient_id: X\n", 2, "constants.patient_id", "cannot be a constant"),
        ("date_format: 1\ndate_format: 2\n", 2, "date_format", "given twice"),
        ("columns: [a, b]\n", 1, "columns", "must be a mapping"),
    ],
)
def test_mapping_errors_name_the_file_line_and_key(tmp_path: Path, text: str, line: int, key: str, reason: str) -> None:
    path = write(tmp_path / "vendor.yaml", text)

    with pytest.raises(LabParseError) as raised:
        load_mapping(path)

    assert raised.value.location == f"{path} line {line}"
    assert raised.value.field == key
    assert reason in raised.value.reason


def test_malformed_mapping_yaml_is_located(tmp_path: Path) -> None:
    path = write(tmp_path / "vendor.yaml", "columns:\n  patient_id: [unclosed\n")

    with pytest.raises(LabParseError, match="malformed YAML") as raised:
        load_mapping(path)

    assert raised.value.location.startswith(f"{path} line ")


def test_a_tab_delimiter_can_be_written_as_an_escape(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path / "vendor.yaml", 'delimiter: "\\t"\n'))

    assert mapping == CsvMapping(delimiter="\t", source=str(tmp_path / "vendor.yaml"))


def test_a_large_file_is_read_as_a_stream(tmp_path: Path) -> None:
    """200,000 rows (about 20 MB) pass through with memory that stays far below the file's size."""
    path = tmp_path / "large.csv"
    rows = 200_000
    with path.open("w") as stream:
        stream.write(f"{DEFAULT_HEADER},reported_at,flags\n")
        for index in range(rows):
            stream.write(
                f"0101-{index // 30:05d},ACC{index // 3:07d},2345-7,LN,Glucose,{50 + index % 90}.{index % 10},"
                f"mg/dL,70-99,F,2024-03-{1 + index % 28:02d}T08:{index % 60:02d}:00+01:00,2024-03-02,\n"
            )
    size = path.stat().st_size

    tracemalloc.start()
    try:
        generator = read_csv(path)
        first = next(generator)
        _, peak_at_first = tracemalloc.get_traced_memory()
        count, last = 1, first
        for item in generator:
            count += 1
            last = item
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert isinstance(first, LabObservation) and first.location == f"{path} line 2"
    assert isinstance(last, LabObservation) and last.location == f"{path} line {rows + 1}"
    assert count == rows
    assert peak_at_first < size / 20
    assert peak < size / 20
