"""Read an ODM Protocol: the visit order, and in ODM 2.0 the phase, arms, epochs and timing constraints.

ODM 2.0 orders visits through StudyEventGroupDefs (study cells and segments, which also carry the epoch)
and times them with Relative and Transition timing constraints; 1.3.2 has only StudyEventRefs in order.
"""

from __future__ import annotations

from lxml import etree

from trialstack.standards.odm_meta import Named, OdmMeta, Timing
from trialstack.standards.odm_xml import OdmXml, Where, attr, integer, name_of


class ProtocolReader:
    def __init__(self, x: OdmXml, meta: OdmMeta) -> None:
        self.x = x
        self.meta = meta

    def read(self, protocol: etree._Element, mdv: etree._Element) -> None:
        x, meta = self.x, self.meta
        meta.protocol_aliases = x.aliases(protocol)
        for ref in sorted(x.all(protocol, "StudyEventRef"), key=lambda ref: integer(ref.get("OrderNumber")) or 0):
            meta.event_order.append(attr(ref, "StudyEventOID"))
            meta.event_refs.setdefault(attr(ref, "StudyEventOID"), Where.of(ref))
        phase = x.one(protocol, "TrialPhase")
        meta.trial_phase = phase.get("Value") if phase is not None else None
        structure = x.one(protocol, "StudyStructure")
        if structure is not None:
            meta.arms = [Named(attr(a, "OID"), name_of(a), Where.of(a)) for a in x.all(structure, "Arm")]
            epochs = sorted(x.all(structure, "Epoch"), key=lambda e: integer(e.get("SequenceNumber")) or 0)
            meta.epochs = [Named(attr(e, "OID"), name_of(e), Where.of(e)) for e in epochs]
        groups = {attr(group, "OID"): group for group in x.all(mdv, "StudyEventGroupDef")}
        for ref in x.all(protocol, "StudyEventGroupRef"):
            self._walk_groups(groups, attr(ref, "StudyEventGroupOID"), None, set())
        for oid, group in groups.items():
            if group.get("EpochOID"):
                self._walk_groups(groups, oid, group.get("EpochOID"), set())
        self._timings(protocol, mdv)
        for name in ("InclusionExclusionCriteria", "StudyObjectives", "StudyEndPoints", "StudyEstimands"):
            element = x.one(protocol, name)
            if element is not None:
                meta.skipped.append((Where.of(element).path, f"{name} has no place in the StudyDefinition"))

    def _walk_groups(self, groups: dict[str, etree._Element], oid: str, epoch: str | None, seen: set[str]) -> None:
        """Collect the events under a StudyEventGroupDef: their order, and the epoch of the group."""
        group = groups.get(oid)
        if group is None or oid in seen:
            return
        seen.add(oid)
        epoch = group.get("EpochOID") or epoch
        for child in group:
            if self.x.is_(child, "StudyEventRef"):
                event = attr(child, "StudyEventOID")
                if event not in self.meta.event_order:
                    self.meta.event_order.append(event)
                    self.meta.event_refs.setdefault(event, Where.of(child))
                if epoch is not None:
                    self.meta.event_epochs.setdefault(event, epoch)
            elif self.x.is_(child, "StudyEventGroupRef"):
                self._walk_groups(groups, attr(child, "StudyEventGroupOID"), epoch, seen)

    def _timings(self, protocol: etree._Element, mdv: etree._Element) -> None:
        x, meta = self.x, self.meta
        transitions = {
            attr(t, "OID"): (attr(t, "SourceOID"), attr(t, "TargetOID"))
            for workflow in x.all(mdv, "WorkflowDef")
            for t in x.all(workflow, "Transition")
        }
        timings = x.one(protocol, "StudyTimings")
        for timing in x.all(timings, "StudyTiming") if timings is not None else []:
            for constraint in timing:
                where = Where.of(constraint)
                if x.is_(constraint, "RelativeTimingConstraint"):
                    if constraint.get("PredecessorOID") and constraint.get("SuccessorOID"):
                        meta.timings.append(
                            self._timing(
                                constraint,
                                attr(constraint, "PredecessorOID"),
                                attr(constraint, "SuccessorOID"),
                                "TimepointRelativeTarget",
                                True,
                            )
                        )
                    else:
                        meta.skipped.append(
                            (where.path, "a relative timing constraint without predecessor and successor")
                        )
                elif x.is_(constraint, "TransitionTimingConstraint"):
                    pair = transitions.get(attr(constraint, "TransitionOID"))
                    if pair is None:
                        meta.skipped.append(
                            (where.path, f"transition {constraint.get('TransitionOID')} is not defined")
                        )
                    else:
                        meta.timings.append(self._timing(constraint, pair[0], pair[1], "TimepointTarget", False))
                elif isinstance(constraint.tag, str):
                    name = etree.QName(constraint).localname
                    meta.skipped.append(
                        (where.path, f"{name} is not mapped (only relative and transition timings are)")
                    )

    def _timing(self, element: etree._Element, predecessor: str, successor: str, target: str, direct: bool) -> Timing:
        return Timing(
            attr(element, "OID"),
            predecessor,
            successor,
            element.get(target, "P0D"),
            element.get("TimepointPreWindow"),
            element.get("TimepointPostWindow"),
            element.get("Type", "StartToStart"),
            direct,
            Where.of(element),
        )
