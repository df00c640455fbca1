"""Informed consent documents as the protocol declares them: versions, languages, text, questions, optional parts.

A document's text ships beside the study file (Markdown or HTML); the loader reads it into `text`, and its SHA-256
is part of the StudyVersion, so what a participant signed is fixed by the study's hash. A version with no text is
signed on paper only. The older one-line form (`version: "1.0"` on the document) still loads, as a paper version.
"""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from trialstack.protocol.definition_base import Identifier, Label, ProtocolModel, RuleId, SiteId, Text


class GatedAction(StrEnum):
    """What a subject may not do until the document is signed (and re-signed after an amendment asks for it)."""

    VISIT_DATA = "visit_data"
    ENROLMENT = "enrolment"
    RANDOMIZATION = "randomization"
    DISPENSING = "dispensing"
    QUESTIONNAIRES = "questionnaires"


ALL_GATES: tuple[GatedAction, ...] = tuple(GatedAction)


class TextFormat(StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"


Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ComprehensionQuestion(ProtocolModel):
    """A check of understanding after `section` (1-based); a wrong answer sends the participant back to it."""

    id: Identifier
    section: Annotated[int, Field(ge=1)]
    text: Text
    options: tuple[Text, ...] = Field(min_length=2)
    answer: Text


class ConsentText(ProtocolModel):
    """The document in one language; `file` is the name it shipped under, `sha256` the hash of `text`."""

    language: Language
    file: str | None = None
    format: TextFormat = TextFormat.MARKDOWN
    text: Text
    sha256: Sha256
    questions: tuple[ComprehensionQuestion, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _hash_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("text"), str) and "sha256" not in data:
            return {**data, "sha256": text_sha256(data["text"])}
        return data

    @model_validator(mode="after")
    def _hash_matches(self) -> ConsentText:
        if self.sha256 != text_sha256(self.text):
            raise ValueError(f"sha256 {self.sha256} is not the SHA-256 of the text ({text_sha256(self.text)})")
        return self


class OptionalPart(ProtocolModel):
    """A separate Yes/No consent inside the document (biobank, genetic testing); `forms` need a Yes to be saved."""

    id: Identifier
    text: Text
    forms: tuple[Identifier, ...] = ()


class ReconsentScope(ProtocolModel):
    """Who must sign this version again: every subject, or those in the listed epochs, arms or sites."""

    epochs: tuple[Identifier, ...] = ()
    arms: tuple[Identifier, ...] = ()
    sites: tuple[SiteId, ...] = ()

    @property
    def everyone(self) -> bool:
        return not (self.epochs or self.arms or self.sites)


class ConsentVersion(ProtocolModel):
    """One approved version: in force from `effective` at `sites` (none listed: every site)."""

    version: Label
    effective: date | None = None
    ethics_approval: Text | None = None
    sites: tuple[SiteId, ...] = ()
    texts: tuple[ConsentText, ...] = ()
    optional_parts: tuple[OptionalPart, ...] = ()
    reconsent: ReconsentScope | Literal["none"] | None = None
    """Who must sign this version again when an amendment adds it: a scope, `none`, or (left out) everyone."""

    @property
    def electronic(self) -> bool:
        return bool(self.texts)

    def text_in(self, language: str) -> ConsentText | None:
        return next((text for text in self.texts if text.language == language), None)

    def applies_at(self, site_id: str) -> bool:
        return not self.sites or site_id in self.sites

    def in_force_on(self, day: date) -> bool:
        return self.effective is None or self.effective <= day


class ConsentDocument(ProtocolModel):
    """An informed consent form (ICF) and its versions, oldest first; a subject signs it before `required_before`.

    `required: false` for a document whose refusal does not stop participation (its parts gate their forms only).
    """

    id: RuleId
    title: Text
    required_before: Identifier
    required: bool = True
    gates: tuple[GatedAction, ...] = ALL_GATES
    versions: tuple[ConsentVersion, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_line_form(cls, data: Any) -> Any:
        """`version: "1.0"` on the document (the first format) is one paper version."""
        if isinstance(data, dict) and "version" in data and "versions" not in data:
            legacy = dict(data)
            legacy["versions"] = [{"version": legacy.pop("version")}]
            return legacy
        return data

    def version(self, label: str) -> ConsentVersion | None:
        return next((version for version in self.versions if version.version == label), None)

    def reconsent_of(self, version: ConsentVersion) -> ReconsentScope | None:
        """Who must sign `version` again when an amendment adds it to this document: None with `reconsent: none`,
        else its scope, everyone unless narrowed (a new version in an amendment means re-consent, DESIGN.md §3)."""
        if version.reconsent == "none":
            return None
        return version.reconsent if isinstance(version.reconsent, ReconsentScope) else ReconsentScope()

    def current_at(self, site_id: str, day: date) -> ConsentVersion | None:
        """The newest version in force at the site on `day`."""
        candidates = [v for v in self.versions if v.applies_at(site_id) and v.in_force_on(day)]
        return candidates[-1] if candidates else None
