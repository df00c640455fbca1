"""HL7 v2 ORU^R01: the NIST, realm and Cerner samples, the other message types, broken messages, ACKs and MLLP."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hl7apy.parser import parse_message
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import shared_data
from trialstack.standards.hl7_oru import (
    ErrorLocation,
    MllpDecoder,
    OruParseError,
    ack_for,
    build_ack,
    hl7_datetime_to_iso,
    mllp_frame,
    parse_oru,
    split_messages,
)
from trialstack.standards.lab_results import LabObservation, LabParseError, ResultStatus

AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def sample(name: str) -> str:
    return shared_data("hl7v2-oru-samples", name).read_text(encoding="utf-8")


def segments(ack: str) -> dict[str, list[str]]:
    """An ACK's segments by id, each split into fields so that fields[n] is SEG-n (MSH-n for MSH as well)."""
    result: dict[str, list[str]] = {}
    for segment in ack.split("\r"):
        fields = segment.split("|")
        if fields[0] == "MSH":
            fields.insert(1, "|")
        result[fields[0]] = fields
    return result


ORU_SAMPLES = [
    # file, patient, test code, value, unit, status
    ("ORU_R01_2.5.1_SampleTestCase1.hl7", "9817566735", "10368-9", "50", "ug/dL", ResultStatus.FINAL),
    ("ORU_R01_2.5.1_SampleTestCase2.hl7", "9817566735", "10368-9", "50", "ug/dL", ResultStatus.FINAL),
    ("ORU_R01_2.5.1_SampleTestCase3.hl7", "9817566735", "10368-9", "25", "ug/dl", ResultStatus.CORRECTED),
    ("ORU_R01_2.5.1_SampleTestCase4.hl7", "5667351009", "11469-4", "Isolated", None, ResultStatus.FINAL),
    ("realm-cj.hl7", "36363636", "625-4", "Campylobacter jejuni", None, ResultStatus.PRELIMINARY),
    # A code nobody knows is still a code: judging it is the caller's business.
    ("realm-cj-badloinc.hl7", "36363636", "xx625-4", "Campylobacter jejuni", None, ResultStatus.PRELIMINARY),
    ("cerner_en.hl7", "9339683996", "548-8", "Bordetella pertussis", None, ResultStatus.FINAL),
]


@pytest.mark.parametrize(("name", "patient", "code", "value", "unit", "status"), ORU_SAMPLES)
def test_every_oru_sample_gives_its_results(
    name: str, patient: str, code: str, value: str, unit: str | None, status: ResultStatus
) -> None:
    (message,) = split_messages(sample(name))

    (observation,) = parse_oru(message, f"{name} message 1")

    assert observation.patient_id == patient
    assert observation.test_code == code
    assert observation.test_system == "LN"
    assert observation.value == value
    assert observation.unit == unit
    assert observation.status is status
    assert observation.location.startswith(f"{name} message 1, OBX 1 (segment ")


def test_the_nist_lead_result_maps_every_field() -> None:
    (observation,) = parse_oru(sample("ORU_R01_2.5.1_SampleTestCase1.hl7"), "message 1")

    assert observation == LabObservation(
        location="message 1, OBX 1 (segment 6)",
        patient_id="9817566735",
        accession="9700123",
        test_code="10368-9",
        test_system="LN",
        test_name="Lead BldC-mCnc",
        value="50",
        unit="ug/dL",
        status=ResultStatus.FINAL,
        version="2010-09-29T11:07:02",
        collected_at="2008-08-15T10:30-07:00",
        reported_at="2008-08-18T18:00-07:00",
        reference_range="<9 mcg/dL:  Acceptable background lead exposure",
        flags="H",
        sex="M",
        age_years=1,
    )
    assert "2007" not in repr(observation)  # the birth date (PID-7 20070526) is never returned


