"""Load a study definition from any supported format, recognised by its content (never by extension).

The sniffing and the dispatch live in `trialstack.standards.loader.STUDY_FORMATS`, the one file loader
every command uses: XML is CDISC ODM (the root element's namespace says 1.3.2 or 2.0); a JSON object that
looks like USDM (`usdmVersion`, `versions`, `instanceType` near the top) is USDM; everything else is
TrialStack YAML (JSON is YAML too, so our format written as JSON loads). This module gives it the shape the
standards API documents: the definition, the format, the warnings and the mapping report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from trialstack.protocol.definition import StudyDefinition
from trialstack.standards.loader import check_study_file, study_format_of
from trialstack.standards.report import MappingReport
from trialstack.standards.study_import import StudyFormatName

SourceKind = Literal["odm", "usdm", "yaml"]


@dataclass(frozen=True)
class LoadedStudy:
    """A definition, the format it was read from, and what the study builder should check."""

    definition: StudyDefinition
    format: StudyFormatName
    warnings: list[str] = field(default_factory=list)
    report: MappingReport | None = None


def sniff_format(data: bytes) -> SourceKind:
    """Which loader reads `data`: "odm" (XML; the loader tells 1.3.2 from 2.0), "usdm" or "yaml"."""
    return study_format_of(data).kind


def load_any_study_file(path: str | Path) -> LoadedStudy:
    """The definition in the file at `path`, whatever its format; StudyDefinitionError on any problem."""
    check = check_study_file(path)
    return LoadedStudy(check.definition_or_raise(), check.format, list(check.warnings), check.report)
