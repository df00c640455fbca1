@uat @HTN-201
Feature: Queries, source data verification, freeze and lock
  UAT script HTN-201-UAT-09, data management plan 1.0. Site staff answer queries, monitors and data
  managers re-query and close them; monitors verify targeted items against the source; data managers
  freeze forms and lock casebooks and the study. Every change after first entry needs a reason.

  Background:
    Given subject "0101-001" is screened at site "0101" on 2026-01-05
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the coordinator saves the "Screening" "Informed Consent" form with:
      | item   | value      |
      | ICDAT  | 2026-01-05 |
      | ICVERS | 1.0        |
    And the coordinator saves the "Screening" vital signs with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | 158        |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | 84.2       |
      | HEIGHT | 176        |

  Scenario: A system query is answered, re-queried and closed by data management
    When the coordinator corrects SBP to 182 on the "Screening" vital signs because "re-measured"
    Then query "VS-SBP-ELIG" is open on SYSBP
    When the coordinator answers query "VS-SBP-ELIG" with "182 mmHg confirmed against the source."
    Then query "VS-SBP-ELIG" is answered
    When the monitor re-queries "VS-SBP-ELIG" with "Please attach the vital signs worksheet."
    Then query "VS-SBP-ELIG" is open
    When the coordinator answers query "VS-SBP-ELIG" with "Worksheet filed in the ISF."
    And the data manager closes query "VS-SBP-ELIG" with "Confirmed; subject to be screen failed."
    Then query "VS-SBP-ELIG" is closed
    And no query is open

  Scenario: A monitor raises a manual query that the site answers
    When the monitor raises a query on PULSE on the "Screening" vital signs saying "Source says 78 beats/min?"
    Then query "Q-0101-001-001" is open on Pulse rate
    When the coordinator answers query "Q-0101-001-001" with "Source re-checked: 72 is right."
    And the monitor closes query "Q-0101-001-001" with "Agreed."
    Then query "Q-0101-001-001" is closed

  Scenario: A query raised in error is cancelled with a reason
    Given the data manager raises a query on WEIGHT on the "Screening" vital signs saying "Weight in pounds?"
    When the data manager cancels query "Q-0101-001-001" because "raised on the wrong subject"
    Then query "Q-0101-001-001" is cancelled
    And no query is open

  Scenario: Site staff cannot close queries and monitors cannot enter data
    Given the monitor raises a query on PULSE on the "Screening" vital signs saying "Source says 78?"
    When the coordinator closes query "Q-0101-001-001" with "done"
    Then the closing is refused with "may not query.close"
    When the monitor enters PULSE 78 on the "Screening" vital signs
    Then the save is refused with "may not data.enter"

  Scenario: Changing saved data needs a reason for change
    When the coordinator enters SBP 160 on the "Screening" vital signs
    Then the save is refused with "changing saved data needs a reason for change"
    When the coordinator corrects SBP to 160 on the "Screening" vital signs because "re-measured"
    Then SYSBP on the "Screening" vital signs is 160

  Scenario: SDV covers the targeted items, and a later change invalidates it
    When the monitor source-verifies the "Screening" vital signs
    Then SDV of the "Screening" vital signs is complete
    When the coordinator corrects DBP to 96 on the "Screening" vital signs because "transcription error"
    Then SDV of the "Screening" vital signs is not complete
    When the monitor source-verifies only DIABP on the "Screening" vital signs
    Then SDV of the "Screening" vital signs is complete

  Scenario: Only monitors verify source data
    When the coordinator source-verifies the "Screening" vital signs
    Then the SDV is refused with "may not sdv.perform"
    And SDV of the "Screening" vital signs is not complete

  Scenario: A frozen form cannot change until data management unfreezes it
    Given the data manager freezes the "Screening" vital signs
    When the coordinator corrects PULSE to 75 on the "Screening" vital signs because "re-measured"
    Then the save is refused with "frozen"
    When the data manager unfreezes the "Screening" vital signs because "query answer needs a correction"
    And the coordinator corrects PULSE to 75 on the "Screening" vital signs because "re-measured"
    Then the save is accepted

  Scenario: A locked casebook cannot change until it is unlocked with a reason
    Given the data manager locks the casebook
    And the casebook is locked
    When the coordinator corrects PULSE to 76 on the "Screening" vital signs because "late correction"
    Then the save is refused with "the casebook of 0101-001 is locked"
    When the data manager unlocks the casebook because "late laboratory results"
    And the coordinator corrects PULSE to 76 on the "Screening" vital signs because "late correction"
    Then the save is accepted

  Scenario: After database lock no subject's data can change
    Given the data manager locks the study
    When the coordinator corrects PULSE to 77 on the "Screening" vital signs because "late correction"
    Then the save is refused with "study HTN-201 is locked"
    When the data manager unlocks the study because "database re-opened for a late SAE"
    And the coordinator corrects PULSE to 77 on the "Screening" vital signs because "late correction"
    Then the save is accepted
