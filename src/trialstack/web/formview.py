"""One form instance as the entry page shows it: capture's `form_detail` items, each with what to put in its
control (saved, re-posted or restored values), its error, the check results of the last save, its queries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trialstack.capture.checks import StudyRules
from trialstack.capture.model import Casebook
from trialstack.capture.refs import FormKey
from trialstack.capture.views import form_detail
from trialstack.web.forms import general_error, text

RADIO_LIMIT = 6
BOOLEAN_CHOICES = [{"code": "true", "decode": "Yes"}, {"code": "false", "decode": "No"}]
RESULT_WORDS = {"pass": "passed", "fail": "failed", "unknown": "not evaluated (data missing)"}

Fields = Mapping[str, list[str]]


def control_of(item: Mapping[str, Any]) -> str:
    """radio / select / date / time / number / text: how an item is entered."""
    kind = str(item["type"])
    if kind == "boolean" or (item["choices"] is not None and len(item["choices"]) <= RADIO_LIMIT):
        return "radio"
    if item["choices"] is not None:
        return "select"
    if kind in ("date", "time"):
        return kind
    if kind in ("integer", "decimal"):
        return "number"
    return "text"


def _messages(rules: StudyRules, form_id: str) -> dict[str, str]:
    return {compiled.check.id: compiled.check.message for compiled in rules.checks.get(form_id, ())}


def form_view(
    rules: StudyRules,
    casebook: Casebook,
    key: FormKey,
    *,
    posted: Fields | None = None,
    errors: Mapping[str, str] | None = None,
    outcome: Mapping[str, Any] | None = None,
    queries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The form and its items; `posted` (a failed save, or restored after sign-in) wins over saved values."""
    detail = form_detail(rules, casebook, key)
    errors = errors or {}
    messages = _messages(rules, key.form_id)
    results: dict[str, list[dict[str, Any]]] = {}
    elsewhere: list[dict[str, Any]] = []
    for check in (outcome or {}).get("checks", []):
        shown = {**check, "words": RESULT_WORDS[check["result"]]}
        if check["form"] == str(key):
            results.setdefault(check["item"], []).append(shown)
        else:
            elsewhere.append(shown)
    by_item: dict[str, list[dict[str, Any]]] = {}
    for query in queries or []:
        if query["form"] == str(key) and query["status"] in ("open", "answered"):
            by_item.setdefault(query["item"], []).append(query)
    items = []
    for item in detail["items"]:
        item_id = item["item"]
        saved = item["value"] if item["value"] is not None else ""
        not_done = item["not_done_reason"] or ""
        value, reason = saved, ""
        if posted is not None:
            value = text(posted, f"item.{item_id}") or ""
            not_done = text(posted, f"notdone.{item_id}") or ""
            reason = text(posted, f"rfc.{item_id}") or ""
        error = errors.get(f"items.{item_id}")
        items.append(
            {
                **item,
                "control": control_of(item),
                "choices": BOOLEAN_CHOICES if item["type"] == "boolean" else item["choices"],
                "saved": saved,
                "shown_value": value,
                "not_done": not_done,
                "rfc": reason,
                "error": error,
                "needs_reason": bool(error and "reason for change" in error),
                "results": results.get(item_id, []),
                "failing_now": [{"check_id": c, "message": messages.get(c, c)} for c in item["failing_checks"]],
                "queries": by_item.get(item_id, []),
            }
        )
    return {
        **detail,
        "items": items,
        "has_saved_data": any(i["value"] is not None or i["not_done_reason"] for i in detail["items"]),
        "other_results": elsewhere,
        "opened": (outcome or {}).get("queries_opened", []),
        "closed": (outcome or {}).get("queries_closed", []),
        "general_error": general_error(errors, ["reason"]),
        "reason": text(posted, "reason") if posted is not None else "",
    }
