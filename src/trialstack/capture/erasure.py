"""Erasure of a subject's personal data: which places it empties, and when it is refused. Pure.

The clinical record stays (GCP keeps it), and so does every event: what goes is the vault key that opens the
personal values, so the decision only names the places whose values become unrecoverable.
"""

from __future__ import annotations

from trialstack.capture import commands as cmd
from trialstack.capture import events as ev
from trialstack.capture.checks import StudyRules
from trialstack.capture.decide import Decision
from trialstack.capture.model import Casebook
from trialstack.errors import DomainRuleViolation, InvalidInput


def erase_personal_data(casebook: Casebook, rules: StudyRules, command: cmd.ErasePersonalData) -> Decision:
    if not command.reason.strip():
        raise InvalidInput("erasing personal data needs a reason", field="reason")
    if casebook.personal_data_erased:
        raise DomainRuleViolation(f"the personal data of subject {casebook.subject_id} is already erased")
    places = sorted(
        f"{key}/{item_id}"
        for key, form in casebook.forms.items()
        for item_id in form.items
        if (key.form_id, item_id) in rules.personal
    )
    event = ev.PersonalDataErased(subject_id=casebook.subject_id, items=places)
    return Decision([event], reasons={0: command.reason})
