"""eCOA / ePRO: questionnaires and diaries completed by participants, scoring, missed entries, compliance and alerts."""
