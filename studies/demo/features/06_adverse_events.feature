@uat @HTN-201
Feature: Adverse events log
  UAT script HTN-201-UAT-06, CRF specification 1.0 (log form AE). Adverse events are recorded from
  informed consent on; end date, outcome and seriousness must tell one consistent story.

  Background:
    Given subject "0101-001" is screened at site "0101" on 2026-01-05
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the coordinator saves the "Screening" "Informed Consent" form with:
      | item   | value      |
      | ICDAT  | 2026-01-05 |
      | ICVERS | 1.0        |
    And the "Day 1" visit took place on 2026-02-02

  Scenario: A resolved headache, fully documented, raises no query
    When the coordinator saves the adverse event record 1 with:
      | item                          | value              |
      | Adverse event (reported term) | Headache           |
      | Start date                    | 2026-02-05         |
      | Is the adverse event ongoing? | No                 |
      | End date                      | 2026-02-06         |
      | AESER                         | No                 |
      | Severity                      | Mild               |
      | AEREL                         | Not related        |
      | AEACN                         | Dose not changed   |
      | Outcome                       | Recovered/resolved |
    Then no query is open
    And AEOUT on the adverse event record 1 is RECOVERED/RESOLVED

  Scenario: An event that started before consent is medical history
    When the coordinator saves the adverse event record 1 with:
      | item    | value                      |
      | AETERM  | Dizziness                  |
      | AESTDAT | 2026-01-02                 |
      | AEONGO  | Y                          |
      | AESER   | N                          |
      | AESEV   | MILD                       |
      | AEREL   | NOT RELATED                |
      | AEACN   | NOT APPLICABLE             |
      | AEOUT   | NOT RECOVERED/NOT RESOLVED |
    Then the check "AE-START-AFTER-IC" fails
    And query "AE-START-AFTER-IC" is open on AESTDAT
    When the coordinator corrects AESTDAT to 2026-02-03 on the adverse event record 1 because "onset was after the first dose"
    Then the check "AE-START-AFTER-IC" passes
    And query "AE-START-AFTER-IC" is closed

  Scenario: An end date before the start date raises a query
    When the coordinator saves the adverse event record 1 with:
      | item    | value              |
      | AETERM  | Nausea             |
      | AESTDAT | 2026-02-05         |
      | AEONGO  | N                  |
      | AEENDAT | 2026-02-04         |
      | AESER   | N                  |
      | AESEV   | MILD               |
      | AEREL   | POSSIBLY RELATED   |
      | AEACN   | DOSE NOT CHANGED   |
      | AEOUT   | RECOVERED/RESOLVED |
    Then the check "AE-END-GE-START" fails
    And query "AE-END-GE-START" is open on AEENDAT
    When the coordinator corrects AEENDAT to 2026-02-07 on the adverse event record 1 because "month and day swapped"
    Then the check "AE-END-GE-START" passes
    And no query is open

  Scenario: A resolved event needs an end date
    When the coordinator saves the adverse event record 1 with:
      | item    | value              |
      | AETERM  | Peripheral oedema  |
      | AESTDAT | 2026-02-10         |
      | AEONGO  | N                  |
      | AESER   | N                  |
      | AESEV   | MODERATE           |
      | AEREL   | RELATED            |
      | AEACN   | DOSE NOT CHANGED   |
      | AEOUT   | RECOVERED/RESOLVED |
    Then the check "AE-END-REQUIRED" fails
    And query "AE-END-REQUIRED" is open on End date
    When the coordinator enters AEENDAT 2026-02-20 on the adverse event record 1
    Then the check "AE-END-REQUIRED" passes
    And query "AE-END-REQUIRED" is closed

  Scenario: An ongoing event cannot have an outcome that says it ended
    When the coordinator saves the adverse event record 1 with:
      | item    | value              |
      | AETERM  | Cough              |
      | AESTDAT | 2026-02-10         |
      | AEONGO  | Y                  |
      | AESER   | N                  |
      | AESEV   | MILD               |
      | AEREL   | UNLIKELY RELATED   |
      | AEACN   | DOSE NOT CHANGED   |
      | AEOUT   | RECOVERED/RESOLVED |
    Then the check "AE-ONGOING-OUTCOME" fails
    And query "AE-ONGOING-OUTCOME" is open on Outcome
    When the coordinator corrects Outcome to "Recovering/resolving" on the adverse event record 1 because "event still ongoing at the visit"
    Then the check "AE-ONGOING-OUTCOME" passes
    And the check "AE-END-REQUIRED" passes
    And no query is open

  Scenario: A fatal event must be reported as serious
    When the coordinator saves the adverse event record 1 with:
      | item    | value                 |
      | AETERM  | Myocardial infarction |
      | AESTDAT | 2026-03-01            |
      | AEONGO  | N                     |
      | AEENDAT | 2026-03-03            |
      | AESER   | N                     |
      | AESEV   | SEVERE                |
      | AEREL   | UNLIKELY RELATED      |
      | AEACN   | DRUG WITHDRAWN        |
      | AEOUT   | FATAL                 |
    Then the check "AE-FATAL-SERIOUS" fails
    And query "AE-FATAL-SERIOUS" is open on AESER
    When the coordinator corrects AESER to Yes on the adverse event record 1 because "SAE report sent on 2026-03-02"
    Then the check "AE-FATAL-SERIOUS" passes
    And query "AE-FATAL-SERIOUS" is closed

  Scenario: Study drug withdrawn for an event contradicts a completed study status
    Given the coordinator saves the adverse event record 1 with:
      | item    | value              |
      | AETERM  | Angioedema         |
      | AESTDAT | 2026-02-20         |
      | AEONGO  | N                  |
      | AEENDAT | 2026-02-25         |
      | AESER   | Y                  |
      | AESEV   | SEVERE             |
      | AEREL   | RELATED            |
      | AEACN   | DRUG WITHDRAWN     |
      | AEOUT   | RECOVERED/RESOLVED |
    And the "End of Study" visit took place on 2026-03-02
    When the coordinator saves the "End of Study" study completion form with:
      | item    | value      |
      | DSDECOD | COMPLETED  |
      | DSSTDAT | 2026-03-02 |
    Then the check "AE-DRUG-WITHDRAWN-DS" fails
    And query "AE-DRUG-WITHDRAWN-DS" is open on AEACN
    When the coordinator corrects DSDECOD to "Adverse event" on the "End of Study" study completion because "discontinued for the angioedema"
    Then the check "AE-DRUG-WITHDRAWN-DS" passes
    And query "AE-DRUG-WITHDRAWN-DS" is closed

  Scenario: Adverse event records are numbered in order
    When the coordinator saves the adverse event record 2 with:
      | item   | value    |
      | AETERM | Headache |
    Then the save is refused with "the next AE record is AE.1"
