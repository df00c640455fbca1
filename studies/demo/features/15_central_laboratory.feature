@uat @HTN-201
Feature: Central laboratory: results by HL7 and by file, triage, alerts and reconciliation with the EDC
  UAT script HTN-201-UAT-15, protocol 1.0 section 8.3 (safety laboratory) and the central laboratory's data
  transfer agreement. Meridian Central Laboratory (CENTRAL) sends each sample's results the morning after it is
  analysed: by HL7 v2.5.1 ORU^R01 with LOINC codes, or by CSV file in its own codes and units. Every result is
  converted to the study's unit, flagged against the study's reference range and graded by CTCAE v5.0; a grade of 3
  or more alerts the investigator, who confirms the proposed adverse event or dismisses it with a reason. A result
  the system cannot match to a subject and visit waits in triage for the data manager, never guessed or dropped.
  Reconciliation compares the central values with the local-lab values the site entered (more than 10 % apart opens
  a query on the local item) and raises a query when an expected sample (Screening, Week 4, Week 12) has not
  arrived 7 days after the visit.

  Background: a subject in screening at site 0101, with local laboratory values on the screening form
    Given subject "0101-001" is screened at site "0101" on 2026-01-05
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the coordinator saves the "Screening" "Informed Consent" form with:
      | item   | value      |
      | ICDAT  | 2026-01-05 |
      | ICVERS | 1.0        |
    And the coordinator saves the "Screening" demographics with:
      | item    | value                  |
      | BRTHDAT | 1968-04-12             |
      | SEX     | Male                   |
      | RACE    | White                  |
      | ETHNIC  | Not Hispanic or Latino |
    And the coordinator saves the "Screening" vital signs with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | 158        |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | 84.2       |
      | HEIGHT | 176        |
    And the coordinator saves the "Screening" laboratory with:
      | item   | value      |
      | LBPERF | Y          |
      | LBDAT  | 2026-01-05 |
      | K      | 4.2        |
      | SODIUM | 140        |
      | CREAT  | 0.95       |
      | ALT    | 22         |
      | GLUC   | 96         |

  Scenario: An HL7 result is recorded, flagged against the study's range, and a resent message adds nothing
    When the central laboratory sends an HL7 result message for subject "0101-001" collected on 2026-01-05:
      | test      | value | unit   |
      | Potassium | 5.4   | mmol/L |
      | SODIUM    | 139   | mmol/L |
      | 1742-6    | 24    | U/L    |
    Then the subject's central "Potassium" result is 5.4 "mmol/L", flagged "H"
    And the subject's central "Sodium" result is 139 "mmol/L", not flagged
    And the subject's central "ALT" result is 24 "U/L", not flagged
    When the central laboratory sends the same message again
    Then nothing new is recorded
    And the subject's central "K" result is 5.4 "mmol/L"

  Scenario: A results file in the laboratory's own codes and units is converted to the study's units
    When the central laboratory sends a results file "MCL_20260106.csv":
      | patient_id | test_code | value | unit   | collected_at        | sex |
      | 0101-001   | CREA      | 88    | umol/L | 2026-01-05T08:00:00 | M   |
      | 0101-001   | GLU       | 5.4   | mmol/L | 2026-01-05T08:00:00 | M   |
      | 0101-001   | POT       | 4.3   | mmol/L | 2026-01-05T08:00:00 | M   |
    Then the subject's central "Creatinine" result is 1.00 "mg/dL", not flagged
    And the subject's central "Glucose" result is 97 "mg/dL", not flagged
    And the subject's central "Potassium" result is 4.3 "mmol/L", not flagged
    And no query is open

  Scenario: A corrected result replaces the value, and the ledger keeps the value it replaced
    Given the central laboratory sends an HL7 result message for subject "0101-001" collected on 2026-01-05:
      | test      | value | unit   |
      | Potassium | 4.6   | mmol/L |
    When the central laboratory sends a corrected "Potassium" result of 4.3 "mmol/L"
    Then the subject's central "Potassium" result is 4.3 "mmol/L", not flagged
    And the subject's central "Potassium" result was corrected from 4.6 with the reason "corrected by the laboratory"
    When the central laboratory sends the same message again
    Then nothing new is recorded

  Scenario: A mistyped subject number waits in triage until the data manager assigns the result
    When the central laboratory sends an HL7 result message for subject "0101-OO1" collected on 2026-01-05:
      | test      | value | unit   |
      | Potassium | 4.4   | mmol/L |
    Then a laboratory result for patient "0101-OO1" waits in triage because "no subject matches the laboratory's patient id '0101-OO1'"
    When the coordinator assigns the triaged result of patient "0101-OO1" to the subject because "subject number mistyped by the laboratory"
    Then the assignment is refused with "coordinator may not lab.triage"
    When the data manager assigns the triaged result of patient "0101-OO1" to the subject because "subject number mistyped by the laboratory"
    Then the subject's central "Potassium" result is 4.4 "mmol/L", not flagged
    And no laboratory result waits in triage

  Scenario: A result for somebody who is not in the study is rejected by the data manager
    When the central laboratory sends a results file "MCL_20260107.csv":
      | patient_id | test_code | value | unit   | collected_at        |
      | 9999-001   | K         | 4.1   | mmol/L | 2026-01-06T08:00:00 |
    Then a laboratory result for patient "9999-001" waits in triage because "no subject matches"
    When the data manager rejects the triaged result of patient "9999-001" because "not a participant of this study: the laboratory confirmed it belongs to another trial"
    Then no laboratory result waits in triage

  Scenario: A grade 3 potassium alerts the investigator, who confirms the adverse event
    When the central laboratory sends an HL7 result message for subject "0101-001" collected on 2026-01-05:
      | test      | value | unit   |
      | Potassium | 6.6   | mmol/L |
    Then the subject's central "Potassium" result is 6.6 "mmol/L", flagged "HH"
    And the subject's central "Potassium" result is graded 3 for "Hyperkalemia"
    And a laboratory alert of grade 3 for "Hyperkalemia" is raised for the investigator
    When the coordinator confirms the laboratory alert for "Hyperkalemia"
    Then the confirmation is refused with "coordinator may not lab.alert.review"
    When the investigator confirms the laboratory alert for "Hyperkalemia"
    Then the laboratory alert for "Hyperkalemia" is confirmed

  Scenario: A low platelet count alert is dismissed with the investigator's reason
    When the central laboratory sends an HL7 result message for subject "0101-001" collected on 2026-01-05:
      | test      | value | unit   |
      | Platelets | 40    | 10*9/L |
    Then the subject's central "Platelets" result is 40 "10*9/L", flagged "LL"
    And a laboratory alert of grade 3 for "Platelet count decreased" is raised for the investigator
    When the investigator dismisses the laboratory alert for "Platelets" because ""
    Then the dismissal is refused with "say why the value is not an adverse event"
    When the investigator dismisses the laboratory alert for "Platelets" because "clumped sample: the repeat drawn the same day was 210"
    Then the laboratory alert for "Platelet count decreased" is dismissed

  Scenario: A results file with a value that is not a number is refused whole, naming the line
    When the central laboratory sends a results file "MCL_20260108.csv":
      | patient_id | test_code | value     | unit   | collected_at        |
      | 0101-001   | NA        | 141       | mmol/L | 2026-01-05T08:00:00 |
      | 0101-001   | K         | hemolysed | mmol/L | 2026-01-05T08:00:00 |
    Then the results file is refused at "MCL_20260108.csv line 3" because "'hemolysed' is not a number"
    And no laboratory result waits in triage

  Scenario: A central potassium more than 10 % from the local value opens a query, closed by the site's correction
    When the central laboratory sends an HL7 result message for subject "0101-001" collected on 2026-01-05:
      | test      | value | unit   |
      | Potassium | 5.3   | mmol/L |
      | Sodium    | 141   | mmol/L |
    Then a reconciliation query about a local and central mismatch is open on K
    And no query is open on SODIUM
    When the coordinator corrects K to 5.3 on the "Screening" laboratory because "transcription error: the local report says 5.3"
    Then the save is accepted
    And the reconciliation query about a local and central mismatch is closed

  Scenario: An expected Week 4 sample still missing 7 days after the visit raises a query; its arrival closes it
    Given the central laboratory sends an HL7 result message for subject "0101-001" collected on 2026-01-05:
      | test      | value | unit   |
      | Potassium | 4.3   | mmol/L |
    And the "Day 1" visit took place on 2026-02-02
    And the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Yes   |
      | IEEXC02 | No    |
      | IEEXC04 | No    |
      | IEYN    | Yes   |
    And the investigator enrols the subject on 2026-02-02
    And the "Week 4" visit took place on 2026-03-02
    When the system sweeps for missing laboratory samples on 2026-03-09
    Then no query is open
    When the system sweeps for missing laboratory samples on 2026-03-10
    Then a reconciliation query about a missing sample at the "Week 4" visit is open on LBDAT
    When the central laboratory sends a results file "MCL_20260311.csv":
      | patient_id | test_code | value | unit   | collected_at        |
      | 0101-001   | K         | 4.5   | mmol/L | 2026-03-02T08:00:00 |
    Then the reconciliation query about a missing sample at the "Week 4" visit is closed