def test_a_correction_in_a_later_message_is_a_new_version_of_the_same_result() -> None:
    (original,) = parse_oru(sample("ORU_R01_2.5.1_SampleTestCase1.hl7"))
    (corrected,) = parse_oru(sample("ORU_R01_2.5.1_SampleTestCase3.hl7"))

    assert (original.accession, original.test_code) == (corrected.accession, corrected.test_code)
    assert corrected.status is ResultStatus.CORRECTED
    assert original.version != corrected.version  # both carry the same OBX-19 analysis time


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("adt-example.hl7", "ADT^A01"),
        ("bar-example.hl7", "BAR^P01"),
        ("dft-example.hl7", "DFT^P03"),
        ("mdm-example.hl7", "MDM^T04"),
        ("mfn-example.hl7", "MFN^M02"),
        ("orm-example.hl7", "ORM^O01"),
        ("siu-example.hl7", "SIU^S14"),
        ("bad-phone-example.hl7", "SIU^S12"),
    ],
)
def test_other_message_types_are_refused_with_their_type_and_an_ar(name: str, kind: str) -> None:
    messages = split_messages(sample(name))

    for index, message in enumerate(messages, start=1):
        with pytest.raises(OruParseError) as raised:
            parse_oru(message, f"message {index}")
        error = raised.value
        assert f"not an ORU^R01 lab result message: the message is {kind}" in error.reason
        assert error.field == "MSH-9"
        ack = segments(ack_for(message, error, at=AT))
        assert ack["MSA"][1] == "AR"
        assert ack["ERR"][2] == "MSH^1^9"
        assert ack["ERR"][3] == "200^Unsupported message type^HL70357"


def test_a_file_with_two_messages_is_split_in_two() -> None:
    messages = split_messages(sample("dft-example.hl7"))

    assert len(messages) == 2
    assert all(message.startswith("MSH|") and "\n" not in message for message in messages)
    assert "DSD1184189125" in messages[1]


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_segment_separators_cr_lf_and_crlf_read_alike(separator: str) -> None:
    text = sample("ORU_R01_2.5.1_SampleTestCase4.hl7").replace("\r\n", "\r").replace("\n", "\r")
    variant = separator.join(text.split("\r"))

    (message,) = split_messages(variant + separator + separator)

    assert parse_oru(message) == parse_oru(text)


@pytest.mark.parametrize(("name", "_patient", "_code", "_value", "_unit", "_status"), ORU_SAMPLES)
def test_an_accepted_message_is_acknowledged_aa(
    name: str, _patient: str, _code: str, _value: str, _unit: str | None, _status: ResultStatus
) -> None:
    message = split_messages(sample(name))[0]
    original = parse_message(message, find_groups=False)

    ack_text = ack_for(message, None, at=AT)

    ack = segments(ack_text)
    assert ack["MSH"][9] == "ACK^R01^ACK"
    assert ack["MSH"][3] == original.msh.msh_5.to_er7()  # sender and receiver swapped
    assert ack["MSH"][5] == original.msh.msh_3.to_er7()
    assert ack["MSH"][7] == "20240301120000+0000"
    assert ack["MSA"][1:3] == ["AA", original.msh.msh_10.to_er7()]
    assert "ERR" not in ack
    assert parse_message(ack_text).msa.msa_1.to_er7() == "AA"  # hl7apy reads what we wrote


GOOD = (
    "MSH|^~\\&|LAB|CENTRAL|TRIALSTACK|SITE|20240301120000+0100||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||S-001^^^^SCR~L-9^^^^MR||Doe^Jane||19800615|F\r"
    "OBR|1|P1|F1|24323-8^Metabolic panel^LN|||20240301083000+0100|||||||||||||||20240301140000+0100\r"
    "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L^^UCUM|3.9-5.5|H~A|||F|||20240301083000+0100\r"
    "NTE|1||hemolysed sample\r"
    "OBX|2|SN|1920-8^AST^LN||^<^5|U/L^^UCUM|||||P\r"
    "OBX|3|CWE|5778-6^Color^LN||^Yellow||||||C\r"
    "OBX|4|NM|1751-7^Albumin^LN||||||||X"
)


def test_a_full_message_maps_values_comments_and_order_fields() -> None:
    glucose, ast, colour, albumin = parse_oru(GOOD, "m")

    assert (glucose.value, glucose.unit, glucose.flags, glucose.comment) == ("5.4", "mmol/L", "H~A", "hemolysed sample")
    assert (glucose.accession, glucose.reported_at, glucose.sex, glucose.age_years) == (
        "F1",
        "2024-03-01T14:00:00+01:00",
        "F",
        43,
    )
    assert glucose.patient_id == "S-001"  # the first identifier when no type is asked for
    assert (ast.value, ast.status, ast.collected_at) == ("<5", ResultStatus.PRELIMINARY, "2024-03-01T08:30:00+01:00")
    assert (colour.value, colour.status, colour.location) == ("Yellow", ResultStatus.CORRECTED, "m, OBX 3 (segment 7)")
    assert (albumin.value, albumin.status) == ("", ResultStatus.CANCELLED)
    assert all(observation.version == "2024-03-01T12:00:00+01:00" for observation in (glucose, ast))


