"""HL7 v2.5.1 ORU^R01 lab results: parse with hl7apy, acknowledge, and frame or unframe MLLP.

The grammar (segments, fields, repetitions, components, the encoding characters of MSH-2) is hl7apy's; this
module only maps the parsed fields onto LabObservation and turns every problem into a LabParseError that names
the segment and the field, so that the ACK can tell the laboratory exactly what to fix (ERR-2, ERR-3).
Pure: no sockets, no clock unless the ACK's own timestamp is not given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message, parse_segment

from trialstack.standards.lab_results import LabObservation, LabParseError, ResultStatus

START_BLOCK: Final = b"\x0b"
END_BLOCK: Final = b"\x1c\x0d"

# HL7 table 0357, message error condition codes.
SEGMENT_SEQUENCE_ERROR: Final = "100"
REQUIRED_FIELD_MISSING: Final = "101"
DATA_TYPE_ERROR: Final = "102"
TABLE_VALUE_NOT_FOUND: Final = "103"
UNSUPPORTED_MESSAGE_TYPE: Final = "200"
UNSUPPORTED_VERSION: Final = "203"
APPLICATION_INTERNAL_ERROR: Final = "207"
ERROR_TEXTS: Final = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_VERSION: "Unsupported version id",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}

OBSERVATION_STATUSES: Final = {
    "F": ResultStatus.FINAL,
    "C": ResultStatus.CORRECTED,
    "P": ResultStatus.PRELIMINARY,
    "R": ResultStatus.PRELIMINARY,
    "I": ResultStatus.PRELIMINARY,
    "X": ResultStatus.CANCELLED,
    "D": ResultStatus.CANCELLED,
    "W": ResultStatus.CANCELLED,
}
_NUMERIC: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_HL7_TIMESTAMP: Final = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?")
_SEGMENT_SPLIT: Final = re.compile(r"\r\n|\n|\r")


@dataclass(frozen=True, slots=True)
class ErrorLocation:
    """Where a message is wrong, as HL7 ERR-2 (ERL) says it: segment id, its occurrence, the field position."""

    segment_id: str
    sequence: int = 1
    field_position: int | None = None

    def to_er7(self) -> str:
        parts = [self.segment_id, str(self.sequence)]
        if self.field_position is not None:
            parts.append(str(self.field_position))
        return "^".join(parts)


class OruParseError(LabParseError):
    """A LabParseError that also says what the ACK needs: MSA-1 (AE or AR), ERR-2 and the HL70357 code."""

    def __init__(
        self,
        location: str,
        field: str | None,
        reason: str,
        *,
        error_code: str,
        error_location: ErrorLocation | None = None,
        acknowledgment: str = "AE",
    ) -> None:
        super().__init__(location, field, reason)
        self.error_code = error_code
        self.error_location = error_location
        self.acknowledgment = acknowledgment


# ---------------------------------------------------------------------------------------------------------------
# Messages in a file


def split_messages(text: str) -> list[str]:
    """The messages of a file, each with CR segment separators; CR, LF and CRLF are all seen in the wild.

    A message starts at each MSH segment; blank lines and batch envelope segments (FHS, BHS, BTS, FTS) are dropped.
    """
    messages: list[list[str]] = []
    for segment in _SEGMENT_SPLIT.split(text.lstrip("\ufeff")):
        segment = segment.strip("\x0b\x1c")
        if not segment.strip() or segment[:3] in {"FHS", "BHS", "BTS", "FTS"}:
            continue
        if segment.startswith("MSH") or not messages:
            messages.append([])
        messages[-1].append(segment)
    return ["\r".join(segments) for segments in messages]


# ---------------------------------------------------------------------------------------------------------------
# ORU^R01 to LabObservation


def parse_oru(
    message_text: str, location_prefix: str = "message 1", *, patient_id_types: tuple[str, ...] = ()
) -> list[LabObservation]:
    """Every OBX result of one ORU^R01 message, or an OruParseError naming the segment and the field.

    `patient_id_types` are the PID-3 identifier types (CX.5, e.g. "MR" or a screening-number type) to prefer;
    without them, or when none matches, the first identifier is the patient id.
    """
    text = _normalized(message_text)
    message = _parsed(text, location_prefix)
    return _OruReader(message, location_prefix, patient_id_types).observations()


def _normalized(message_text: str) -> str:
    return "\r".join(s for s in _SEGMENT_SPLIT.split(message_text.strip().lstrip("\ufeff")) if s.strip())


def _parsed(text: str, prefix: str) -> Any:
    if not text.startswith("MSH"):
        raise OruParseError(
            f"{prefix}, segment 1",
            None,
            "an HL7 v2 message starts with an MSH segment",
            error_code=SEGMENT_SEQUENCE_ERROR,
            error_location=ErrorLocation("MSH"),
            acknowledgment="AR",
        )
    header_text = text.split("\r", 1)[0]
    try:
        header = parse_segment(header_text, validation_level=VALIDATION_LEVEL.TOLERANT)
        message_type = _components(header.msh_9)
    except HL7apyException as error:
        raise OruParseError(
            f"{prefix}, MSH 1 (segment 1)",
            "MSH",
            f"the message header cannot be read: {error}",
            error_code=APPLICATION_INTERNAL_ERROR,
            error_location=ErrorLocation("MSH"),
            acknowledgment="AR",
        ) from error
    kind = "^".join(part for part in message_type[:2] if part)
    if kind != "ORU^R01":
        raise OruParseError(
            f"{prefix}, MSH 1 (segment 1)",
            "MSH-9",
            f"not an ORU^R01 lab result message: the message is {kind or 'untyped'}",
            error_code=UNSUPPORTED_MESSAGE_TYPE,
            error_location=ErrorLocation("MSH", 1, 9),
            acknowledgment="AR",
        )
    try:
        return parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
    except HL7apyException as error:
        unsupported = type(error).__name__ == "UnsupportedVersion"
        raise OruParseError(
            f"{prefix}, MSH 1 (segment 1)" if unsupported else prefix,
            "MSH-12" if unsupported else None,
            f"the message cannot be parsed: {error}",
            error_code=UNSUPPORTED_VERSION if unsupported else APPLICATION_INTERNAL_ERROR,
            error_location=ErrorLocation("MSH", 1, 12) if unsupported else None,
            acknowledgment="AR",
        ) from error


@dataclass(frozen=True, slots=True)
class _Patient:
    patient_id: str
    sex: str | None
    birth_date: date | None


class _OruReader:
    """Walks the flat segment list: each OBX belongs to the OBR and the PID before it."""

    def __init__(self, message: Any, prefix: str, patient_id_types: tuple[str, ...]) -> None:
        self.message = message
        self.prefix = prefix
        self.patient_id_types = patient_id_types
        self.escape = message.encoding_chars
        self.where: tuple[str, int, int] = ("MSH", 1, 1)

    def fail(
        self, field: int | None, reason: str, code: str, where: tuple[str, int, int] | None = None
    ) -> OruParseError:
        segment_id, sequence, position = where or self.where
        return OruParseError(
            f"{self.prefix}, {segment_id} {sequence} (segment {position})",
            f"{segment_id}-{field}" if field else None,
            reason,
            error_code=code,
            error_location=ErrorLocation(segment_id, sequence, field),
        )

    def observations(self) -> list[LabObservation]:
        segments = list(self.message.children)
        header = segments[0]
        self.where = ("MSH", 1, 1)
        # The version is the message's own datetime, not OBX-19 (the analysis time): a corrected result arrives
        # in a later message that often keeps the analysis time (NIST sample 3 corrects sample 1 with the same
        # OBX-19), while a resent copy of the same message keeps MSH-7, so it stays one report.
        version = self.timestamp(header.msh_7, 7) or self.text(header.msh_10)
        if not version:
            raise self.fail(7, "the message date/time is required (it versions the results)", REQUIRED_FIELD_MISSING)
        counts: dict[str, int] = {}
        patient: _Patient | None = None
        order: Any = None
        order_where = ("OBR", 0, 0)
        results: list[LabObservation] = []
        seen = {"PID": False, "OBR": False, "OBX": False}
        for position, segment in enumerate(segments, start=1):
            name = str(segment.name)
            counts[name] = counts.get(name, 0) + 1
            self.where = (name, counts[name], position)
            if name == "PID":
                patient = self.patient(segment)
                order = None
                seen["PID"] = True
            elif name == "OBR":
                if patient is None:
                    raise self.fail(None, "an OBR order before any PID patient segment", SEGMENT_SEQUENCE_ERROR)
                order, order_where = segment, self.where
                seen["OBR"] = True
            elif name == "OBX":
                seen["OBX"] = True
                if patient is None or order is None:
                    raise self.fail(None, "an OBX result before its PID and OBR segments", SEGMENT_SEQUENCE_ERROR)
                results.append(self.observation(segment, order, order_where, patient, version))
            elif name == "NTE" and results and results[-1].location.endswith(f"(segment {position - 1})"):
                results[-1] = self.with_note(results[-1], segment)
        for name, present in seen.items():
            if not present:
                raise OruParseError(
                    self.prefix,
                    None,
                    f"the message has no {name} segment, which an ORU^R01 message requires",
                    error_code=SEGMENT_SEQUENCE_ERROR,
                    error_location=ErrorLocation(name),
                )
        return results

    def patient(self, segment: Any) -> _Patient:
        identifiers = [_components(repetition) for repetition in segment.pid_3]
        identifiers = [parts for parts in identifiers if parts and parts[0]]
        if not identifiers:
            raise self.fail(3, "the patient identifier list has no identifier", REQUIRED_FIELD_MISSING)
        chosen = identifiers[0]
        for wanted in self.patient_id_types:
            match = next((parts for parts in identifiers if len(parts) > 4 and parts[4] == wanted), None)
            if match is not None:
                chosen = match
                break
        sex_code = self.text(segment.pid_8).upper()
        sex = None if not sex_code else sex_code if sex_code in {"M", "F"} else "U"
        birth = self.timestamp(segment.pid_7, 7)
        birth_date = date.fromisoformat(birth[:10]) if birth and len(birth) >= 10 else None
        return _Patient(self.unescape(chosen[0]), sex, birth_date)

    def observation(
        self, obx: Any, obr: Any, obr_where: tuple[str, int, int], patient: _Patient, version: str
    ) -> LabObservation:
        code_parts = _components(obx.obx_3)
        if not code_parts or not code_parts[0]:
            raise self.fail(3, "the observation identifier (test code) is required", REQUIRED_FIELD_MISSING)
        status_code = self.text(obx.obx_11).upper()
        if not status_code:
            raise self.fail(11, "the observation result status is required", REQUIRED_FIELD_MISSING)
        status = OBSERVATION_STATUSES.get(status_code)
        if status is None:
            raise self.fail(
                11, f"{status_code!r} is not an observation result status (HL7 table 0085)", TABLE_VALUE_NOT_FOUND
            )
        value = self.value(obx, status)
        collected_at = self.timestamp(obx.obx_14, 14) or self.timestamp(obr.obr_7, 7, obr_where)
        reported_at = self.timestamp(obr.obr_22, 22, obr_where)
        accession = _first(_components(obr.obr_3)) or _first(_components(obr.obr_2))
        if not accession:
            reason = "the filler (or placer) order number, the accession, is required"
            raise self.fail(3, reason, REQUIRED_FIELD_MISSING, obr_where)
        unit = _first(_components(obx.obx_6))
        reference_range = self.text(obx.obx_7)
        flags = "~".join(text for text in (str(flag.to_er7()).strip() for flag in obx.obx_8) if text)
        _segment_id, sequence, position = self.where
        return LabObservation(
            location=f"{self.prefix}, OBX {sequence} (segment {position})",
            patient_id=patient.patient_id,
            accession=self.unescape(accession),
            test_code=self.unescape(code_parts[0]),
            test_system=_at(code_parts, 2) or None,
            test_name=self.unescape(_at(code_parts, 1)) or None,
            value=value,
            unit=self.unescape(unit) if unit else None,
            status=status,
            version=version,
            collected_at=collected_at,
            reported_at=reported_at,
            reference_range=self.unescape(reference_range) or None,
            flags=flags or None,
            visit=None,
            sex=patient.sex,
            age_years=_age(patient.birth_date, collected_at),
            comment=None,
        )

    def value(self, obx: Any, status: ResultStatus) -> str:
        value_type = self.text(obx.obx_2).upper()
        repetitions = list(obx.obx_5)
        if not repetitions or not repetitions[0].to_er7():
            if status is ResultStatus.CANCELLED:
                return ""
            raise self.fail(
                5, "the observation value is required unless the result is cancelled", REQUIRED_FIELD_MISSING
            )
        if value_type == "NM":
            text = str(repetitions[0].to_er7()).strip()
            if not _NUMERIC.fullmatch(text):
                raise self.fail(5, f"{text!r} is not a number, as value type NM requires", DATA_TYPE_ERROR)
            return text
        if value_type == "SN":
            parts = _components(repetitions[0])
            return "".join(self.unescape(part) for part in parts[:4])
        if value_type in {"CE", "CWE", "CNE"}:
            parts = _components(repetitions[0])
            return self.unescape(_at(parts, 1) or _at(parts, 0))
        return " ".join(self.unescape(repetition.to_er7()) for repetition in repetitions)

    def with_note(self, observation: LabObservation, nte: Any) -> LabObservation:
        note = " ".join(self.unescape(comment.to_er7()) for comment in nte.nte_3)
        if not note:
            return observation
        comment = f"{observation.comment} {note}" if observation.comment else note
        fields = {name: getattr(observation, name) for name in observation.__slots__}
        fields["comment"] = comment
        return LabObservation(**fields)

    def timestamp(self, field: Any, position: int, where: tuple[str, int, int] | None = None) -> str | None:
        """An HL7 TS/DTM field as ISO 8601 text, None when empty."""
        text = _first(_components(field))
        if not text:
            return None
        try:
            return hl7_datetime_to_iso(text)
        except ValueError as error:
            raise self.fail(position, f"{text!r} is not an HL7 date/time: {error}", DATA_TYPE_ERROR, where) from None

    def text(self, field: Any) -> str:
        for repetition in field:
            return str(repetition.to_er7()).strip()
        return ""

    def unescape(self, text: str) -> str:
        return unescape_hl7(text, self.escape)


def hl7_datetime_to_iso(text: str) -> str:
    """HL7 TS/DTM (YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]) as ISO 8601 text at the precision given."""
    match = _HL7_TIMESTAMP.fullmatch(text.strip())
    if match is None:
        raise ValueError("expected YYYY[MM[DD[HH[MM[SS[.SSSS]]]]]][+/-ZZZZ]")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if offset and not hour:
        raise ValueError("a time zone offset without a time")
    datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0))
    iso = year
    if month:
        iso += f"-{month}"
    if day:
        iso += f"-{day}"
    if hour:
        iso += f"T{hour}:{minute or '00'}"
        if second:
            iso += f":{second}{fraction or ''}"
    if offset:
        if int(offset[1:3]) > 23 or int(offset[3:]) > 59:
            raise ValueError(f"{offset} is not a time zone offset")
        iso += f"{offset[:3]}:{offset[3:]}"
    return iso


def unescape_hl7(text: str, encoding_chars: dict[str, str] | None = None) -> str:
    r"""Text with the HL7 escape sequences \F\ \S\ \T\ \R\ \E\ resolved (hl7apy escapes on output only)."""
    chars = encoding_chars or {"FIELD": "|", "COMPONENT": "^", "REPETITION": "~", "ESCAPE": "\\", "SUBCOMPONENT": "&"}
    escape = chars["ESCAPE"]
    if escape not in text:
        return text
    replacements = {
        "F": chars["FIELD"],
        "S": chars["COMPONENT"],
        "T": chars["SUBCOMPONENT"],
        "R": chars["REPETITION"],
        "E": escape,
    }
    pattern = re.compile(re.escape(escape) + r"([FSTRE])" + re.escape(escape))
    return pattern.sub(lambda match: replacements[str(match.group(1))], text)


def _components(field: Any) -> list[str]:
    """The components of a field (or of its first repetition) by position, as ER7 text; hl7apy names them
    "CX_1", "VARIES_3", ... and a primitive field has one child named after its type."""
    element = field
    if not hasattr(element, "children"):
        element = next(iter(field), None)
        if element is None:
            return []
    children = list(element.children)
    if not children:
        return [str(element.to_er7())] if element.to_er7() else []
    result: list[str] = []
    for child in children:
        suffix = str(child.name or "").rpartition("_")[2]
        position = int(suffix) if suffix.isdigit() else len(result) + 1
        while len(result) < position:
            result.append("")
        result[position - 1] = str(child.to_er7())
    return result


def _first(parts: list[str]) -> str:
    return parts[0].strip() if parts else ""


def _at(parts: list[str], index: int) -> str:
    return parts[index].strip() if len(parts) > index else ""


def _age(birth: date | None, collected_at: str | None) -> int | None:
    """Whole years at the collection date; the birth date itself never leaves the parser (DESIGN.md §2)."""
    if birth is None or collected_at is None or len(collected_at) < 10:
        return None
    collected = date.fromisoformat(collected_at[:10])
    years = collected.year - birth.year - ((collected.month, collected.day) < (birth.month, birth.day))
    return years if years >= 0 else None


# ---------------------------------------------------------------------------------------------------------------
# Acknowledgment


def build_ack(
    message_text: str,
    code: str,
    text: str = "",
    error_location: ErrorLocation | None = None,
    *,
    error_code: str | None = None,
    at: datetime | None = None,
) -> str:
    """The ACK^R01 for a message: MSA-1 AA (accepted), AE (error: fix and resend) or AR (rejected), MSA-2 the
    message's control id, and for AE/AR an ERR segment with ERR-2 (where) and ERR-3 (HL70357 code).

    Built with hl7apy from the original MSH, sender and receiver swapped; when the MSH is garbage, a minimal ACK
    is written by hand from whatever MSH fields can be read, so that even an unreadable message is answered.
    """
    if code not in {"AA", "AE", "AR"}:
        raise ValueError(f"an acknowledgment code is AA, AE or AR, not {code!r}")
    stamp = (at or datetime.now(UTC)).strftime("%Y%m%d%H%M%S%z")
    if code != "AA" and error_code is None:
        error_code = APPLICATION_INTERNAL_ERROR
    normalized = _normalized(message_text)
    header_text = normalized.split("\r", 1)[0] if normalized.startswith("MSH") else ""
    try:
        header = parse_segment(header_text, validation_level=VALIDATION_LEVEL.TOLERANT) if header_text else None
    except HL7apyException:
        header = None
    if header is not None:
        try:
            return _ack_with_hl7apy(header, code, text, error_location, error_code, stamp)
        except HL7apyException:
            pass
    return _ack_by_hand(header_text, code, text, error_location, error_code, stamp)


def ack_for(message_text: str, error: LabParseError | None, *, at: datetime | None = None) -> str:
    """The ACK for the outcome of parse_oru: AA when it parsed, else AE/AR with the error's location and code."""
    if error is None:
        return build_ack(message_text, "AA", "", at=at)
    if isinstance(error, OruParseError):
        text = f"{error.field}: {error.reason}" if error.field else error.reason
        return build_ack(
            message_text, error.acknowledgment, text, error.error_location, error_code=error.error_code, at=at
        )
    return build_ack(message_text, "AE", error.reason, error_code=APPLICATION_INTERNAL_ERROR, at=at)


