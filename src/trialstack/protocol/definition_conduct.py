"""How the trial is conducted: randomization and blinding (consent documents: `definition_consent`, drug supply:
`definition_supply`)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import Field, PositiveInt, model_validator

from trialstack.protocol.definition_base import Expression, Identifier, Number, ProtocolModel, Text

SITE_FACTOR = "SITE"
"""The name minimization weights give the site when strata are `by_site`."""


class RandomizationScheme(StrEnum):
    STRATIFIED_BLOCK = "stratified_block"
    MINIMIZATION = "minimization"


class Imbalance(StrEnum):
    """How minimization measures the imbalance of one factor level across arms (Pocock & Simon 1975)."""

    RANGE = "range"
    VARIANCE = "variance"


class StratumLevel(ProtocolModel):
    """One level of a stratification factor; the subject falls in the level whose `when` is true."""

    code: Identifier
    label: Text
    when: Expression


class StratificationFactor(ProtocolModel):
    id: Identifier
    name: Text
    levels: tuple[StratumLevel, ...] = Field(min_length=2)


class Strata(ProtocolModel):
    """Randomization strata: the site (`by_site`) crossed with every factor's levels."""

    by_site: bool = False
    factors: tuple[StratificationFactor, ...] = ()


class Minimization(ProtocolModel):
    """Pocock–Simon minimization over the strata's factors (and the site, when `by_site`).

    Each arm's total imbalance is the weighted sum, over the subject's factor levels, of the imbalance the level
    would have if the subject went to that arm (counts divided by the arm's ratio, so 2:1 is balance). The arm
    with the least total is assigned with `probability`, another arm otherwise; ties are broken at random.

    With two arms, p = 0.8 and 1,000 subjects over a site and two prognostic factors (weights 1 to 2), no factor
    level's imbalance is expected to reach 14 with `variance` (simulated: at most 13 in 200 trials), while `range`,
    which sees only the sign of each level's imbalance, allows up to about 30 (simulated: at most 22); simple
    randomization of the same subjects reaches 18 to 89 (tests/unit/irt/test_statistics.py).
    """

    imbalance: Imbalance = Imbalance.RANGE
    probability: Number = Decimal("0.8")
    weights: dict[Identifier, Number] = {}
    """Weight per factor id (`SITE` for the site); a factor not named weighs 1."""

    @model_validator(mode="after")
    def _bounds(self) -> Minimization:
        if not Decimal(0) < Decimal(self.probability) <= 1:
            raise ValueError(f"probability {self.probability} is not in (0, 1]")
        for factor, weight in self.weights.items():
            if Decimal(weight) <= 0:
                raise ValueError(f"weight of {factor} is {weight}: weights are positive")
        return self

    def weight(self, factor: str) -> Decimal:
        return Decimal(self.weights.get(factor, 1))


class Randomization(ProtocolModel):
    """Allocation to arms at `visit`, in the arm `ratio`.

    `stratified_block`: a list of permuted blocks per stratum (the site crossed with the factors' levels when
    `by_site`, else the factors' levels only), each block's size drawn at random from `block_sizes`, generated
    from a secret seed when the first subject is randomized (or imported); every block size must be a multiple
    of the sum of the ratio, or the ratio would drift. `list_size` is the number of entries per stratum (the list
    is extended by the same amount when a stratum uses it up). `minimization`: see `Minimization`.
    """

    scheme: RandomizationScheme = RandomizationScheme.STRATIFIED_BLOCK
    visit: Identifier
    ratio: dict[Identifier, PositiveInt] = Field(min_length=1)
    block_sizes: tuple[PositiveInt, ...] = ()
    list_size: PositiveInt = 100
    strata: Strata = Strata()
    minimization: Minimization | None = None

    @model_validator(mode="after")
    def _scheme_parts(self) -> Randomization:
        if self.scheme is RandomizationScheme.STRATIFIED_BLOCK and not self.block_sizes:
            raise ValueError("stratified_block randomization needs block_sizes")
        if self.scheme is RandomizationScheme.MINIMIZATION and self.minimization is None:
            return self.model_copy(update={"minimization": Minimization()})
        return self

    def factor_ids(self) -> list[str]:
        """The factors minimization balances: the site first (when `by_site`), then each stratification factor."""
        return ([SITE_FACTOR] if self.strata.by_site else []) + [factor.id for factor in self.strata.factors]


class StudyRole(StrEnum):
    """The roles of DESIGN.md §5, which blinding refers to."""

    INVESTIGATOR = "investigator"
    STUDY_COORDINATOR = "study_coordinator"
    MONITOR = "monitor"
    DATA_MANAGER = "data_manager"
    MEDICAL_MONITOR = "medical_monitor"
    SAFETY = "safety"
    SPONSOR_VIEWER = "sponsor_viewer"
    UNBLINDED_PHARMACIST = "unblinded_pharmacist"
    STUDY_BUILDER = "study_builder"
    ADMIN = "admin"
    PARTICIPANT = "participant"


class BlindingLevel(StrEnum):
    OPEN_LABEL = "open_label"
    SINGLE_BLIND = "single_blind"
    DOUBLE_BLIND = "double_blind"


class Blinding(ProtocolModel):
    """Who may see treatment allocations; in a blinded study only `unblinded_roles` can."""

    level: BlindingLevel
    unblinded_roles: tuple[StudyRole, ...] = ()

    def is_blinded(self, role: StudyRole) -> bool:
        return self.level is not BlindingLevel.OPEN_LABEL and role not in self.unblinded_roles
