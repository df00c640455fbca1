"""Webhook settings from the environment: the hosts webhooks may be sent to, and the retry policy.

- `TRIALSTACK_WEBHOOK_ALLOWED_HOSTS`: comma-separated host names or addresses (`*.example.org` for every name under
  example.org); default `127.0.0.1,localhost`. Checked when a subscription is made and again before each delivery.
- `TRIALSTACK_WEBHOOK_BASE_SECONDS` (10), `TRIALSTACK_WEBHOOK_MAX_DELAY_SECONDS` (3600),
  `TRIALSTACK_WEBHOOK_MAX_ATTEMPTS` (12), `TRIALSTACK_WEBHOOK_TIMEOUT_SECONDS` (10): the retry policy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from random import Random

from trialstack.errors import InvalidInput

ALLOWED_HOSTS_ENV = "TRIALSTACK_WEBHOOK_ALLOWED_HOSTS"
DEFAULT_ALLOWED_HOSTS = ("127.0.0.1", "localhost")
BASE_ENV = "TRIALSTACK_WEBHOOK_BASE_SECONDS"
CAP_ENV = "TRIALSTACK_WEBHOOK_MAX_DELAY_SECONDS"
ATTEMPTS_ENV = "TRIALSTACK_WEBHOOK_MAX_ATTEMPTS"
TIMEOUT_ENV = "TRIALSTACK_WEBHOOK_TIMEOUT_SECONDS"


def allowed_hosts(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The allowed hosts from TRIALSTACK_WEBHOOK_ALLOWED_HOSTS (lower-case, blanks dropped), or the default."""
    text = (os.environ if environ is None else environ).get(ALLOWED_HOSTS_ENV, "")
    hosts = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    return hosts or DEFAULT_ALLOWED_HOSTS


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: after the n-th failed attempt the next waits a random time between half
    and all of `min(cap, base × 2^(n-1))` ("equal jitter": receivers recovering from an outage are not hit by
    every deliverer at once, and the wait still grows). After `max_attempts` failures the event is dead-lettered.
    """

    base_seconds: float = 10.0
    cap_seconds: float = 3600.0
    max_attempts: int = 12
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.base_seconds > 0 or not self.cap_seconds >= self.base_seconds:
            raise InvalidInput(
                f"the webhook backoff needs 0 < base ({self.base_seconds} s) <= cap ({self.cap_seconds} s)",
                field=BASE_ENV,
            )
        if not 1 <= self.max_attempts <= 100:
            raise InvalidInput(f"webhook max attempts must be 1 to 100, not {self.max_attempts}", field=ATTEMPTS_ENV)
        if not 0 < self.timeout_seconds <= 300:
            raise InvalidInput(
                f"the webhook timeout must be more than 0 and at most 300 seconds, not {self.timeout_seconds}",
                field=TIMEOUT_ENV,
            )

    def delay(self, failures: int, rng: Random) -> float:
        """Seconds to wait after `failures` failed attempts in a row (1 for the first)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** min(max(failures, 1) - 1, 60))
        return rng.uniform(ceiling / 2, ceiling)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        base_seconds: float | None = None,
        cap_seconds: float | None = None,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
    ) -> RetryPolicy:
        """The policy from the environment; the arguments (command-line options) win when given."""
        source = os.environ if environ is None else environ
        default = cls()

        def number(given: float | None, variable: str, fallback: float) -> float:
            if given is not None:
                return given
            text = source.get(variable, "").strip()
            if not text:
                return fallback
            try:
                return float(text)
            except ValueError:
                raise InvalidInput(f"{variable} must be a number, not {text!r}", field=variable) from None

        attempts = number(max_attempts, ATTEMPTS_ENV, default.max_attempts)
        if attempts != int(attempts):
            raise InvalidInput(f"{ATTEMPTS_ENV} must be a whole number, not {attempts:g}", field=ATTEMPTS_ENV)
        return cls(
            base_seconds=number(base_seconds, BASE_ENV, default.base_seconds),
            cap_seconds=number(cap_seconds, CAP_ENV, default.cap_seconds),
            max_attempts=int(attempts),
            timeout_seconds=number(timeout_seconds, TIMEOUT_ENV, default.timeout_seconds),
        )
