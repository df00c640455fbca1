@uat @HTN-201
Feature: Informed consent, electronic and on paper, withdrawal and re-consent after an amendment
  UAT script HTN-201-UAT-11, consent documents of protocol 1.0 (ICF version 1.0, optional part BIOBANK).
  No screening data and no enrolment before the subject's consent is recorded: signed in the participant app
  (then countersigned by the person who obtained it) or on paper at the site. An amendment that publishes a
  new ICF version asks every consented subject to sign again before their next visit. A withdrawal stops new
  data, except the safety follow-up the subject agreed to.

  Background:
    Given subject "0101-001" is screened at site "0101" on 2026-01-05

  Scenario: No screening data before consent; the participant signs in the app and the coordinator countersigns
    When the "Screening" visit took place on 2026-01-05
    Then the visit date is refused with "needs consent to ICF"
    When the coordinator invites the subject to the participant app
    And the participant activates the invitation as "robin-0101"
    And the participant signs "ICF" version "1.0" answering "Yes, both will know" to "Q1"
    Then the signature is refused with "the answer to Q1 is not right: read section 3 again"
    When the participant signs "ICF" version "1.0" saying "Yes" to "BIOBANK"
    Then the signature is accepted
    And the subject has consented to "ICF" version "1.0"
    And the subject said "Yes" to the optional part "BIOBANK" of "ICF"
    When the coordinator countersigns the subject's "ICF"
    Then the subject's consent to "ICF" is countersigned
    When the "Screening" visit took place on 2026-01-05
    Then the visit date is accepted

  Scenario: An invitation code opens one account only
    Given the coordinator invites the subject to the participant app
    And the participant activates the invitation as "robin-0101"
    When the participant activates the invitation as "someone-else"
    Then the activation is refused with "already used"

  Scenario: Consent signed on paper is recorded by the site, on the version in force that day
    When the coordinator records the subject's consent to "ICF" version "2.0" signed on paper on 2026-01-05
    Then the paper consent is refused with "version 2.0 of ICF is not in force"
    When the coordinator records the subject's consent to "ICF" version "1.0" signed on paper on 2026-01-05
    Then the paper consent is accepted
    And the subject has consented to "ICF" version "1.0"
    And the subject said "No" to the optional part "BIOBANK" of "ICF"
    When the "Screening" visit took place on 2026-01-05
    Then the visit date is accepted

  Scenario: After an amendment with ICF version 2.0, the next visit waits for re-consent
    Given the coordinator invites the subject to the participant app
    And the participant activates the invitation as "robin-0101"
    And the participant signs "ICF" version "1.0"
    And the "Screening" visit took place on 2026-01-05
    And an amendment publishes "ICF" version "2.0" effective 2026-01-12, asking every subject to consent again
    Then the subject must consent again to "ICF" version "2.0"
    When the "Day 1" visit took place on 2026-01-19
    Then the visit date is refused with "re-consent to ICF version 2.0 is required"
    When the participant signs "ICF" version "2.0"
    Then the signature is accepted
    And the subject has consented to "ICF" version "2.0"
    When the "Day 1" visit took place on 2026-01-19
    Then the visit date is accepted

  Scenario: A site on paper re-consents the subject on paper after the amendment
    Given the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And an amendment publishes "ICF" version "2.0" effective 2026-01-12, asking every subject to consent again
    When the "Day 1" visit took place on 2026-01-19
    Then the visit date is refused with "re-consent to ICF version 2.0"
    When the coordinator records the subject's consent to "ICF" version "2.0" signed on paper on 2026-01-19
    And the "Day 1" visit took place on 2026-01-19
    Then the visit date is accepted

  Scenario: Withdrawing the optional part leaves the main consent standing
    Given the coordinator invites the subject to the participant app
    And the participant activates the invitation as "robin-0101"
    And the participant signs "ICF" version "1.0" saying "Yes" to "BIOBANK"
    When the subject withdraws the optional part "BIOBANK" of "ICF" on 2026-01-12 because "no longer wants samples stored"
    Then the withdrawal is accepted
    And the subject said "No" to the optional part "BIOBANK" of "ICF"
    And the subject has consented to "ICF" version "1.0"

  Scenario: A full withdrawal refuses new visits; safety follow-up goes on when the subject agreed to it
    Given the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    When the subject withdraws consent to "ICF" on 2026-01-12 because "side effects", safety follow-up continuing
    Then the withdrawal is accepted
    And the subject's consent to "ICF" is withdrawn
    When the "Day 1" visit took place on 2026-01-19
    Then the visit date is refused with "consent to ICF was withdrawn on 2026-01-12 (continues: safety_follow_up)"
    When the coordinator saves the adverse event record 1 with:
      | item    | value            |
      | AETERM  | Dizziness        |
      | AESTDAT | 2026-01-10       |
      | AEONGO  | Y                |
      | AESER   | N                |
      | AESEV   | MILD             |
      | AEREL   | NOT RELATED      |
      | AEACN   | DOSE NOT CHANGED |
    Then the save is accepted

  Scenario: A full withdrawal with nothing continuing refuses safety data too
    Given the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the subject withdraws consent to "ICF" on 2026-01-12 because "moving abroad"
    When the coordinator saves the adverse event record 1 with:
      | item    | value            |
      | AETERM  | Dizziness        |
      | AESTDAT | 2026-01-10       |
      | AEONGO  | Y                |
      | AESER   | N                |
      | AESEV   | MILD             |
      | AEREL   | NOT RELATED      |
      | AEACN   | DOSE NOT CHANGED |
    Then the save is refused with "consent to ICF was withdrawn on 2026-01-12 (continues: nothing)"
