"""Load a study definition from our YAML format, reporting every problem with file, line and column.

This reads TrialStack YAML (and JSON, which is YAML) only. Files in any format, recognised by content, go through
`trialstack.standards.loader.check_study_file` / `load_study_file`, which hands YAML to `check_study_yaml` here
and CDISC ODM / USDM to the standards importers: `protocol` knows nothing of `standards` (ADR 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from trialstack.protocol.consent_text import resolve_text_files
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.problems import StudyDefinitionError, StudyProblem, locate_findings
from trialstack.protocol.structure import build_definition
from trialstack.protocol.validation import validate_definition
from trialstack.protocol.yaml_source import compose_yaml


@dataclass(frozen=True)
class YamlCheck:
    """The outcome of checking one YAML source: the definition when there is no problem, else the problems."""

    file: str
    definition: StudyDefinition | None
    problems: tuple[StudyProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def definition_or_raise(self) -> StudyDefinition:
        if self.problems or self.definition is None:
            raise StudyDefinitionError(self.file, self.problems)
        return self.definition


def check_study_yaml(
    text: str, *, file: str = "<string>", base_dir: Path | None = None, attached: Mapping[str, str] | None = None
) -> YamlCheck:
    """Parse, validate the structure, then the semantics: every problem at once, in file order.

    Consent texts named by `file:` are read from `base_dir` (the study file's folder) or taken from `attached`
    (uploaded beside it); with neither, they must be inline (`text:`).
    """
    source, findings = compose_yaml(text, file)
    definition = None
    if source.parsed:
        unreadable = resolve_text_files(source.data, base_dir, attached)
        findings += unreadable
        unread = {finding.pointer.rsplit("/", 1)[0] for finding in unreadable}
        result = build_definition(source.data)
        findings += [finding for finding in result.findings if finding.pointer not in unread]
        if result.definition is not None:
            semantic = validate_definition(result.definition, pruned=frozenset(result.pruned))
            findings += [replace(finding, pointer=result.original_pointer(finding.pointer)) for finding in semantic]
            definition = result.definition
    problems = tuple(locate_findings(findings, source))
    return YamlCheck(file, None if problems else definition, problems)


def load_study_yaml(text: str, *, file: str = "<string>", base_dir: Path | None = None) -> StudyDefinition:
    """The definition in `text`, or StudyDefinitionError listing every problem."""
    return check_study_yaml(text, file=file, base_dir=base_dir).definition_or_raise()
