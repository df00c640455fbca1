@uat @HTN-201
Feature: Study completion and early termination
  UAT script HTN-201-UAT-08, CRF specification 1.0 (form DS at End of Study / Early Termination).
  A subject completes after the Week 12 visit; a discontinuation is dated after randomization.

  Background: an enrolled subject
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
      | SEX     | M                      |
      | RACE    | WHITE                  |
      | ETHNIC  | NOT HISPANIC OR LATINO |
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
      | CREAT  | 0.95       |
    And the "Day 1" visit took place on 2026-02-02
    And the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Y     |
      | IEEXC02 | N     |
      | IEEXC04 | N     |
      | IEYN    | Y     |
    And the investigator enrols the subject on 2026-02-02

  Scenario: A subject who attended Week 12 completes the study
    Given the "Week 12" visit took place on 2026-04-27
    And the coordinator saves the "Week 12" vital signs with:
      | item   | value      |
      | VSDAT  | 2026-04-27 |
      | SYSBP  | 138        |
      | DIABP  | 84         |
      | PULSE  | 68         |
      | WEIGHT | 83.1       |
    When the "End of Study" visit took place on 2026-04-27
    And the coordinator saves the "End of Study" study completion form with:
      | item    | value      |
      | DSDECOD | Completed  |
      | DSSTDAT | 2026-04-27 |
    Then no query is open
    When the investigator records that the subject completed the study on 2026-04-27
    Then the subject is completed

  Scenario: Completion without the Week 12 vital signs raises a query until they are entered
    Given the "End of Study" visit took place on 2026-04-27
    When the coordinator saves the "End of Study" study completion form with:
      | item    | value      |
      | DSDECOD | COMPLETED  |
      | DSSTDAT | 2026-04-27 |
    Then the check "DS-COMPLETED-WEEK12" fails
    And query "DS-COMPLETED-WEEK12" is open on DSDECOD
    When the "Week 12" visit took place on 2026-04-27
    And the coordinator saves the "Week 12" vital signs with:
      | item   | value      |
      | VSDAT  | 2026-04-27 |
      | SYSBP  | 138        |
      | DIABP  | 84         |
      | PULSE  | 68         |
      | WEIGHT | 83.1       |
    Then the check "DS-COMPLETED-WEEK12" passes
    And query "DS-COMPLETED-WEEK12" is closed

  Scenario: A reason of Other must be specified
    Given the "End of Study" visit took place on 2026-03-16
    When the coordinator saves the "End of Study" study completion form with:
      | item    | value      |
      | DSDECOD | OTHER      |
      | DSSTDAT | 2026-03-16 |
    Then the check "DS-OTHER-SPECIFY" fails
    And query "DS-OTHER-SPECIFY" is open on DSTERM
    When the coordinator enters DSTERM "Relocated abroad" on the "End of Study" study completion
    Then the check "DS-OTHER-SPECIFY" passes
    And query "DS-OTHER-SPECIFY" is closed
    When the investigator withdraws the subject on 2026-03-16 because "relocated abroad"
    Then the subject is withdrawn

  Scenario: A discontinuation dated before randomization raises a query
    Given the "End of Study" visit took place on 2026-03-16
    When the coordinator saves the "End of Study" study completion form with:
      | item    | value                 |
      | DSDECOD | WITHDRAWAL BY SUBJECT |
      | DSSTDAT | 2026-01-30            |
    Then the check "DS-DAT-AFTER-RAND" fails
    And query "DS-DAT-AFTER-RAND" is open on DSSTDAT
    When the coordinator corrects DSSTDAT to 2026-03-16 on the "End of Study" study completion because "date of the last visit, per source"
    Then the check "DS-DAT-AFTER-RAND" passes
    And no query is open

  Scenario: Only enrolled subjects complete the study
    Given the investigator withdraws the subject on 2026-03-01 because "withdrawal by subject"
    When the investigator records that the subject completed the study on 2026-04-27
    Then the completion is refused with "only enrolled subjects complete the study"
    And the subject is withdrawn
