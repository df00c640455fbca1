"""Electronic signatures on casebooks and forms: what is signed, and when a change breaks a signature. Pure.

The signed content is the canonical JSON of the values in scope (items with their values and not-done reasons,
visit dates for a casebook), so a signature is bound to exactly what the investigator saw; any later change to
it invalidates the signature visibly (an event), and the record must be signed again.
"""

from __future__ import annotations

import hashlib
from typing import Any

from trialstack.capture import commands as cmd
from trialstack.capture import events as ev
from trialstack.capture.model import Casebook, StudyStatus
from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.ledger.canonical import canonical_bytes

CASEBOOK_MEANING = (
    "I have reviewed the data in this casebook and confirm that, to the best of my knowledge, "
    "they are accurate and complete."
)


def signed_content(casebook: Casebook, scope: str) -> dict[str, Any]:
    forms = {
        str(key): {
            item: {"value": entry.value, "not_done_reason": entry.not_done_reason}
            for item, entry in sorted(state.items.items())
        }
        for key, state in casebook.forms.items()
        if scope == "casebook" or str(key) == scope
    }
    content: dict[str, Any] = {"subject_id": casebook.subject_id, "forms": forms}
    if scope == "casebook":
        content["visit_dates"] = {str(key): value for key, value in sorted(casebook.visit_dates.items())}
    return content


def content_hash(casebook: Casebook, scope: str) -> str:
    return hashlib.sha256(canonical_bytes(signed_content(casebook, scope))).hexdigest()


def sign(casebook: Casebook, study: StudyStatus, command: cmd.SignCasebook, signed_at: str) -> list[ev.CaptureEvent]:
    if study.locked:
        raise DomainRuleViolation(f"study {study.study_id} is locked")
    if not casebook.exists:
        raise NotFound(f"subject {casebook.subject_id} does not exist", field="subject")
    if not command.meaning.strip():
        raise InvalidInput("a signature needs its meaning (what the signer attests)", field="meaning")
    scope = "casebook" if command.form is None else str(command.form)
    if command.form is not None and command.form not in casebook.forms:
        raise NotFound(f"form {command.form} has no data to sign", field="form")
    if not casebook.forms:
        raise DomainRuleViolation(f"the casebook of {casebook.subject_id} has no data to sign")
    digest = content_hash(casebook, scope)
    already = [s for s in casebook.signatures.values() if s.valid and s.scope == scope and s.content_hash == digest]
    if already:
        raise DomainRuleViolation(f"{scope} is already signed as it stands ({already[0].signature_id})")
    return [
        ev.CasebookSigned(
            subject_id=casebook.subject_id,
            signature_id=f"SIG-{casebook.version + 1}",
            scope=scope,
            meaning=command.meaning.strip(),
            signer=command.signer,
            printed_name=command.printed_name,
            signed_at=signed_at,
            casebook_version=casebook.version,
            content_hash=digest,
        )
    ]


def invalidated_by(before: Casebook, after: Casebook, changed: str) -> list[ev.CaptureEvent]:
    """Signatures whose signed content differs after a change: each becomes invalid, with what changed."""
    return [
        ev.SignatureInvalidated(
            subject_id=after.subject_id, signature_id=signature.signature_id, scope=signature.scope, changed=changed
        )
        for signature in before.signatures.values()
        if signature.valid and content_hash(after, signature.scope) != signature.content_hash
    ]
