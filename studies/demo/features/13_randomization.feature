@uat @HTN-201
Feature: Randomization at Day 1 and emergency unblinding
  UAT script HTN-201-UAT-13, protocol 1.0 section 6 (randomization and blinding).
  An enrolled subject, with consent in force, is randomized once at the Day 1 visit: stratified permuted blocks
  (sizes 4 and 6, 1:1) by site and by baseline seated systolic blood pressure at Day 1 (< 160 or >= 160 mmHg).
  Randomization numbers start at 1001. Site staff and monitors never see the treatment; in an emergency the
  investigator may break the blind for one subject, giving the medical reason, and everyone else sees who broke it
  and when, never the treatment.

  Background: a 57-year-old man, eligible on every screening measurement, at his Day 1 visit
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
    And the "Day 1" visit took place on 2026-02-02
    And the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Yes   |
      | IEEXC02 | No    |
      | IEEXC04 | No    |
      | IEYN    | Yes   |

  Scenario Outline: An enrolled subject is randomized in the stratum of the Day 1 blood pressure (<sbp> mmHg)
    Given the investigator enrols the subject on 2026-02-02
    And the coordinator saves the "Day 1" vital signs with:
      | item  | value      |
      | VSDAT | 2026-02-02 |
      | SYSBP | <sbp>      |
      | DIABP | 92         |
      | PULSE | 70         |
    When the coordinator randomizes the subject
    Then the randomization is accepted
    And the subject has randomization number "1001"
    And the subject is in stratum "<stratum>"
    And the allocation is not visible to the coordinator
    And the allocation is not visible to the monitor

    Examples:
      | sbp | stratum    |
      | 150 | 0101/LT160 |
      | 165 | 0101/GE160 |

  Scenario: A subject is randomized only once
    Given the investigator enrols the subject on 2026-02-02
    And the coordinator enters SYSBP 150 on the "Day 1" vital signs
    And the coordinator randomizes the subject
    When the investigator randomizes the subject
    Then the randomization is refused with "already randomized"
    And the subject has randomization number "1001"

  Scenario: A subject not yet enrolled is not randomized
    Given the coordinator enters SYSBP 150 on the "Day 1" vital signs
    When the coordinator randomizes the subject
    Then the randomization is refused with "only an enrolled subject"
    And the subject is not randomized

  Scenario: A subject who withdrew consent is not randomized
    Given the investigator enrols the subject on 2026-02-02
    And the coordinator enters SYSBP 150 on the "Day 1" vital signs
    And the subject withdraws consent to "ICF" on 2026-02-02 because "does not want to take the study drug"
    When the coordinator randomizes the subject
    Then the randomization is refused with "consent to ICF was withdrawn"
    And the subject is not randomized

  Scenario: The stratum cannot be decided without the Day 1 blood pressure
    Given the investigator enrols the subject on 2026-02-02
    And the coordinator enters PULSE 70 on the "Day 1" vital signs
    When the coordinator randomizes the subject
    Then the randomization is refused with "DAY1.VS.SYSBP not recorded"
    And the subject is not randomized
    When the coordinator enters SYSBP 150 on the "Day 1" vital signs
    And the coordinator randomizes the subject
    Then the subject is in stratum "0101/LT160"

  Scenario: Only the investigator breaks the blind, and only with the medical reason; others see who and when
    Given the investigator enrols the subject on 2026-02-02
    And the coordinator enters SYSBP 150 on the "Day 1" vital signs
    And the coordinator randomizes the subject
    And today is 2026-02-10
    When the investigator breaks the blind for the subject without giving a reason
    Then the emergency unblinding is refused with "needs the medical reason"
    When the coordinator breaks the blind for the subject because "severe hypotension, the emergency physician asks"
    Then the emergency unblinding is refused with "may not subject.unblind"
    When the investigator breaks the blind for the subject because "severe hypotension needing emergency treatment"
    Then the emergency unblinding is accepted
    And the monitor sees that the blind was broken by the investigator on 2026-02-10
    And the allocation is not visible to the monitor
    And the allocation is not visible to the investigator
