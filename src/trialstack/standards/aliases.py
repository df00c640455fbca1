"""The ODM `Alias` contexts TrialStack writes and reads back, so an exported study imports unchanged.

ODM 1.3.2 has no arms, epochs, study phase, visit days or windows, and its XSD allows no extension
elements. Alias (Context, Name) is the extension point the standard offers on StudyEventDef, FormDef,
ItemDef, CodeList and Protocol; TrialStack keeps what 1.3.2 lacks there, under `trialstack:` contexts.
Any ODM file carrying these aliases (ours or another tool's) is read with them.
"""

from __future__ import annotations

RULE_CONTEXT = "TrialStack"  # FormalExpression Context of expressions in our rule language

ID = "trialstack:id"  # the TrialStack id of a visit, form, item or codelist (OIDs carry a kind prefix)
PHASE = "trialstack:phase"
ANCHOR = "trialstack:anchor"
ARM_PREFIX = "trialstack:arm:"  # + arm id; Name is the arm name (Protocol)
EPOCH_PREFIX = "trialstack:epoch:"  # + epoch id; Name is the epoch name (Protocol)
VISIT_TYPE = "trialstack:visit-type"
DAY = "trialstack:day"
EARLY = "trialstack:window-early"
LATE = "trialstack:window-late"
EPOCH = "trialstack:epoch"  # the epoch id of a visit (StudyEventDef)
OUT_OF_WINDOW = "trialstack:out-of-window"
LOG_FORMS = "trialstack:log-forms"  # marks the Common event that holds the subject-level log forms
SDV = "trialstack:sdv"
