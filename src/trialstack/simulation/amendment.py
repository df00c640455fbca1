"""A protocol amendment that adds a consent version: the StudyDefinition as it is, plus the new version.

Used by `trialstack demo` (Amendment 1 of the demo study, ICF 2.0 from its text file) and by the BDD steps that
publish an amendment in a scenario. Pure: the caller publishes the result through the protocol handlers.
"""

from __future__ import annotations

import re
from datetime import date

from trialstack.errors import InvalidInput
from trialstack.protocol.consent_text import split_sections
from trialstack.protocol.definition import ConsentVersion, StudyDefinition


def next_protocol_version(label: str) -> str:
    """`1.0` → `1.1`, `2` → `2.1`, `v3.4` → `v3.5`: the last number goes up by one (a minor amendment)."""
    match = re.fullmatch(r"(.*?)(\d+)\.(\d+)", label)
    if match is None:
        return f"{label}.1"
    return f"{match[1]}{match[2]}.{int(match[3]) + 1}"


def with_consent_version(
    definition: StudyDefinition,
    document_id: str,
    label: str,
    effective: date,
    ethics_approval: str,
    texts: dict[str, str] | None = None,
) -> StudyDefinition:
    """The definition with a new version `label` of the document, effective on `effective`, that everyone must
    sign again (`reconsent: {}`); the protocol version goes up by one.

    The new version keeps the latest version's sites, comprehension questions and optional parts. `texts` maps
    each language of the new version to its text; without it, every text of the latest version is kept with a
    section about the amendment added.
    """
    document = definition.consent_document(document_id)
    if document is None:
        raise InvalidInput(f"no consent document {document_id!r} in {definition.study.id}", field="document_id")
    if document.version(label) is not None:
        raise InvalidInput(f"{document_id} already has a version {label}", field="version")
    latest = document.versions[-1]
    if not latest.texts:
        raise InvalidInput(f"{document_id} version {latest.version} is signed on paper: no text to amend")
    if texts is None:
        texts = {text.language: _with_amendment_section(text.text, text.format.value, label) for text in latest.texts}
    new_texts = []
    for language, body in texts.items():
        previous = latest.text_in(language) or latest.texts[0]
        html = previous.format.value == "html"
        old = {s.number: s.title for s in split_sections(previous.text, document.title, html=html)}
        new = {s.title: s.number for s in split_sections(body, document.title, html=html)}
        questions = [  # each question follows its section (by title) to where the new text has it
            question.model_dump() | {"section": new.get(old.get(question.section, ""), question.section)}
            for question in previous.questions
        ]
        new_texts.append({"language": language, "format": previous.format.value, "text": body, "questions": questions})
    version = ConsentVersion.model_validate(
        {"version": label, "effective": effective, "ethics_approval": ethics_approval, "sites": latest.sites,
         "texts": new_texts, "optional_parts": [part.model_dump() for part in latest.optional_parts],
         "reconsent": {}}
    )  # fmt: skip
    documents = tuple(
        d.model_copy(update={"versions": (*d.versions, version)}) if d.id == document.id else d
        for d in definition.consent
    )
    study = definition.study.model_copy(
        update={"protocol_version": next_protocol_version(definition.study.protocol_version)}
    )
    return definition.model_copy(update={"consent": documents, "study": study})


def _with_amendment_section(text: str, text_format: str, label: str) -> str:
    note = f"Version {label} of this form follows an amendment to the protocol; the study team explains what changed."
    if text_format == "html":
        return f"{text}\n<h2>What changed in version {label}</h2>\n<p>{note}</p>\n"
    return f"{text.rstrip()}\n\n## What changed in version {label}\n\n{note}\n"
