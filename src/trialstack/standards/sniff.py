"""Load a study definition from any supported format, recognised by its content (never by extension).

XML is CDISC ODM (the root element's namespace says 1.3.2 or 2.0); a JSON object that looks like USDM
(`usdmVersion`, `versions`, `instanceType` near the top) is USDM; everything else is TrialStack YAML,
loaded by `trialstack.protocol.yaml_loader` (JSON is YAML too, so our format written as JSON loads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from trialstack.errors import InvalidInput, NotFound
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.yaml_loader import check_study_yaml
from trialstack.standards.odm_import import import_odm
from trialstack.standards.report import MappingReport
from trialstack.standards.study_import import StudyFormatName
from trialstack.standards.usdm_import import import_usdm

SourceKind = Literal["odm", "usdm", "yaml"]
_USDM_MARKERS = ('"usdmVersion"', '"instanceType"', '"studyDesigns"', '"versions"')
_HEAD = 4096


@dataclass(frozen=True)
class LoadedStudy:
    """A definition, the format it was read from, and what the study builder should check."""

    definition: StudyDefinition
    format: StudyFormatName
    warnings: list[str] = field(default_factory=list)
    report: MappingReport | None = None


def sniff_format(data: bytes) -> SourceKind:
    """Which loader reads `data`: "odm" (XML; the loader tells 1.3.2 from 2.0), "usdm" or "yaml"."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:_HEAD].decode("utf-8", errors="replace")
    if head.startswith("<"):
        return "odm"
    if head.startswith("{") and any(marker in head for marker in _USDM_MARKERS):
        return "usdm"
    return "yaml"


def load_any_study_file(path: str | Path) -> LoadedStudy:
    """The definition in the file at `path`, whatever its format; StudyDefinitionError on any problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no study definition at {path}") from None
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error}") from None
    kind = sniff_format(data)
    if kind == "odm":
        result = import_odm(data, str(path))
        return LoadedStudy(result.definition, result.format, result.warnings, result.report)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"cannot read {path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if kind == "usdm":
        result = import_usdm(text, str(path))
        return LoadedStudy(result.definition, result.format, result.warnings, result.report)
    return LoadedStudy(check_study_yaml(text, file=str(path)).definition_or_raise(), "yaml")
