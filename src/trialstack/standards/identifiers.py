"""Turn foreign identifiers (ODM OIDs, USDM names) into TrialStack identifiers, deterministically.

ODM OIDs may hold dots, spaces and lower case (`SE.VISIT1`, `trace-xml-safety01`); our identifiers are
rule-language names (`^[A-Z][A-Z0-9_]*$`, 40 characters). The mapping is a pure function of the input
order, so importing the same file twice gives the same ids, and it is idempotent on ids that are already
valid, so a definition exported and imported again keeps every id.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

IDENTIFIER = re.compile(r"^[A-Z][A-Z0-9_]*$")
STUDY_ID = re.compile(r"^[A-Z0-9][A-Z0-9_-]*$")
RULE_ID = re.compile(r"^[A-Z][A-Z0-9_.-]*$")
MAX_IDENTIFIER = 40
MAX_RULE_ID = 64


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8].upper()


def _shorten(candidate: str, original: str, limit: int) -> str:
    """Cut to `limit` characters, keeping uniqueness with a digest of the original text."""
    if len(candidate) <= limit:
        return candidate
    return f"{candidate[: limit - 9].rstrip('_-.')}_{_digest(original)}"


def to_identifier(text: str, *, fallback: str = "X", limit: int = MAX_IDENTIFIER) -> str:
    """A rule-language identifier for `text`; valid identifiers come back unchanged."""
    if IDENTIFIER.match(text) and len(text) <= limit:
        return text
    candidate = re.sub(r"[^A-Za-z0-9]+", "_", _ascii(text)).strip("_").upper() or fallback
    if not candidate[0].isalpha():
        candidate = f"{fallback}_{candidate}"
    return _shorten(candidate, text, limit)


def to_study_id(text: str) -> str:
    """A study id (upper case, digits, `_` and `-`) for `text`; valid ids come back unchanged."""
    if STUDY_ID.match(text) and len(text) <= MAX_IDENTIFIER:
        return text
    candidate = re.sub(r"[^A-Za-z0-9-]+", "_", _ascii(text)).strip("_-").upper() or "STUDY"
    return _shorten(candidate, text, MAX_IDENTIFIER)


SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
MAX_SITE_ID = 20


def to_site_id(text: str) -> str:
    """A site id (letters, digits, `_`, `-`; 20 characters, case kept); valid ids come back unchanged."""
    if SITE_ID.match(text) and len(text) <= MAX_SITE_ID:
        return text
    candidate = re.sub(r"[^A-Za-z0-9-]+", "_", _ascii(text)).strip("_-") or "SITE"
    return _shorten(candidate, text, MAX_SITE_ID)


def to_rule_id(*parts: str) -> str:
    """A check or criterion id joined from identifier parts with `-` (at most 64 characters)."""
    text = "-".join(parts)
    if RULE_ID.match(text) and len(text) <= MAX_RULE_ID:
        return text
    candidate = re.sub(r"[^A-Za-z0-9_.-]+", "_", _ascii(text)).strip("_.-").upper() or "RULE"
    if not candidate[0].isalpha():
        candidate = f"R_{candidate}"
    return _shorten(candidate, text, MAX_RULE_ID)


class IdentifierMap:
    """Foreign key -> identifier for one kind of entity (visits, forms, items, codelists).

    `strip_prefixes` drops a conventional kind prefix before the first dot (`SE.VISIT1` -> `VISIT1`,
    `IG.MEDHIST` -> `MEDHIST`); clashes get `_2`, `_3`, ... in the order keys are added; `reserved`
    names (the rule language's own) are never handed out.
    """

    def __init__(self, strip_prefixes: Iterable[str] = (), reserved: Iterable[str] = (), fallback: str = "X") -> None:
        self._prefixes = frozenset(prefix.upper() for prefix in strip_prefixes)
        self._taken: set[str] = set(reserved)
        self._ids: dict[str, str] = {}
        self._fallback = fallback

    def add(self, key: str, preferred: str | None = None) -> str:
        """The identifier of `key`, allotting one the first time (`preferred` wins when valid and free)."""
        if key in self._ids:
            return self._ids[key]
        if preferred is not None and IDENTIFIER.match(preferred) and len(preferred) <= MAX_IDENTIFIER:
            base = preferred
        else:
            base = to_identifier(self._strip(key), fallback=self._fallback)
        candidate, n = base, 1
        while candidate in self._taken:
            n += 1
            suffix = f"_{n}"
            candidate = base[: MAX_IDENTIFIER - len(suffix)] + suffix
        self._taken.add(candidate)
        self._ids[key] = candidate
        return candidate

    def get(self, key: str) -> str | None:
        return self._ids.get(key)

    def __getitem__(self, key: str) -> str:
        return self._ids[key]

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def _strip(self, key: str) -> str:
        head, dot, rest = key.partition(".")
        return rest if dot and rest and head.upper() in self._prefixes else key
