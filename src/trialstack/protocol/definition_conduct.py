"""How the trial is conducted: randomization and blinding (consent documents: `definition_consent`)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, PositiveInt

from trialstack.protocol.definition_base import Expression, Identifier, ProtocolModel, Text


class RandomizationScheme(StrEnum):
    STRATIFIED_BLOCK = "stratified_block"


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


class Randomization(ProtocolModel):
    """Allocation to arms at `visit`: permuted blocks within each stratum, in the arm `ratio`.

    Every block size must be a multiple of the sum of the ratio, or the ratio would drift.
    """

    scheme: RandomizationScheme = RandomizationScheme.STRATIFIED_BLOCK
    visit: Identifier
    ratio: dict[Identifier, PositiveInt] = Field(min_length=1)
    block_sizes: tuple[PositiveInt, ...] = Field(min_length=1)
    strata: Strata = Strata()


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
