"""Visits, forms, items and values named the way a study team writes them, resolved against the definition.

A UAT script says `the "Week 2" vital signs`, `SBP` or `Female`; the handlers want `WEEK2.VS`, `SYSBP` and `F`.
Each thing can be named by its id or by its name; an item also by its short label (before a comma or a
parenthesis), the initials of that short label (`SBP` for "Systolic blood pressure, seated") or an abbreviation
in parentheses (`ALT`). A name that fits nothing, or more than one thing, is a ReferenceProblem that names it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from trialstack.bdd.errors import ReferenceProblem
from trialstack.capture.refs import FormKey, VisitKey
from trialstack.protocol.definition import Form, Item, ItemType, StudyDefinition, Visit
from trialstack.protocol.symbols import VISIT_DATE

_REPEAT = re.compile(r"^(?P<name>.+?)[ .#](?P<n>\d+)$")
_QUOTED_VISIT = re.compile(r'^"(?P<visit>[^"]+)"\s+(?P<form>.+)$')
_LOG_RECORD = re.compile(r"^(?P<form>.+?)\s+(?:record\s+|#)?(?P<n>\d+)$", re.IGNORECASE)
_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def _norm(text: str) -> str:
    """Lower case, single spaces, no quotes; a trailing plural 's' dropped from each word."""
    words = re.sub(r"\s+", " ", text.strip().strip('"').lower()).split(" ")
    return " ".join(word[:-1] if len(word) > 3 and word.endswith("s") else word for word in words)


def _short(label: str) -> str:
    return re.split(r",|\s\(|\s/\s", label, maxsplit=1)[0].strip()


def _initials(text: str) -> str | None:
    words = [w for w in re.split(r"[\s-]+", text) if w]
    return "".join(w[0] for w in words).upper() if len(words) >= 2 else None


def item_names(item: Item) -> set[str]:
    """Every name the item answers to (normalized)."""
    names = {_norm(item.id), _norm(item.label), _norm(_short(item.label))}
    initials = _initials(_short(item.label))
    if initials:
        names.add(_norm(initials))
    names |= {_norm(abbreviation) for abbreviation in re.findall(r"\(([A-Z][A-Za-z0-9]{1,9})\)", item.label)}
    return names


def _closest(text: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(text, sorted(set(candidates)), n=3, cutoff=0.4)
    return f" (closest: {', '.join(close)})" if close else ""


class Names:
    """The study's vocabulary, for resolving what a scenario names."""

    def __init__(self, definition: StudyDefinition) -> None:
        self.definition = definition
        self.study_id = definition.study.id
        self._item_names = {form.id: [(item, item_names(item)) for item in form.items] for form in definition.forms}

    # visits -----------------------------------------------------------------------------------------------
    def _visit_names(self, visit: Visit) -> set[str]:
        parts = {part for part in re.split(r"\s/\s", visit.name)}
        return {_norm(visit.id), _norm(visit.name)} | {_norm(part) for part in parts}

    def visit(self, text: str) -> VisitKey:
        """`Week 2`, `WEEK2`, `Day 1`, `Unscheduled 2`, `UNSCHED.2`."""
        wanted = _norm(text)
        found = [v for v in self.definition.schedule.visits if wanted in self._visit_names(v)]
        if len(found) == 1:
            visit = found[0]
            if visit.repeating:
                raise ReferenceProblem(
                    f'visit "{text}" repeats: name the instance ("{visit.name} 1", "{visit.id}.2", ...)'
                )
            return VisitKey(visit.id)
        repeat = _REPEAT.match(text.strip())
        if repeat is not None and not found:
            base = [v for v in self.definition.schedule.visits if _norm(repeat["name"]) in self._visit_names(v)]
            if len(base) == 1 and base[0].repeating and int(repeat["n"]) > 0:
                return VisitKey(base[0].id, int(repeat["n"]))
        if len(found) > 1:
            raise ReferenceProblem(f'visit "{text}" is ambiguous: {", ".join(v.id for v in found)}')
        known = [v.name for v in self.definition.schedule.visits] + [v.id for v in self.definition.schedule.visits]
        raise ReferenceProblem(f'unknown visit "{text}" in {self.study_id}{_closest(text, known)}')

    def visit_name(self, key: VisitKey) -> str:
        visit = self.definition.visit(key.visit_id)
        name = visit.name if visit is not None else key.visit_id
        return f"{name} {key.repeat}" if key.repeat else name

    # forms ------------------------------------------------------------------------------------------------
    def form(self, text: str) -> Form:
        """A form by id or name (`VS`, `Vital Signs`, `vital signs form`, `adverse event`)."""
        cleaned = re.sub(r"\s+(form|crf)$", "", text.strip().strip('"'), flags=re.IGNORECASE).strip().strip('"')
        wanted = _norm(cleaned)
        exact = [f for f in self.definition.forms if wanted in {_norm(f.id), _norm(f.name), _norm(_short(f.name))}]
        if len(exact) == 1:
            return exact[0]
        ending = re.compile(rf"\b{re.escape(wanted)}$")
        partial = [
            f for f in self.definition.forms if ending.search(_norm(f.name)) or ending.search(_norm(_short(f.name)))
        ]
        if len(exact) == 0 and len(partial) == 1:
            return partial[0]
        if len(exact) > 1 or len(partial) > 1:
            raise ReferenceProblem(f'form "{cleaned}" is ambiguous: {", ".join(f.id for f in exact or partial)}')
        known = [f.name for f in self.definition.forms] + [f.id for f in self.definition.forms]
        raise ReferenceProblem(f'unknown form "{cleaned}" in {self.study_id}{_closest(cleaned, known)}')

    def form_instance(self, text: str) -> FormKey:
        """`the "Week 2" vital signs`, `"Screening" "Vital Signs" form`, `adverse event record 1`, `WEEK2.VS`."""
        phrase = re.sub(r"^the\s+", "", text.strip(), flags=re.IGNORECASE)
        if _KEY.match(phrase.strip('"')):
            key = FormKey.parse(phrase.strip('"'))
            form = self.form(key.form_id)
            if key.visit is not None:
                self._collected(key.visit, form)
            return key
        record = _LOG_RECORD.match(phrase)
        quoted = _QUOTED_VISIT.match(phrase)
        if record is not None and (quoted is None or record["form"].startswith('"')):
            form = self.form(record["form"])
            if form.id not in self.definition.schedule.log_forms:
                raise ReferenceProblem(f'{form.name} is collected at visits: write the "<visit>" {form.name.lower()}')
            return FormKey(form.id, None, int(record["n"]))
        if quoted is not None:
            visit = self.visit(quoted["visit"])
            form = self.form(quoted["form"])
            self._collected(visit, form)
            return FormKey(form.id, visit)
        raise ReferenceProblem(
            f'cannot tell which form "{text}" is: write the "<visit>" <form> (the "Week 2" vital signs) '
            f"or <log form> record <n> (the adverse event record 1)"
        )

    def _collected(self, visit: VisitKey, form: Form) -> None:
        declared = self.definition.visit(visit.visit_id)
        if declared is not None and form.id not in declared.forms:
            here = ", ".join(f.name for f in self.definition.forms if f.id in declared.forms)
            raise ReferenceProblem(f"{form.name} is not collected at {declared.name} (forms there: {here})")

    def form_name(self, key: FormKey) -> str:
        form = self.definition.form(key.form_id)
        name = form.name if form is not None else key.form_id
        if key.visit is None:
            return f"{name} record {key.record}"
        return f"{self.visit_name(key.visit)} {name}"

    # items ------------------------------------------------------------------------------------------------
    def item(self, form_id: str, text: str) -> Item:
        """An item of one form by id, label, short label, initials or abbreviation."""
        form = self.definition.form(form_id)
        if form is None:
            raise ReferenceProblem(f"unknown form {form_id} in {self.study_id}")
        wanted = _norm(text)
        found = [item for item, known in self._item_names[form.id] if wanted in known]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ReferenceProblem(f'item "{text}" is ambiguous on {form.name}: {", ".join(i.id for i in found)}')
        known = [i.id for i in form.items] + [_short(i.label) for i in form.items]
        raise ReferenceProblem(f'unknown item "{text}" on {form.name} ({form.id}){_closest(text, known)}')

    def any_item(self, text: str) -> None:
        """Check, before anything runs, that some form has an item by this name (the form is known later).

        The visit date counts as an item: window queries sit on it.
        """
        wanted = _norm(text)
        if wanted in (_norm(VISIT_DATE), "visit date"):
            return
        if not any(wanted in known for items in self._item_names.values() for _item, known in items):
            known = [i.id for f in self.definition.forms for i in f.items]
            raise ReferenceProblem(f'unknown item "{text}": no form of {self.study_id} has it{_closest(text, known)}')

    def value(self, item: Item, text: str) -> str:
        """What the site would type: a choice may be given by its code or its decode (`Female` -> `F`)."""
        if item.type is ItemType.CHOICE and item.codelist is not None:
            codelist = self.definition.codelist(item.codelist)
            if codelist is not None:
                for entry in codelist.items:
                    if text == entry.code or text.lower() == entry.decode.lower():
                        return entry.code
        return text

    # checks and criteria ----------------------------------------------------------------------------------
    def check_ids(self) -> list[str]:
        """Every edit check (explicit and from ranges) and every visit window check (`WEEK2-WINDOW`)."""
        ids = [check.id for check in self.definition.all_edit_checks()]
        return ids + [f"{v.id}-WINDOW" for v in self.definition.schedule.visits if v.day is not None]

    def check(self, text: str) -> str:
        if text in self.check_ids():
            return text
        raise ReferenceProblem(f'unknown edit check "{text}" in {self.study_id}{_closest(text, self.check_ids())}')

    def check_item(self, check_id: str) -> tuple[str | None, str]:
        """The form and item a check raises its query on (window checks sit on the visit date)."""
        for check in self.definition.all_edit_checks():
            if check.id == check_id:
                return check.form, check.item
        return None, "VISIT_DATE"

    def criterion(self, text: str) -> str:
        declared = self.definition.eligibility
        ids = [c.id for c in declared.criteria] if declared is not None else []
        if text in ids:
            return text
        raise ReferenceProblem(f'unknown eligibility criterion "{text}" in {self.study_id}{_closest(text, ids)}')

    # consent ----------------------------------------------------------------------------------------------
    def consent(self, text: str) -> str:
        """A consent document by id or title: `ICF`, `Main study informed consent form`."""
        for document in self.definition.consent:
            if _norm(text) in (_norm(document.id), _norm(document.title)):
                return document.id
        known = [d.id for d in self.definition.consent]
        raise ReferenceProblem(f'unknown consent document "{text}" in {self.study_id}{_closest(text, known)}')

    # questionnaires ---------------------------------------------------------------------------------------
    def instrument(self, text: str) -> str:
        """A questionnaire by id, name or the abbreviation in its name: `PHQ9`, `PHQ-9`, `Daily symptom diary`."""
        questionnaires = self.definition.questionnaires
        instruments = questionnaires.instruments if questionnaires is not None else ()
        plain = re.sub(r"[^a-z0-9]+", "", text.lower())
        for instrument in instruments:
            bare = re.sub(r"\s*\([^)]*\)", "", instrument.name)
            known = {instrument.id, instrument.name, bare, *re.findall(r"\(([^)]+)\)", instrument.name)}
            if plain in {re.sub(r"[^a-z0-9]+", "", name.lower()) for name in known}:
                return instrument.id
        ids = [i.id for i in instruments]
        raise ReferenceProblem(f'unknown questionnaire "{text}" in {self.study_id}{_closest(text, ids)}')