def _escape(text: str) -> str:
    """Free text made safe for one ER7 field (default encoding characters)."""
    text = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    text = text.replace("&", "\\T\\").replace("~", "\\R\\")
    return " ".join(text.split())


def _error_code_er7(error_code: str) -> str:
    return f"{error_code}^{ERROR_TEXTS.get(error_code, '')}^HL70357"


def _ack_with_hl7apy(
    header: Any, code: str, text: str, location: ErrorLocation | None, error_code: str | None, stamp: str
) -> str:
    ack = Message("ACK", version="2.5.1", validation_level=VALIDATION_LEVEL.TOLERANT)
    swapped = {3: 5, 4: 6, 5: 3, 6: 4}
    for target, source in swapped.items():
        value = getattr(header, f"msh_{source}").to_er7()
        if value:
            setattr(ack.msh, f"msh_{target}", value)
    ack.msh.msh_7 = stamp
    ack.msh.msh_9 = "ACK^R01^ACK"
    control_id = header.msh_10.to_er7()
    ack.msh.msh_10 = f"ACK{control_id}"[:199] if control_id else "ACK"
    ack.msh.msh_11 = header.msh_11.to_er7() or "P"
    ack.msh.msh_12 = "2.5.1"
    ack.msa.msa_1 = code
    ack.msa.msa_2 = control_id
    if text:
        ack.msa.msa_3 = _escape(text)
    if code != "AA" and error_code is not None:
        err = ack.add_segment("ERR")
        if location is not None:
            err.err_2 = location.to_er7()
        err.err_3 = _error_code_er7(error_code)
        err.err_4 = "E"
        if text:
            err.err_8 = _escape(text)
    return str(ack.to_er7())


