"""Request bodies of the IRT API (randomization and drug supply), Pydantic v2, unknown members refused.

Files from outside (a packaging vendor's kit list, a statistician's randomization list) travel as the CSV text in
a JSON member, `csv`, beside the SHA-256 that was sent with them: one content type for every IRT write, a schema a
client and a fuzzer can read, and the checksum is computed over the UTF-8 bytes of that text (the file as sent).
Lengths stay within the read model's columns; text holds no control characters (PostgreSQL refuses NUL).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from trialstack.api.schemas import VISIT_PATTERN, Body

PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
"""One line of text: no control characters."""
NO_NUL = r"^[^\x00]*$"
SHA256_HEX = r"^[0-9a-fA-F]{64}$"
MAX_KITS_PER_REQUEST = 1000
MAX_KITS_PER_TREATMENT = 10_000
MAX_CSV_CHARACTERS = 900_000
"""Below the API's 1 MiB body limit, with room for the other members."""

KitNumber = Annotated[str, Field(min_length=1, max_length=40, pattern=PRINTABLE, description="A kit number")]
ArmId = Annotated[str, Field(min_length=1, max_length=40, pattern=PRINTABLE, description="An arm (treatment) id")]
DepotId = Annotated[str, Field(min_length=1, max_length=40, pattern=PRINTABLE, description="A depot of the study")]
SiteId = Annotated[str, Field(min_length=1, max_length=20, pattern=PRINTABLE, description="A site of the study")]
StratumCode = Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE, description="0101/LT160")]
Quantities = Annotated[
    dict[ArmId, Annotated[int, Field(ge=0, le=MAX_KITS_PER_TREATMENT)]],
    Field(min_length=1, max_length=20, description="Kits per treatment (arm id → number of kits)"),
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=NO_NUL)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=NO_NUL)]
Csv = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_CSV_CHARACTERS,
        pattern=NO_NUL,
        description="The file's text, exactly as received (UTF-8; comma, semicolon or tab separated, header row)",
    ),
]
FileName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=PRINTABLE, description="The file's name, for error messages")
]
Checksum = Annotated[str, Field(pattern=SHA256_HEX, description="SHA-256 (hex) of the file's UTF-8 bytes")]
UNBLINDING_REASON_MIN = 10
Condition = Literal["unused", "partly used", "empty", "lost", "damaged"]
"""The conditions a returned kit is in (irt.supply.CONDITIONS)."""


class RandomizationRequest(Body):
    """Randomize the subject. `stratum`, when given, is the stratum the confirmation dialog showed (GET
    .../randomization): if the subject's data now put them in another one, nothing is written (409)."""

    stratum: StratumCode | None = None


class UnblindingRequest(Body):
    """Emergency unblinding: the medical reason and the investigator's password (re-authentication, as for an
    electronic signature). The arm is shown to this caller, in this answer only."""

    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=UNBLINDING_REASON_MIN, max_length=2000, pattern=NO_NUL),
    ] = Field(description="The medical need (at least 10 characters): the sponsor reviews every unblinding")
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    totp: Annotated[str | None, Field(max_length=10, description="The one-time code, when the account has one")] = None


class DispensationRequest(Body):
    """Dispense at a dispensing visit: the kits the system assigns, or the kit the site scanned (`kit`), which is
    checked the same way (available here, not quarantined, not expiring within the do-not-dispense days)."""

    visit: str = Field(pattern=VISIT_PATTERN, max_length=40, description="A dispensing visit (DAY1)")
    kit: KitNumber | None = None


class KitReturnRequest(Body):
    """Drug accountability: what came back of a dispensed kit."""

    units_returned: int | None = Field(default=None, ge=0, le=100_000, description="Units counted (none: lost)")
    condition: Condition


class KitListImport(Body):
    """A kit list from the packaging vendor (columns kit, treatment, lot, expiry) received into a depot; with the
    vendor's `checksum`, a file altered on the way is refused."""

    depot: DepotId
    csv: Csv
    checksum: Checksum | None = None
    file_name: FileName = "kit list"


class KitGeneration(Body):
    """Generate a kit list: `first_number`… handed out to the treatments in random order."""

    depot: DepotId
    quantities: Quantities
    lot: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=PRINTABLE)]
    expiry: date = Field(description="ISO date (YYYY-MM-DD)")
    first_number: int = Field(ge=1, le=10**12)


class ShipmentRequest(Body):
    """Ship kits from a depot (the site's own country's first, unless `depot`) to a site, first expiry first."""

    site_id: SiteId
    quantities: Quantities
    depot: DepotId | None = None


class DispatchRequest(Body):
    tracking: Annotated[str | None, Field(max_length=80, pattern=PRINTABLE)] = None


class ReceiptRequest(Body):
    """The site confirms the kits that arrived; a temperature excursion sends them to quarantine."""

    kits: list[KitNumber] = Field(min_length=1, max_length=MAX_KITS_PER_REQUEST)
    temperature_excursion: bool
    note: Note | None = None


class QuarantineAssessment(Body):
    """Release quarantined kits as usable (`release: true`) or reject them, saying on what evidence."""

    kits: list[KitNumber] = Field(min_length=1, max_length=MAX_KITS_PER_REQUEST)
    release: bool
    reason: Reason


class RandomizationListRequest(Body):
    """Generate the randomization list now from a fresh secret seed (the study goes live): every stratum of the
    protocol, or, to extend a list already generated, the `strata` named."""

    strata: list[StratumCode] | None = Field(default=None, min_length=1, max_length=1000)


class RandomizationListImport(Body):
    """A pre-generated list from the statistician (columns stratum, arm, optionally position) and the SHA-256
    they sent separately."""

    csv: Csv
    checksum: Checksum
    file_name: FileName = "randomization list"
