"""Do the consent documents hold together? Versions, languages, questions, parts and re-consent scopes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from trialstack.protocol.consent_text import split_sections
from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.definition_consent import (
    ConsentDocument,
    ConsentText,
    ConsentVersion,
    ReconsentScope,
    TextFormat,
)
from trialstack.protocol.problems import Finding


def _twice(values: Sequence[str], pointer: str, what: str, key: str) -> Iterator[Finding]:
    for index, value in enumerate(values):
        if value in values[:index]:
            yield Finding(f"{pointer}/{index}/{key}", f"{what} '{value}' is listed twice")


def check_consent(definition: StudyDefinition) -> Iterator[Finding]:
    """Every consent document's versions, texts and references are consistent with the rest of the study."""
    known = {
        "site": {site.id for site in definition.sites},
        "arm": {arm.id for arm in definition.arms},
        "epoch": {epoch.id for epoch in definition.epochs},
        "form": {form.id for form in definition.forms},
    }
    for d, document in enumerate(definition.consent):
        pointer = f"/consent/{d}"
        yield from _twice([v.version for v in document.versions], f"{pointer}/versions", "version", "version")
        previous = None
        for v, version in enumerate(document.versions):
            at = f"{pointer}/versions/{v}"
            yield from _check_version(document, version, at, known)
            if v == 0 and isinstance(version.reconsent, ReconsentScope):
                yield Finding(f"{at}/reconsent", "the first version has no earlier version to re-consent from")
            if previous and version.effective and previous.effective and version.effective < previous.effective:
                yield Finding(
                    f"{at}/effective",
                    f"effective {version.effective} is before version {previous.version}'s {previous.effective}: "
                    "list versions oldest first",
                )
            previous = version


def _check_version(
    document: ConsentDocument, version: ConsentVersion, at: str, known: dict[str, set[str]]
) -> Iterator[Finding]:
    if version.electronic:
        for key in ("effective", "ethics_approval"):
            if getattr(version, key) is None:
                yield Finding(f"{at}/{key}", f"an eConsent version needs `{key}` (version {version.version})")
    if known["site"]:
        for s, site in enumerate(version.sites):
            if site not in known["site"]:
                yield Finding(f"{at}/sites/{s}", f"unknown site '{site}'")
    yield from _twice([t.language for t in version.texts], f"{at}/texts", "language", "language")
    for t, text in enumerate(version.texts):
        yield from _check_text(document, text, f"{at}/texts/{t}")
    yield from _twice([p.id for p in version.optional_parts], f"{at}/optional_parts", "optional part", "id")
    for p, part in enumerate(version.optional_parts):
        for f, form in enumerate(part.forms):
            if form not in known["form"]:
                yield Finding(f"{at}/optional_parts/{p}/forms/{f}", f"unknown form '{form}'")
    scope = version.reconsent
    if isinstance(scope, ReconsentScope):
        if scope.arms:
            yield Finding(
                f"{at}/reconsent/arms",
                "re-consent by arm needs the subjects' allocations, which are not recorded until randomization (IRT) "
                "is built: scope it by sites or epochs",
            )
        for key, kind in (("epochs", "epoch"), ("sites", "site")):
            for n, value in enumerate(getattr(scope, key)):
                if value not in known[kind]:
                    yield Finding(f"{at}/reconsent/{key}/{n}", f"unknown {kind} '{value}'")


def _check_text(document: ConsentDocument, text: ConsentText, at: str) -> Iterator[Finding]:
    sections = split_sections(text.text, document.title, html=text.format is TextFormat.HTML)
    if not any(section.markdown for section in sections):
        yield Finding(f"{at}/text", "the consent text is empty")
    yield from _twice([q.id for q in text.questions], f"{at}/questions", "question", "id")
    for q, question in enumerate(text.questions):
        if question.section > len(sections):
            yield Finding(
                f"{at}/questions/{q}/section",
                f"section {question.section} does not exist: the text has {len(sections)} sections (## headings)",
            )
        if question.answer not in question.options:
            yield Finding(f"{at}/questions/{q}/answer", f"the answer '{question.answer}' is not one of the options")