def _ack_by_hand(
    header_text: str, code: str, text: str, location: ErrorLocation | None, error_code: str | None, stamp: str
) -> str:
    """A minimal ACK from the readable fields of a broken MSH (default encoding characters)."""
    fields = header_text.split("|") if header_text.startswith("MSH|") else ["MSH", ""]

    def field(position: int) -> str:
        # fields[0] is "MSH" and MSH-1 is the separator itself, so MSH-n sits at index n - 1.
        value = fields[position - 1] if len(fields) >= position else ""
        return value if "\r" not in value and len(value) < 200 else ""

    control_id = field(10)
    msh = [
        "MSH",
        "^~\\&",
        field(5),
        field(6),
        field(3),
        field(4),
        stamp,
        "",
        "ACK^R01^ACK",
        f"ACK{control_id}" if control_id else "ACK",
        field(11) or "P",
        "2.5.1",
    ]
    segments = ["|".join(msh), "|".join(["MSA", code, control_id, _escape(text)]).rstrip("|")]
    if code != "AA" and error_code is not None:
        err = ["ERR", "", location.to_er7() if location else "", _error_code_er7(error_code), "E"]
        segments.append("|".join(err))
    return "\r".join(segments)


# ---------------------------------------------------------------------------------------------------------------
# MLLP