def test_the_patient_id_prefers_the_identifier_type_asked_for() -> None:
    assert {o.patient_id for o in parse_oru(GOOD, patient_id_types=("MR",))} == {"L-9"}
    assert {o.patient_id for o in parse_oru(GOOD, patient_id_types=("XX", "SCR"))} == {"S-001"}


@pytest.mark.parametrize(
    ("changes", "segment", "field", "code", "reason"),
    [
        ([("|5.4|", "|5,4 mmol|")], "OBX^1^5", "OBX-5", "102", "is not a number"),
        ([("2345-7^Glucose^LN", "")], "OBX^1^3", "OBX-3", "101", "test code"),
        ([("|H~A|||F|", "|H~A|||Q|")], "OBX^1^11", "OBX-11", "103", "'Q' is not an observation result status"),
        ([("|||20240301083000+0100\rNTE", "|||20241301\rNTE")], "OBX^1^14", "OBX-14", "102", "not an HL7 date"),
        ([("||19800615|", "||1980-06-15|")], "PID^1^7", "PID-7", "102", "not an HL7 date"),
        ([("|P1|F1|", "|||")], "OBR^1^3", "OBR-3", "101", "accession"),
        (  # the collection time falls back on OBR-7 when OBX-14 is empty
            [("|||20240301083000+0100\rNTE", "|||\rNTE"), ("|||20240301083000+0100||", "|||2024030108300||")],
            "OBR^1^7",
            "OBR-7",
            "102",
            "not an HL7 date",
        ),
    ],
)
def test_a_broken_message_is_refused_with_an_ae_naming_segment_and_field(
    changes: list[tuple[str, str]], segment: str, field: str, code: str, reason: str
) -> None:
    broken = GOOD
    for old, new in changes:
        assert old in broken
        broken = broken.replace(old, new, 1)

    with pytest.raises(OruParseError) as raised:
        parse_oru(broken, "message 1")

    error = raised.value
    assert error.field == field
    assert reason in error.reason
    ack = segments(ack_for(broken, error, at=AT))
    assert ack["MSA"][1:3] == ["AE", "C1"]
    assert ack["ERR"][2] == segment
    assert ack["ERR"][3].startswith(f"{code}^")


def test_the_location_counts_the_segment_and_its_occurrence() -> None:
    broken = GOOD.replace("^<^5", "").replace("|||||P", "|||||F")

    with pytest.raises(LabParseError) as raised:
        parse_oru(broken, "feed.hl7 message 3")

    assert raised.value.location == "feed.hl7 message 3, OBX 2 (segment 6)"
    assert raised.value.message == (
        "feed.hl7 message 3, OBX 2 (segment 6), field OBX-5: the observation value is required unless the result "
        "is cancelled"
    )


@pytest.mark.parametrize("missing", ["PID", "OBR", "OBX"])
def test_a_missing_segment_is_a_segment_sequence_error(missing: str) -> None:
    kept = [segment for segment in GOOD.split("\r") if not segment.startswith(missing)]
    if missing == "PID":
        kept = [segment for segment in kept if not segment.startswith(("OBR", "OBX", "NTE"))]
        kept.append("OBR|1||F1|x^y^LN")

    with pytest.raises(OruParseError) as raised:
        parse_oru("\r".join(kept))

    assert raised.value.error_code == "100"
    assert missing in raised.value.reason or "before" in raised.value.reason


def test_a_message_without_msh_is_rejected_and_still_acknowledged() -> None:
    garbage = "PID|1||S-001\rOBX|1|NM|x^y^LN||5"

    with pytest.raises(OruParseError) as raised:
        parse_oru(garbage)
    ack = segments(ack_for(garbage, raised.value, at=AT))

    assert ack["MSH"][9] == "ACK^R01^ACK"
    assert ack["MSA"][1:3] == ["AR", ""]
    assert ack["ERR"][3].startswith("100^")


