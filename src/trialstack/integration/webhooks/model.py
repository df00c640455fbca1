"""A webhook subscription, folded from its `webhook` stream, and the decisions on it. Pure.

What a decision needs from outside is passed in: the subscription id and the vault reference of its secret (the
handler makes them), the allowed hosts (settings), who acts. Whether an event type exists and whether it reveals
treatment is the event registry's word (`ledger.registry`), the same one the API feed and the NATS relay use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from trialstack.errors import DomainRuleViolation, InvalidInput, NotFound
from trialstack.integration.webhooks import commands as cmd
from trialstack.integration.webhooks import events as ev
from trialstack.ledger.registry import context_of, is_blinded

MAX_URL_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 200
MAX_EVENT_TYPES = 200
SCHEMES = ("http", "https")


class WebhookUrlRefused(InvalidInput):
    """The URL is not one webhooks may be sent to (scheme, host not allowed, credentials in it)."""

    code = "webhook-url-refused"


class WebhookRefused(DomainRuleViolation):
    code = "webhook-refused"


@dataclass(frozen=True)
class Subscription:
    study_id: str
    subscription_id: str
    url: str | None = None
    """None until the subscription exists."""
    event_types: tuple[str, ...] = ()
    blinded: bool = True
    secret_ref: str = ""
    disabled: bool = False
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.url is not None


def evolve(event: ev.WebhookEvent, state: Subscription) -> Subscription:
    match event:
        case ev.WebhookSubscribed():
            return replace(
                state,
                url=event.url,
                event_types=tuple(event.event_types),
                blinded=event.blinded,
                secret_ref=event.secret_ref,
            )
        case ev.WebhookDisabled():
            return replace(state, disabled=True)
    return state


# --- what may be subscribed ------------------------------------------------------------------------------------


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """`host` (a URL's host name, any case) is in the list: an exact name or address, or `*.example.org` for any
    name under example.org (not example.org itself)."""
    name = host.lower().rstrip(".")
    for entry in allowed_hosts:
        allowed = entry.strip().lower().rstrip(".")
        if allowed.startswith("*.") and name.endswith(allowed[1:]) and len(name) > len(allowed) - 1:
            return True
        if allowed and name == allowed:
            return True
    return False


def check_url(url: str, allowed_hosts: Sequence[str]) -> str:
    """The URL as it will be called, or WebhookUrlRefused naming it and saying why."""
    text = url.strip()

    def refuse(why: str) -> WebhookUrlRefused:
        return WebhookUrlRefused(f"webhook URL {text!r} is refused: {why}", field="url")

    if not text:
        raise WebhookUrlRefused("a webhook needs a URL (http:// or https://)", field="url")
    if len(text) > MAX_URL_LENGTH:
        raise refuse(f"it is longer than {MAX_URL_LENGTH} characters")
    if any(character.isspace() or ord(character) < 0x20 or ord(character) == 0x7F for character in text):
        raise refuse("it contains spaces or control characters")
    try:
        parts = urlsplit(text)
    except ValueError as error:  # e.g. an unclosed [IPv6 address
        raise refuse(f"it does not parse ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        given = f"{scheme}:" if scheme else "a URL without one"
        raise refuse(f"only http and https URLs receive webhooks, not {given}")
    if "@" in parts.netloc:
        raise refuse("it holds a user name or password, which would be kept in the audit trail (the signature "
                     "authenticates the sender; put no credential in the URL)")  # fmt: skip
    try:
        host, _port = parts.hostname, parts.port
    except ValueError as error:
        raise refuse(f"its host or port does not parse ({error})") from None
    if not host:
        raise refuse("it names no host")
    if parts.fragment:
        raise refuse("a fragment (#...) is never sent to a server")
    if not host_allowed(host, allowed_hosts):
        listed = ", ".join(allowed_hosts) or "none"
        raise refuse(
            f"host {host} is not in the allowed hosts ({listed}); an operator adds it to "
            "TRIALSTACK_WEBHOOK_ALLOWED_HOSTS"
        )
    return text


def check_event_types(names: Iterable[str], blinded: bool) -> tuple[str, ...]:
    """The filter as recorded (sorted, without repeats): `*`, or event types the registry knows."""
    cleaned = sorted({name.strip() for name in names})
    if not cleaned or cleaned == [""]:
        raise InvalidInput("give at least one event type, or * for every event", field="event_types")
    if len(cleaned) > MAX_EVENT_TYPES:
        raise InvalidInput(f"at most {MAX_EVENT_TYPES} event types per subscription", field="event_types")
    if ev.ALL_EVENT_TYPES in cleaned:
        if len(cleaned) > 1:
            raise InvalidInput("* already means every event type: give * alone or a list", field="event_types")
        return (ev.ALL_EVENT_TYPES,)
    for name in cleaned:
        context = context_of(name)
        if context == "unknown":
            raise InvalidInput(f"unknown event type {name!r}", field="event_types")
        if context == ev.CONTEXT:
            raise InvalidInput(f"{name} is not delivered to webhooks (it would show other subscribers' URLs)",
                               field="event_types")  # fmt: skip
        if blinded and is_blinded(name):
            raise WebhookRefused(
                f"{name} reveals treatment: a blinded subscription never receives it (only a user holding "
                "allocation.read at every site of the study creates an unblinded subscription)",
                field="event_types",
            )
    return tuple(cleaned)


def receives(event_types: Sequence[str], blinded: bool, event_type: str) -> bool:
    """Whether a subscription with this filter and blinding is sent an event of `event_type`.

    Never the integration context's own events (they name other subscribers' URLs); never, when blinded, an event
    that reveals treatment, whatever the filter says (unknown types count as revealing).
    """
    if context_of(event_type) == ev.CONTEXT:
        return False
    if blinded and is_blinded(event_type):
        return False
    return ev.ALL_EVENT_TYPES in event_types or event_type in event_types


def _plain_text(text: str, field: str) -> str:
    """Text as recorded: stripped, and without control characters other than tabs and line breaks (PostgreSQL
    refuses NUL in text columns)."""
    if any((ord(character) < 0x20 and character not in "\t\n\r") or ord(character) == 0x7F for character in text):
        raise InvalidInput(f"the {field} holds a control character", field=field)
    return text.strip()


# --- decisions -------------------------------------------------------------------------------------------------


def decide_subscribe(
    state: Subscription,
    command: cmd.SubscribeWebhook,
    *,
    secret_ref: str,
    username: str,
    allowed_hosts: Sequence[str],
) -> list[ev.WebhookEvent]:
    if state.exists:
        raise WebhookRefused(f"webhook {state.subscription_id} already exists in study {state.study_id}",
                             field="subscription_id")  # fmt: skip
    url = check_url(command.url, allowed_hosts)
    blinded = not command.unblinded
    event_types = check_event_types(command.event_types, blinded)
    description = _plain_text(command.description, "description")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"the description is longer than {MAX_DESCRIPTION_LENGTH} characters", field="description")
    return [
        ev.WebhookSubscribed(
            subscription_id=state.subscription_id,
            url=url,
            event_types=list(event_types),
            blinded=blinded,
            description=description,
            secret_ref=secret_ref,
            created_by=username,
        )
    ]


def decide_disable(state: Subscription, command: cmd.DisableWebhook, username: str) -> list[ev.WebhookEvent]:
    """WebhookDisabled; nothing when it is disabled already (disabling twice changes nothing)."""
    if not state.exists:
        raise NotFound(f"webhook {command.subscription_id} not found in study {state.study_id}",
                       field="subscription_id")  # fmt: skip
    reason = _plain_text(command.reason, "reason")
    if not reason:
        raise InvalidInput("disabling a webhook needs a reason (it is recorded in the audit trail)", field="reason")
    if state.disabled:
        return []
    return [ev.WebhookDisabled(subscription_id=state.subscription_id, reason=reason, disabled_by=username)]
