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


def _text(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"cannot read {file}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _check_yaml(data: bytes, file: str) -> StudyCheck:
    checked = check_study_yaml(_text(data, file), file=file)
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
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no study definition at {path}") from None
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error}") from None
    return study_format_of(data).check(data, str(path))


def load_study_file(path: str | Path) -> StudyDefinition:
    """The definition in the file at `path`, whatever its format; StudyDefinitionError on any problem."""
    return check_study_file(path).definition_or_raise()
