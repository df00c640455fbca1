@uat @HTN-201
Feature: Questionnaires: PHQ-9 and GAD-7 at visits, the daily symptom diary, scores, alerts and compliance
  UAT script HTN-201-UAT-12, questionnaires of protocol 1.0. PHQ-9 and GAD-7 are completed on the site tablet
  at Day 1, Week 4 and Week 12; the daily symptom diary on the participant's phone for the first week of
  treatment, each evening from 17:00 to 23:59 local time with 2 hours of grace. Answers are the participant's:
  scores are computed by the study's rules, PHQ-9 item 9 above 0 raises a clinical alert the investigator
  acknowledges, and the sweep records missed entries and alerts the site when fewer than 80 % of the last 7
  days' entries were completed. Site 0101 is in America/Chicago.

  Background:
    Given subject "0101-001" is screened at site "0101" on 2026-01-05
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the "Day 1" visit took place on 2026-01-19

  Scenario: PHQ-9 and GAD-7 on the site tablet at Day 1 are scored as the sum of their items
    When the subject completes the "PHQ-9" at the "Day 1" visit on the site tablet with:
      | question | answer |
      | PHQ01    | 1      |
      | PHQ02    | 2      |
      | PHQ03    | 1      |
      | PHQ04    | 3      |
      | PHQ05    | 0      |
      | PHQ06    | 1      |
      | PHQ07    | 2      |
      | PHQ08    | 0      |
      | PHQ09    | 0      |
      | PHQ10    | 1      |
    Then the questionnaire is accepted
    And the "PHQ-9" "TOTAL" score at the "Day 1" visit is 10
    When the subject completes the "GAD-7" at the "Day 1" visit on the site tablet with:
      | question | answer |
      | GAD01    | 2      |
      | GAD02    | 1      |
      | GAD03    | 3      |
      | GAD04    | 0      |
      | GAD05    | 1      |
      | GAD06    | 2      |
      | GAD07    | 1      |
    Then the questionnaire is accepted
    And the "Generalized Anxiety Disorder 7-item scale" "TOTAL" score at the "Day 1" visit is 10

  Scenario: A questionnaire scheduled at other visits is not due at this one
    Given the "Week 2" visit took place on 2026-02-02
    When the subject completes the "PHQ-9" at the "Week 2" visit on the site tablet with:
      | question | answer |
      | PHQ01    | 1      |
    Then the questionnaire is refused with "PHQ9 is not due at 'WEEK2'"

  Scenario: PHQ-9 item 9 above 0 raises a clinical alert that the investigator acknowledges with a note
    When the subject completes the "PHQ-9" at the "Day 1" visit on the site tablet with:
      | question | answer |
      | PHQ02    | 2      |
      | PHQ09    | 1      |
      | PHQ10    | 1      |
    Then the questionnaire is accepted
    And the subject has an open clinical alert "PHQ9-ITEM9"
    When the investigator acknowledges the clinical alert "PHQ9-ITEM9" with " "
    Then the acknowledgement is refused with "acknowledge the alert with a note"
    When the investigator acknowledges the clinical alert "PHQ9-ITEM9" with "Called the participant the same day; no current plan, referred to their physician"
    Then the acknowledgement is accepted
    And the clinical alert "PHQ9-ITEM9" is acknowledged with "no current plan"
    When the investigator acknowledges the clinical alert "PHQ9-ITEM9" with "Called again"
    Then the acknowledgement is refused with "already acknowledged"

  Scenario: Skip logic: PHQ-9 question 10 only after a problem, the diary's time only when the tablet was taken
    Then the "PHQ-9" does not ask "PHQ10" after these answers:
      | question | answer |
      | PHQ01    | 0      |
      | PHQ02    | 0      |
      | PHQ03    | 0      |
      | PHQ04    | 0      |
      | PHQ05    | 0      |
      | PHQ06    | 0      |
      | PHQ07    | 0      |
      | PHQ08    | 0      |
      | PHQ09    | 0      |
    And the "PHQ-9" asks "PHQ10" after these answers:
      | question | answer |
      | PHQ01    | 1      |
      | PHQ02    | 0      |
      | PHQ03    | 0      |
      | PHQ04    | 0      |
      | PHQ05    | 0      |
      | PHQ06    | 0      |
      | PHQ07    | 0      |
      | PHQ08    | 0      |
      | PHQ09    | 0      |
    And the "Daily symptom diary" does not ask "TAKENAT" after these answers:
      | question | answer |
      | TAKEN    | N      |
    And the "DIARY" asks "TAKENAT" after these answers:
      | question | answer |
      | TAKEN    | Y      |
    When the subject completes the "PHQ-9" at the "Day 1" visit on the site tablet with:
      | question | answer |
      | PHQ10    | 1      |
    Then the questionnaire is refused with "PHQ10 is not asked with these answers"
    When the subject completes the "PHQ-9" at the "Day 1" visit on the site tablet with:
      | question | answer |
      | PHQ01    | 2      |
      | PHQ10    |        |
    Then the questionnaire is refused with "PHQ10 is required"

  Scenario: The PHQ-9 total is prorated over up to two unanswered items, and not computed beyond
    Then the "PHQ-9" "TOTAL" score of these answers is 9:
      | question | answer |
      | PHQ01    | 2      |
      | PHQ02    | 1      |
      | PHQ03    | 1      |
      | PHQ04    | 2      |
      | PHQ05    | 0      |
      | PHQ06    | 1      |
      | PHQ07    | 0      |
    And the "PHQ-9" "TOTAL" score of these answers is 10.29:
      | question | answer |
      | PHQ01    | 2      |
      | PHQ02    | 1      |
      | PHQ03    | 1      |
      | PHQ04    | 2      |
      | PHQ05    | 1      |
      | PHQ06    | 1      |
      | PHQ07    | 0      |
    And the "PHQ-9" "TOTAL" score of these answers is none:
      | question | answer |
      | PHQ01    | 2      |
      | PHQ02    | 1      |
      | PHQ03    | 1      |
      | PHQ04    | 2      |
      | PHQ05    | 0      |
      | PHQ06    | 1      |

  Scenario: A diary entry counts inside its window, in the participant's time zone, with its grace
    When the participant completes the "DIARY" entry of 2026-01-19 at "16:59"
    Then the entry is refused with "outside its window 2026-01-19T17:00-06:00 to 2026-01-20T01:59-06:00"
    When the participant completes the "DIARY" entry of 2026-01-19 at "20:15"
    Then the entry is accepted
    And the "DIARY" entry of 2026-01-19 is completed
    And the "DIARY" "SYMPTOMS" score of the entry of 2026-01-19 is 4
    When the participant completes the "DIARY" entry of 2026-01-20 at "2026-01-21 01:30"
    Then the entry is accepted
    When the participant completes the "DIARY" entry of 2026-01-21 at "2026-01-22 02:30"
    Then the entry is refused with "outside its window"
    When the participant completes the "DIARY" entry of 2026-01-26 at "20:00"
    Then the entry is refused with "DIARY is not due at '2026-01-26'"

  Scenario: A participant who moved is counted in their own time zone
    Given the participant's time zone is set to "America/Los_Angeles"
    When the participant completes the "DIARY" entry of 2026-01-19 at "16:30"
    Then the entry is refused with "outside its window 2026-01-19T17:00-08:00"
    When the participant completes the "DIARY" entry of 2026-01-19 at "23:30"
    Then the entry is accepted
    And the "DIARY" entry of 2026-01-19 was received once, completed at "23:30"

  Scenario: A device clock ahead of the server is refused
    Given today is 2026-01-19
    When the participant completes the "DIARY" entry of 2026-01-19 at "20:15"
    Then the entry is refused with "ahead of the server"

  Scenario: An entry completed offline is received hours later; a resend with the same client id adds nothing
    When the participant completes the "DIARY" entry of 2026-01-19 at "21:40" offline, sent at "2026-01-20 08:05"
    Then the entry is accepted
    And the "DIARY" entry of 2026-01-19 was completed at "21:40" and received at "2026-01-20 08:05"
    When the participant's phone sends the "DIARY" entry of 2026-01-19 again
    Then the resend is accepted
    And the "DIARY" entry of 2026-01-19 was received once, completed at "21:40"

  Scenario: The sweep records missed entries and alerts the site once when compliance falls below 80 %
    Given the participant completes the "DIARY" entry of 2026-01-19 at "20:00"
    When the eCOA sweep runs on 2026-01-20 at "12:00"
    Then the "DIARY" entry of 2026-01-19 is completed
    And the subject has no compliance alert for the "DIARY"
    When the eCOA sweep runs on 2026-01-24 at "12:00"
    Then the "DIARY" entry of 2026-01-20 is missed
    And the "DIARY" entry of 2026-01-23 is missed
    And the "DIARY" entry of 2026-01-24 is not recorded
    And the subject has a compliance alert for the "DIARY" saying "1 of 5 entries completed (20 %, threshold 80 %)"
