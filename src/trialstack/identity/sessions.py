"""Signed session cookies and their CSRF tokens (itsdangerous; no web framework here).

The cookie carries only the session id and username, signed and time-stamped: it cannot be forged without the
key, it expires after SESSION_MAX_AGE, and the session must still be open in the read model (logout, disabling
the user or changing the password ends it). The CSRF token is an HMAC of the session id under the same key: a
page can read and echo it, another origin cannot compute it (signed double-submit).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_MAX_AGE = timedelta(hours=8)
_SALT = "trialstack.session.v1"


@dataclass(frozen=True)
class SessionClaim:
    session_id: str
    username: str


class SessionSigner:
    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")
        self._serializer = URLSafeTimedSerializer(key, salt=_SALT)

    def dumps(self, claim: SessionClaim) -> str:
        return self._serializer.dumps({"sid": claim.session_id, "u": claim.username})

    def loads(self, cookie: str) -> SessionClaim | None:
        """The claim of a cookie that is authentic and younger than SESSION_MAX_AGE, else None."""
        try:
            data = self._serializer.loads(cookie, max_age=int(SESSION_MAX_AGE.total_seconds()))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str) or not isinstance(data.get("u"), str):
            return None
        return SessionClaim(data["sid"], data["u"])

    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self._key, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, session_id: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf_token(session_id), presented)
