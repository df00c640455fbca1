"""Shared setup of the IRT API tests: the people of a blinded trial with their tokens, subjects screened or
enrolled with Day 1 vital signs (tests/enrolling.py), and a site's first stock shipped and received through the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.enrolling import enrolled_subject, screened_subject
from tests.integration.identity.support import SITE_A, SITE_B, STUDY, add_user, bearer, client_class, token_for
from trialstack.api.app import create_app
from trialstack.bootstrap import Platform
from trialstack.identity.policy import Role
from trialstack.ledger import store

TestClient = client_class()
BASE = f"/api/v1/studies/{STUDY}"
PROBLEM = "application/problem+json"
ARMS = ("ZEL", "PBO")
ARM_NAMES = ("Zelvoprin", "placebo")
Headers = dict[str, str]
PEOPLE: dict[str, tuple[Role, frozenset[str]]] = {
    "coordinator": (Role.STUDY_COORDINATOR, frozenset({SITE_A})),
    "coordinator_b": (Role.STUDY_COORDINATOR, frozenset({SITE_B})),
    "investigator": (Role.INVESTIGATOR, frozenset({SITE_A})),
    "monitor": (Role.MONITOR, frozenset({SITE_A, SITE_B})),
    "pharmacist": (Role.UNBLINDED_PHARMACIST, frozenset({SITE_A, SITE_B})),
}
BLINDED = ("coordinator", "investigator", "monitor")


@dataclass
class Trial:
    platform: Platform
    client: Any
    who: dict[str, Headers]

    def post(self, path: str, body: Any = None, *, as_: str, **headers: str) -> Any:
        return self.client.post(f"{BASE}{path}", json=body, headers={**self.who[as_], **headers})

    def get(self, path: str, *, as_: str, **params: Any) -> Any:
        return self.client.get(f"{BASE}{path}", params=params, headers=self.who[as_])

    def ledger_size(self) -> int:
        """The study's ledger rows: a refusal leaves it unchanged."""
        with self.platform.engine.connect() as connection:
            return store.count_events(connection, STUDY)


def trial(platform: Platform) -> Trial:
    headers = {}
    for username, (role, sites) in PEOPLE.items():
        add_user(platform, username, role, sites)
        headers[username] = bearer(token_for(platform, username))
    return Trial(platform, TestClient(create_app(platform)), headers)


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def screened(t: Trial, day: str = "2026-01-05", site: str = SITE_A) -> str:
    """Screened, consented on paper, eligible screening data, Day 1 dated: not enrolled (tests/enrolling.py)."""
    return screened_subject(t.platform, site, day)


def enrolled(t: Trial, day: str = "2026-01-05", sbp: int | None = 150, site: str = SITE_A) -> str:
    """Enrolled on `day` with Day 1 vital signs (baseline systolic `sbp`; None: not recorded), as a site does it
    through the capture handlers (tests/enrolling.py); ready to randomize."""
    return enrolled_subject(t.platform, site, day, None if sbp is None else str(sbp))


def stock_site(t: Trial, site: str = SITE_A, per_arm: int = 4, first_number: int = 5000) -> dict[str, Any]:
    """The supply manager's kit list at the depot (per_arm + 10 of each treatment) and a shipment of `per_arm` of
    each to the site, dispatched and received without excursion; the shipment's answer."""
    generated = {"depot": "DEPOT_US", "quantities": dict.fromkeys(ARMS, per_arm + 10), "lot": "LOT-A01",
                 "expiry": "2027-06-30", "first_number": first_number}  # fmt: skip
    _ok(t.post("/irt/kits/generate", generated, as_="pharmacist"), 201)
    shipment = _ok(
        t.post("/irt/shipments", {"site_id": site, "quantities": dict.fromkeys(ARMS, per_arm)}, as_="pharmacist"), 201
    )
    _ok(t.post(f"/irt/shipments/{shipment['shipment_id']}/dispatch", {"tracking": "1Z999"}, as_="pharmacist"))
    receiver = "coordinator" if site == SITE_A else "coordinator_b"
    receipt = {"kits": shipment["kits"], "temperature_excursion": False}
    _ok(t.post(f"/irt/shipments/{shipment['shipment_id']}/receipt", receipt, as_=receiver), 201)
    return dict(shipment)


def reveals_treatment(text: str) -> list[str]:
    """The arm ids or names a JSON answer holds (as JSON strings, or inside one)."""
    found = [arm for arm in ARMS if f'"{arm}"' in text or f"{arm}/" in text or f"/{arm}" in text]
    return found + [name for name in ARM_NAMES if name.lower() in text.lower()]