def mllp_frame(message: bytes) -> bytes:
    """One message in its MLLP envelope: 0x0b, the message, 0x1c 0x0d."""
    return START_BLOCK + message + END_BLOCK


class MllpDecoder:
    """Complete messages out of a byte stream that arrives in arbitrary chunks (split or merged frames).

    Bytes outside a frame are dropped, as MLLP receivers do. A frame growing past `max_message_bytes` without its
    end block raises a LabParseError rather than buffering without limit.
    """

    def __init__(self, max_message_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._inside = False
        self._scanned = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by these bytes, in order, without their envelopes."""
        self._buffer += data
        messages: list[bytes] = []
        while True:
            if not self._inside:
                start = self._buffer.find(START_BLOCK)
                if start < 0:
                    self._buffer.clear()
                    return messages
                del self._buffer[: start + 1]
                self._inside = True
                self._scanned = 0
            end = self._buffer.find(END_BLOCK, max(0, self._scanned - 1))
            if end < 0:
                self._scanned = len(self._buffer)
                if self._scanned > self.max_message_bytes:
                    self._buffer.clear()
                    self._inside = False
                    raise LabParseError(
                        "MLLP stream", None, f"a message longer than {self.max_message_bytes} bytes without its end"
                    )
                return messages
            messages.append(bytes(self._buffer[:end]))
            del self._buffer[: end + len(END_BLOCK)]
            self._inside = False

    @property
    def pending(self) -> int:
        """Bytes of an unfinished message held so far."""
        return len(self._buffer) if self._inside else 0
