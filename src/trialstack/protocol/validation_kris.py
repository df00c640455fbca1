"""Does the `kris` section hold together? Plans for declared sites, one threshold per KRI, the AE form and item."""

from __future__ import annotations

from collections.abc import Iterator

from trialstack.protocol.definition import StudyDefinition
from trialstack.protocol.definition_kris import FUNNEL_KRIS, KriId
from trialstack.protocol.problems import Finding


def check_kris(definition: StudyDefinition) -> Iterator[Finding]:
    """Every site planned is declared (once), every KRI has at most one threshold that it can take, and the
    adverse-event form and its seriousness item exist."""
    kris = definition.kris
    if kris is None:
        return
    sites = {site.id for site in definition.sites}
    planned: set[str] = set()
    for n, plan in enumerate(kris.enrolment_plan):
        if plan.site not in sites:
            known = ", ".join(sorted(sites)) or "none declared"
            yield Finding(f"/kris/enrolment_plan/{n}/site", f"unknown site '{plan.site}' (known: {known})")
        elif plan.site in planned:
            yield Finding(f"/kris/enrolment_plan/{n}/site", f"site {plan.site} is planned twice: keep one line")
        planned.add(plan.site)
    judged: set[KriId] = set()
    for n, threshold in enumerate(kris.thresholds):
        at = f"/kris/thresholds/{n}/kri"
        if threshold.kri in judged:
            yield Finding(at, f"{threshold.kri.value} has two thresholds: keep one")
        judged.add(threshold.kri)
        if threshold.kri in FUNNEL_KRIS:
            yield Finding(
                at,
                f"{threshold.kri.value} is judged by its funnel plot (a site against the study's rate for its "
                "exposure), not by a threshold: remove this entry",
            )
        if threshold.kri is KriId.ENROLMENT_VS_PLAN and not kris.enrolment_plan:
            yield Finding(at, "ENROLMENT_VS_PLAN is measured against enrolment_plan: declare the plan per site")
    source = kris.adverse_events
    form = definition.form(source.form)
    if form is None:
        known = ", ".join(definition.schedule.log_forms) or "none declared"
        yield Finding("/kris/adverse_events/form", f"unknown form '{source.form}' (log forms: {known})")
    elif source.form not in definition.schedule.log_forms:
        yield Finding("/kris/adverse_events/form", f"{source.form} is not a log form: list it in schedule.log_forms")
    elif form.item(source.serious_item) is None:
        yield Finding("/kris/adverse_events/serious_item", f"form {form.id} has no item '{source.serious_item}'")
