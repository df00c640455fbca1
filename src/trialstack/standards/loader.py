"""The one study-file loader: recognise the format by content and hand the file to its reader.

`check_study_file` / `load_study_file` are the entry point every command uses (`study validate|load|show|diff`,
`demo --study`, `bdd`, tests): they sniff the content and hand it to the reader for that format
(`STUDY_FORMATS`): CDISC ODM 1.3.2 / 2.0 and USDM v4 through this package's importers, TrialStack YAML through
`trialstack.protocol.yaml_loader`. The dispatch lives here, above `protocol`, because it needs both: `standards`
imports `protocol`, never the reverse (ADR 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from trialstack.errors import InvalidInput, NotFound
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.problems import StudyDefinitionError, StudyProblem
from trialstack.protocol.yaml_loader import check_study_yaml
from trialstack.standards.odm_import import import_odm
from trialstack.standards.report import MappingReport
from trialstack.standards.study_import import ImportResult, StudyFormatName
from trialstack.standards.usdm_import import import_usdm

# The content decides, never the extension. XML is ODM (the importer tells 1.3.2 from 2.0 by namespace and
# refuses other XML); a JSON object naming USDM's top-level keys is USDM; anything else is our YAML (JSON too).
_USDM_MARKERS = ('"usdmVersion"', '"instanceType"', '"studyDesigns"', '"versions"')
_HEAD = 4096
# The largest real study files are a few MB (a full ODM extract: 3 MB; the CDISC pilot in USDM: 1 MB). A bigger
# file is refused before it is read: parsing 50 MB of YAML takes minutes and gigabytes.
MAX_STUDY_FILE_BYTES = 16 * 1024 * 1024
_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)


@dataclass(frozen=True)
class StudyCheck:
    """The outcome of checking one source: the definition when there is no problem, else the problems.

    `format` is what `study load` records as the source format (`yaml`, `odm-1.3.2`, `odm-2.0`, `usdm-4`);
    an imported standard also carries its mapping report and the warnings drawn from it.
    """

    file: str
    definition: StudyDefinition | None
    problems: tuple[StudyProblem, ...]
    format: StudyFormatName = "yaml"
    warnings: tuple[str, ...] = ()
    report: MappingReport | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def definition_or_raise(self) -> StudyDefinition:
        if self.problems or self.definition is None:
            raise StudyDefinitionError(self.file, self.problems)
        return self.definition


def _check_imported(load: Callable[[bytes, str], ImportResult]) -> Callable[[bytes, str], StudyCheck]:
    """A CDISC importer as a StudyFormat check: its located problems, or the definition with its report."""

    def check(data: bytes, file: str) -> StudyCheck:
        try:
            result = load(data, file)
        except StudyDefinitionError as error:
            return StudyCheck(file, None, tuple(error.problems))
        return StudyCheck(file, result.definition, (), result.format, tuple(result.warnings), result.report)

    return check


def _at_byte(data: bytes, file: str, offset: int, message: str) -> StudyProblem:
    """A problem at a byte offset, as the line and column (in bytes) a text editor shows."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return StudyProblem(file, data.count(b"\n", 0, offset) + 1, offset - line_start + 1, "/", message)


def encoding_problem(data: bytes, file: str) -> StudyProblem | None:
    """Study files are UTF-8: a UTF-16/32 byte order mark, or NUL bytes (UTF-16 without one), is refused."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return _at_byte(data, file, 0, f"the file is {name} text (byte order mark); save it as UTF-8")
    nul = data.find(b"\x00", 0, _HEAD)
    if nul >= 0:
        return _at_byte(
            data, file, nul, "NUL byte: the file is UTF-16 or UTF-32 text, or not text at all; save it as UTF-8"
        )
    return None


def _text(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        byte = data[error.start : error.start + 1].hex().upper()
        problem = _at_byte(
            data, file, error.start, f"not UTF-8 text: byte 0x{byte} ({error.reason}); save the file as UTF-8"
        )
        raise StudyDefinitionError(file, [problem]) from None


def _check_yaml(data: bytes, file: str, base_dir: Path | None = None) -> StudyCheck:
    """`base_dir`: the study file's folder, where consent texts named by `file:` are read (None: inline only)."""
    try:
        text = _text(data, file)
    except StudyDefinitionError as error:
        return StudyCheck(file, None, tuple(error.problems))
    checked = check_study_yaml(text, file=file, base_dir=base_dir)
    return StudyCheck(checked.file, checked.definition, checked.problems)


def _looks_like_usdm(head: str) -> bool:
    return head.startswith("{") and any(marker in head for marker in _USDM_MARKERS)


@dataclass(frozen=True)
class StudyFormat:
    """A source format: `sniff` looks at the start of the text, `check` loads the file's bytes."""

    kind: Literal["odm", "usdm", "yaml"]
    name: str
    sniff: Callable[[str], bool]
    check: Callable[[bytes, str], StudyCheck]


STUDY_FORMATS: tuple[StudyFormat, ...] = (
    StudyFormat("odm", "CDISC ODM 1.3.2 / 2.0", lambda head: head.startswith("<"), _check_imported(import_odm)),
    StudyFormat(
        "usdm",
        "CDISC USDM v4",
        _looks_like_usdm,
        _check_imported(lambda data, file: import_usdm(_text(data, file), file)),
    ),
    StudyFormat("yaml", "TrialStack YAML", lambda head: True, _check_yaml),
)


def study_format_of(data: bytes) -> StudyFormat:
    """The format whose sniffer accepts the first 4 KB of `data` (TrialStack YAML when no other does)."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:_HEAD].decode("utf-8", errors="replace")
    return next(candidate for candidate in STUDY_FORMATS if candidate.sniff(head))


def check_study_file(path: str | Path) -> StudyCheck:
    """Read `path`, pick its format by content, and check it: the one entry point every command uses."""
    path = Path(path)
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_STUDY_FILE_BYTES:
            mb = 1024 * 1024
            message = (
                f"the file is {size / mb:.1f} MB, more than the {MAX_STUDY_FILE_BYTES // mb} MB a study "
                "definition may have; nothing was read"
            )
            return StudyCheck(file, None, (StudyProblem(file, 1, 1, "/", message),))
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no study definition at {path}") from None
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error}") from None
    wrong = encoding_problem(data, file)
    if wrong is not None:
        return StudyCheck(file, None, (wrong,))
    try:
        found = study_format_of(data)
        return _check_yaml(data, file, path.parent) if found.kind == "yaml" else found.check(data, file)
    except RecursionError:
        # The readers locate nesting they cannot follow themselves; this is the net under them.
        problem = StudyProblem(file, 1, 1, "/", "the document is nested too deeply to be read")
        return StudyCheck(file, None, (problem,))


def load_study_file(path: str | Path) -> StudyDefinition:
    """The definition in the file at `path`, whatever its format; StudyDefinitionError on any problem."""
    return check_study_file(path).definition_or_raise()