def test_a_garbage_msh_gets_a_minimal_ack_from_the_fields_that_can_be_read() -> None:
    garbage = "MSH|^^\\&|LAB|CENTRAL|TS|SITE|20240301||ORU^R01|C77|P|2.5.1\rPID|1||S-001"

    with pytest.raises(OruParseError) as raised:
        parse_oru(garbage)
    assert raised.value.acknowledgment == "AR"
    ack = segments(ack_for(garbage, raised.value, at=AT))
    hand_made = segments(build_ack("MSH|x\x00|" + "\x1c" * 3, "AR", "unreadable", at=AT))

    assert ack["MSA"][1:3] == ["AR", "C77"]
    assert (ack["MSH"][3], ack["MSH"][5]) == ("TS", "LAB")
    assert hand_made["MSH"][9] == "ACK^R01^ACK"
    assert hand_made["MSA"][1] == "AR"
    assert hand_made["ERR"][3].startswith("207^")


def test_build_ack_writes_the_error_location_and_escapes_the_text() -> None:
    text = build_ack(GOOD, "AE", "bad | value ^ here", ErrorLocation("OBX", 2, 5), error_code="102", at=AT)

    ack = segments(text)
    assert ack["MSA"][1:4] == ["AE", "C1", "bad \\F\\ value \\S\\ here"]
    assert ack["ERR"][2:5] == ["OBX^2^5", "102^Data type error^HL70357", "E"]
    with pytest.raises(ValueError, match="AA, AE or AR"):
        build_ack(GOOD, "OK", "")


@pytest.mark.parametrize(
    ("hl7", "iso"),
    [
        ("2024", "2024"),
        ("202403", "2024-03"),
        ("20240301", "2024-03-01"),
        ("2024030108", "2024-03-01T08:00"),
        ("202403010830-0500", "2024-03-01T08:30-05:00"),
        ("20240301083015.25+0100", "2024-03-01T08:30:15.25+01:00"),
    ],
)
def test_hl7_timestamps_become_iso_text_at_their_precision(hl7: str, iso: str) -> None:
    assert hl7_datetime_to_iso(hl7) == iso


@pytest.mark.parametrize("bad", ["2024-03-01", "20240230", "20240301+0100", "202403012500", "20240301083000+2500"])
def test_impossible_hl7_timestamps_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        hl7_datetime_to_iso(bad)


# --- MLLP ---------------------------------------------------------------------------------------------------------

payloads = st.lists(
    st.binary(min_size=1, max_size=60).map(lambda data: data.replace(b"\x0b", b"").replace(b"\x1c", b"") or b"x"),
    min_size=1,
    max_size=6,
)


@given(messages=payloads, cuts=st.lists(st.integers(min_value=0, max_value=500), max_size=12))
def test_the_mllp_decoder_reassembles_split_and_merged_frames(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"junk" + b"".join(mllp_frame(message) + b"\r\n" for message in messages)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    chunks = [stream[start:end] for start, end in zip([0, *points], [*points, len(stream)], strict=True)]
    decoder = MllpDecoder()

    received = [message for chunk in chunks for message in decoder.feed(chunk)]

    assert received == messages
    assert decoder.pending == 0


def test_the_mllp_decoder_waits_for_the_end_block_split_across_chunks() -> None:
    decoder = MllpDecoder()
    framed = mllp_frame(GOOD.encode())

    assert decoder.feed(framed[:-1]) == []
    assert decoder.pending == len(GOOD) + 1
    assert decoder.feed(framed[-1:]) == [GOOD.encode()]


def test_the_mllp_decoder_refuses_a_frame_without_end() -> None:
    decoder = MllpDecoder(max_message_bytes=100)

    with pytest.raises(LabParseError, match="longer than 100 bytes"):
        decoder.feed(b"\x0b" + b"x" * 200)
    assert decoder.feed(mllp_frame(b"ok")) == [b"ok"]


def test_split_messages_reads_a_file_of_framed_samples(tmp_path: Path) -> None:
    texts = [sample(name) for name, *_ in ORU_SAMPLES[:3]]

    assert [parse_oru(message)[0].value for message in split_messages("\n".join(texts))] == ["50", "50", "25"]
