@uat @HTN-201
Feature: Personal data stays out of the ledger and can be erased
  UAT script HTN-201-UAT-10, CRF specification 1.0 (DM.BRTHDAT is personal data).
  The date of birth is kept encrypted in the personal-data vault, never in an event; checks and the derived
  age still read it. Erasure destroys the subject's key: the value is gone, the clinical data stays.

  Background:
    Given subject "0101-001" is screened at site "0101" on 2026-01-05
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the coordinator saves the "Screening" "Informed Consent" form with:
      | item   | value      |
      | ICDAT  | 2026-01-05 |
      | ICVERS | 1.0        |

  Scenario: The date of birth is used by checks and derivations but never written to the ledger
    When the coordinator saves the "Screening" demographics with:
      | item    | value                  |
      | BRTHDAT | 1968-04-12             |
      | SEX     | M                      |
      | RACE    | WHITE                  |
      | ETHNIC  | NOT HISPANIC OR LATINO |
    Then AGE on the "Screening" demographics is 57
    And BRTHDAT on the "Screening" demographics is 1968-04-12
    And no event of the subject holds "1968-04-12"
    When the coordinator corrects BRTHDAT to 1968-04-21 on the "Screening" demographics because "day and month swapped"
    Then BRTHDAT on the "Screening" demographics is 1968-04-21
    And no event of the subject holds "1968-04-21"

  Scenario: Erasure shreds the date of birth, keeps the clinical data, and takes no new personal data
    Given the coordinator saves the "Screening" demographics with:
      | item    | value                  |
      | BRTHDAT | 1968-04-12             |
      | SEX     | M                      |
      | RACE    | WHITE                  |
      | ETHNIC  | NOT HISPANIC OR LATINO |
    When the data manager erases the subject's personal data because "participant request"
    Then the erasure is accepted
    And BRTHDAT on the "Screening" demographics has been erased
    And SEX on the "Screening" demographics is M
    And AGE on the "Screening" demographics is 57
    When the data manager erases the subject's personal data because "again"
    Then the erasure is refused with "already erased"
    When the coordinator corrects BRTHDAT to 1968-04-12 on the "Screening" demographics because "re-entry"
    Then the save is refused with "was erased"

  Scenario: Only a data manager erases personal data, and never without a reason
    Given the coordinator saves the "Screening" demographics with:
      | item    | value                  |
      | BRTHDAT | 1968-04-12             |
      | SEX     | M                      |
      | RACE    | WHITE                  |
      | ETHNIC  | NOT HISPANIC OR LATINO |
    When the coordinator erases the subject's personal data because "participant request"
    Then the erasure is refused with "may not personal_data.erase"
    When the data manager erases the subject's personal data because " "
    Then the erasure is refused with "needs a reason"
    And BRTHDAT on the "Screening" demographics is 1968-04-12
