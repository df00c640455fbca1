"""The signed copy of a consent, built from the ledger: the signature events, the StudyVersion's text, and the
names the signers typed (revealed from the vault). Rendering it again from the same events gives the same bytes."""

from __future__ import annotations

from trialstack.consent import events as ev
from trialstack.consent.model import consent_document, sections_of
from trialstack.consent.signed_copy import (
    CopyAnswer,
    CopyChoice,
    CopySection,
    CopySignature,
    SignedCopy,
    render_signed_copy,
)
from trialstack.protocol.definition import StudyDefinition

SIGNER_ROLES = {
    "participant": "Participant",
    "legally_authorised_representative": "Legally authorised representative",
}


def signed_copy(
    definition: StudyDefinition,
    signature: ev.ConsentSigned,
    names: dict[str, str | None],
    countersignature: ev.ConsentCountersigned | None = None,
) -> SignedCopy:
    """What the participant signed, with every signature so far; `names` maps vault references to typed names."""
    document = consent_document(definition, signature.document_id)
    version = document.version(signature.version)
    text = version.text_in(signature.language) if version is not None else None
    if version is None or text is None:
        raise LookupError(f"{signature.document_id} {signature.version} ({signature.language}) is not in the study")
    questions = {question.id: question for question in text.questions}
    parts = {part.id: part for part in version.optional_parts}
    role = SIGNER_ROLES.get(signature.signed_by, signature.signed_by)
    if signature.representative_relationship:
        role = f"{role} ({signature.representative_relationship})"
    signatures = [
        CopySignature(role, names.get(signature.printed_name_ref) or "[erased]", signature.signed_at, signature.meaning)
    ]
    if signature.witness_name_ref is not None:
        witness = names.get(signature.witness_name_ref) or "[erased]"
        meaning = "I witnessed the information being given and the consent being signed freely."
        signatures.append(CopySignature("Impartial witness", witness, signature.signed_at, meaning))
    if countersignature is not None:
        signatures.append(
            CopySignature(
                "Person obtaining consent", countersignature.printed_name, countersignature.signed_at,
                countersignature.meaning,
            )
        )  # fmt: skip
    return SignedCopy(
        study_id=definition.study.id,
        study_name=definition.study.name,
        site_id=signature.site_id,
        subject_id=signature.subject_id,
        document_id=document.id,
        title=document.title,
        version=version.version,
        language=text.language,
        effective=version.effective.isoformat() if version.effective else "",
        ethics_approval=version.ethics_approval or "",
        document_sha256=text.sha256,
        sections=tuple(CopySection(s.title, s.markdown) for s in sections_of(document, text)),
        answers=tuple(
            CopyAnswer(questions[a.question].text if a.question in questions else a.question, a.answer, True)
            for a in signature.answers
        ),
        choices=tuple(
            CopyChoice(parts[c.part].text if c.part in parts else c.part, c.agreed) for c in signature.choices
        ),
        signatures=tuple(signatures),
    )


def render(
    definition: StudyDefinition,
    signature: ev.ConsentSigned,
    names: dict[str, str | None],
    countersignature: ev.ConsentCountersigned | None = None,
) -> bytes:
    return render_signed_copy(signed_copy(definition, signature, names, countersignature))
