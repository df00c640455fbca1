"""Events of the reconcile context: one `reconcile` stream per discrepancy (`<study>/<discrepancy_id>`).

The names are part of the public event contract (stream, webhooks, exports). A discrepancy id is deterministic
(kind, subject, visit, test), so the same discrepancy has one stream and is raised once while it stays open; the
queries context opens a system query on `ReconciliationDiscrepancyFound` and closes it on
`ReconciliationDiscrepancyResolved`. Lab values reveal no treatment: none of these is registered blinded.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from trialstack.ledger.registry import event_type

CONTEXT = "reconcile"


class DiscrepancyKind(StrEnum):
    SAMPLE_OUT_OF_WINDOW = "sample_out_of_window"
    SAMPLE_MISSING = "sample_missing"
    SUBJECT_NOT_ELIGIBLE_FOR_SAMPLES = "subject_not_eligible_for_samples"
    LOCAL_CENTRAL_MISMATCH = "local_central_mismatch"


class Addressee(StrEnum):
    """The role a discrepancy's query is for: the site corrects its own data; results the site should never have
    sent (withdrawn or unconsented subjects) are for data management to quarantine with the laboratory."""

    STUDY_COORDINATOR = "study_coordinator"
    DATA_MANAGER = "data_manager"


class ReconcileEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DiscrepancyFields(ReconcileEvent):
    """Where the discrepancy is: `form` is the form instance (`WEEK4.LB`) and `item` the item its query sits on."""

    discrepancy_id: str
    kind: DiscrepancyKind
    subject_id: str
    site_id: str
    visit: str | None
    test: str | None
    form: str
    item: str
    detail: str
    """A sentence a site user understands, naming both values (or dates) compared."""
    addressed_to: Addressee
    sources: list[str]
    """What was compared: `lab:<source>/<result_id>`, `edc:<form instance>.<item>`, `edc:<visit> visit date`."""
    study_version: str


@event_type(CONTEXT)
class ReconciliationDiscrepancyFound(DiscrepancyFields):
    """Two sources disagree (or an expected sample is missing): a query goes to `addressed_to`."""


@event_type(CONTEXT)
class ReconciliationDiscrepancyResolved(DiscrepancyFields):
    """A later event made the check hold again (the local value corrected, the missing sample arrived); `detail`
    says what now holds, and the discrepancy's query closes itself."""


RECONCILE_EVENTS: tuple[type[DiscrepancyFields], ...] = (
    ReconciliationDiscrepancyFound,
    ReconciliationDiscrepancyResolved,
)
