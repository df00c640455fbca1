"""Load a study definition from our YAML format, reporting every problem with file, line and column.

`load_study_file` is the one entry point for files: it sniffs the content and hands it to the loader
for that format, so CDISC ODM and USDM loaders can be added to `STUDY_FORMATS` without touching callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from trialstack.errors import InvalidInput, NotFound
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.problems import StudyDefinitionError, StudyProblem, locate_findings
from trialstack.protocol.structure import build_definition
from trialstack.protocol.validation import validate_definition
from trialstack.protocol.yaml_source import compose_yaml


@dataclass(frozen=True)
class StudyCheck:
    """The outcome of checking one source: the definition when there is no problem, else the problems."""

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


def check_study_yaml(text: str, *, file: str = "<string>") -> StudyCheck:
    """Parse, validate the structure, then the semantics: every problem at once, in file order."""
    source, findings = compose_yaml(text, file)
    definition = None
    if source.parsed:
        result = build_definition(source.data)
        findings += result.findings
        if result.definition is not None:
            semantic = validate_definition(result.definition, pruned=frozenset(result.pruned))
            findings += [replace(finding, pointer=result.original_pointer(finding.pointer)) for finding in semantic]
            definition = result.definition
    problems = tuple(locate_findings(findings, source))
    return StudyCheck(file, None if problems else definition, problems)


def load_study_yaml(text: str, *, file: str = "<string>") -> StudyDefinition:
    """The definition in `text`, or StudyDefinitionError listing every problem."""
    return check_study_yaml(text, file=file).definition_or_raise()


@dataclass(frozen=True)
class StudyFormat:
    """A source format: `sniff` looks at the start of the text, `check` loads it."""

    name: str
    sniff: Callable[[str], bool]
    check: Callable[[str, str], StudyCheck]


def _not_yet(name: str) -> Callable[[str, str], StudyCheck]:
    def check(text: str, file: str) -> StudyCheck:
        raise InvalidInput(f"{file}: {name} study definitions cannot be loaded yet; use the TrialStack YAML format")

    return check


def _looks_like_usdm(head: str) -> bool:
    return head.startswith("{") and ('"studyVersions"' in head or '"usdmVersion"' in head)


STUDY_FORMATS: tuple[StudyFormat, ...] = (
    StudyFormat("CDISC ODM", lambda head: head.startswith("<"), _not_yet("CDISC ODM")),
    StudyFormat("CDISC USDM", _looks_like_usdm, _not_yet("CDISC USDM")),
    StudyFormat("TrialStack YAML", lambda head: True, lambda text, file: check_study_yaml(text, file=file)),
)


def check_study_file(path: str | Path) -> StudyCheck:
    """Read `path`, pick its format by content, and check it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NotFound(f"no study definition at {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"cannot read {path}: {error}") from None
    head = text.lstrip()[:4096]
    study_format = next(candidate for candidate in STUDY_FORMATS if candidate.sniff(head))
    return study_format.check(text, str(path))


def load_study_file(path: str | Path) -> StudyDefinition:
    """The definition in the file at `path`, whatever its format; StudyDefinitionError on any problem."""
    return check_study_file(path).definition_or_raise()
