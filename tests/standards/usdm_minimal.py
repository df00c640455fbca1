"""A minimal, valid USDM v4 study (two visits, one weight form, one site), for tests that vary one thing.

Written here rather than taken from ../shared/data so that each bad file in tests/data/bad/usdm
differs from a valid document in exactly the way its name says.
"""

from __future__ import annotations

import copy
from typing import Any


def _code(n: int, code: str, decode: str) -> dict[str, Any]:
    return {
        "id": f"Code_{n}",
        "code": code,
        "codeSystem": "http://www.cdisc.org",
        "decode": decode,
        "instanceType": "Code",
    }


def _timing(n: int, kind: dict[str, Any], value: str, frm: int, to: int, window: str | None) -> dict[str, Any]:
    return {
        "id": f"Timing_{n}",
        "name": f"TIM{n}",
        "type": kind,
        "value": value,
        "relativeToFrom": _code(10 + n, "C201355", "Start to Start"),
        "relativeFromScheduledInstanceId": f"ScheduledActivityInstance_{frm}",
        "relativeToScheduledInstanceId": f"ScheduledActivityInstance_{to}",
        "windowLower": window,
        "windowUpper": window,
        "instanceType": "Timing",
    }


_BASE: dict[str, Any] = {
    "study": {
        "id": "Study_1",
        "name": "MINI",
        "instanceType": "Study",
        "versions": [
            {
                "id": "StudyVersion_1",
                "versionIdentifier": "1",
                "studyIdentifiers": [
                    {
                        "id": "StudyIdentifier_1",
                        "text": "MINI-1",
                        "scopeId": "Organization_1",
                        "instanceType": "StudyIdentifier",
                    }
                ],
                "organizations": [
                    {
                        "id": "Organization_1",
                        "name": "SPONSOR",
                        "type": _code(1, "C70793", "Clinical Study Sponsor"),
                        "managedSites": [
                            {
                                "id": "StudySite_1",
                                "name": "S01",
                                "label": "Site one",
                                "country": _code(2, "DEU", "Germany"),
                                "instanceType": "StudySite",
                            }
                        ],
                        "instanceType": "Organization",
                    }
                ],
                "titles": [
                    {
                        "id": "StudyTitle_1",
                        "text": "A minimal study",
                        "type": _code(3, "C99905x2", "Official Study Title"),
                        "instanceType": "StudyTitle",
                    }
                ],
                "biomedicalConcepts": [
                    {
                        "id": "BiomedicalConcept_1",
                        "name": "Weight",
                        "properties": [
                            {
                                "id": "BiomedicalConceptProperty_1",
                                "name": "VSORRES",
                                "isRequired": True,
                                "isEnabled": True,
                                "datatype": "float",
                                "responseCodes": [],
                                "instanceType": "BiomedicalConceptProperty",
                            }
                        ],
                        "instanceType": "BiomedicalConcept",
                    }
                ],
                "studyDesigns": [
                    {
                        "id": "StudyDesign_1",
                        "name": "Design",
                        "studyPhase": {
                            "id": "AliasCode_1",
                            "standardCode": _code(4, "C15602", "Phase III Trial"),
                            "instanceType": "AliasCode",
                        },
                        "arms": [{"id": "StudyArm_1", "name": "Active", "instanceType": "StudyArm"}],
                        "epochs": [{"id": "StudyEpoch_1", "name": "Treatment", "instanceType": "StudyEpoch"}],
                        "encounters": [
                            {"id": "Encounter_1", "name": "E1", "label": "Baseline", "instanceType": "Encounter"},
                            {
                                "id": "Encounter_2",
                                "name": "E2",
                                "label": "Week 2",
                                "scheduledAtId": "Timing_2",
                                "instanceType": "Encounter",
                            },
                        ],
                        "activities": [
                            {
                                "id": "Activity_1",
                                "name": "Weight",
                                "biomedicalConceptIds": ["BiomedicalConcept_1"],
                                "instanceType": "Activity",
                            }
                        ],
                        "scheduleTimelines": [
                            {
                                "id": "ScheduleTimeline_1",
                                "name": "Main",
                                "mainTimeline": True,
                                "entryId": "ScheduledActivityInstance_1",
                                "instances": [
                                    {
                                        "id": "ScheduledActivityInstance_1",
                                        "name": "BASE",
                                        "encounterId": "Encounter_1",
                                        "epochId": "StudyEpoch_1",
                                        "activityIds": ["Activity_1"],
                                        "defaultConditionId": "ScheduledActivityInstance_2",
                                        "instanceType": "ScheduledActivityInstance",
                                    },
                                    {
                                        "id": "ScheduledActivityInstance_2",
                                        "name": "WK2",
                                        "encounterId": "Encounter_2",
                                        "epochId": "StudyEpoch_1",
                                        "activityIds": ["Activity_1"],
                                        "instanceType": "ScheduledActivityInstance",
                                    },
                                ],
                                "timings": [
                                    _timing(1, _code(5, "C201358", "Fixed Reference"), "P1D", 1, 1, None),
                                    _timing(2, _code(6, "C201356", "After"), "P2W", 2, 1, "P3D"),
                                ],
                                "instanceType": "ScheduleTimeline",
                            }
                        ],
                        "eligibilityCriteria": [],
                        "instanceType": "InterventionalStudyDesign",
                    }
                ],
                "instanceType": "StudyVersion",
            }
        ],
    },
    "usdmVersion": "4.0.0",
}


def minimal_usdm() -> dict[str, Any]:
    """A fresh copy of the minimal study, safe to change."""
    return copy.deepcopy(_BASE)
