@uat @HTN-201
Feature: Vital signs
  UAT script HTN-201-UAT-02, CRF specification 1.0 (form VS, all visits).
  Blood pressure is the mean of three seated readings. Every item range raises a query, except
  temperature, which refuses the save (a unit error). BMI is derived from the screening height.

  Background:
    Given subject "0101-001" is screened at site "0101" on 2026-01-05
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the coordinator saves the "Screening" "Informed Consent" form with:
      | item   | value      |
      | ICDAT  | 2026-01-05 |
      | ICVERS | 1.0        |

  Scenario: Plausible screening vital signs raise no query and derive the BMI
    When the coordinator saves the "Screening" "Vital Signs" form with:
      | item       | value      |
      | VSDAT      | 2026-01-05 |
      | SBP        | 158        |
      | DBP        | 94         |
      | Pulse rate | 72         |
      | Weight     | 84.2       |
      | Height     | 176        |
      | TEMP       | 36.7       |
    Then the check "VS-SBP-ELIG" passes
    And the check "VS-BMI-PLAUSIBLE" passes
    And BMI on the "Screening" vital signs is 27.2
    And no query is open

  Scenario Outline: <item> outside its plausible range raises a query that a correction closes
    Given the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | 158        |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | 84.2       |
      | HEIGHT | 176        |
    When the coordinator corrects <item> to <implausible> on the "Screening" vital signs because "typed into the wrong field"
    Then the check "<check>" fails
    And query "<check>" is open on <item>
    When the coordinator corrects <item> to <source> on the "Screening" vital signs because "corrected against the source"
    Then the check "<check>" passes
    And query "<check>" is closed

    Examples:
      | item   | implausible | source | check           |
      | SYSBP  | 260         | 158    | VS-SYSBP-RANGE  |
      | DIABP  | 25          | 94     | VS-DIABP-RANGE  |
      | PULSE  | 210         | 72     | VS-PULSE-RANGE  |
      | WEIGHT | 25.0        | 84.2   | VS-WEIGHT-RANGE |
      | HEIGHT | 230         | 176    | VS-HEIGHT-RANGE |

  Scenario: A temperature outside 34.0 to 42.0 C cannot be saved
    When the coordinator enters TEMP 98.6 on the "Screening" vital signs
    Then the save is refused with "Temperature must be 34.0 to 42.0 C; check the unit."
    And the check "VS-TEMP-RANGE" fails
    When the coordinator enters Body temperature 37.0 on the "Screening" vital signs
    Then the save is accepted
    And the check "VS-TEMP-RANGE" passes

  Scenario: A screening SBP above 179 mmHg raises an eligibility query
    When the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SBP    | 190        |
      | DBP    | 95         |
      | PULSE  | 72         |
      | WEIGHT | 80.5       |
      | HEIGHT | 175        |
    Then the check "VS-SBP-ELIG" fails
    And query "VS-SBP-ELIG" is open on SYSBP
    And BMI on the "Screening" vital signs is 26.3
    When the coordinator corrects SBP to 165 on the "Screening" vital signs because "transcription error"
    Then the check "VS-SBP-ELIG" passes
    And query "VS-SBP-ELIG" is closed
    And no query is open on SBP

  Scenario: Diastolic pressure not below systolic raises two queries
    When the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | 142        |
      | DIABP  | 145        |
      | PULSE  | 68         |
      | WEIGHT | 77.0       |
      | HEIGHT | 170        |
    Then the check "VS-DBP-LT-SBP" fails
    And the check "VS-PP-PLAUSIBLE" fails
    And query "VS-DBP-LT-SBP" is open on DIABP
    When the coordinator corrects DIABP to 92 on the "Screening" vital signs because "systolic and diastolic swapped"
    Then the check "VS-DBP-LT-SBP" passes
    And the check "VS-PP-PLAUSIBLE" passes
    And no query is open

  Scenario: A pulse pressure below 10 mmHg asks the site to verify both readings
    When the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | 142        |
      | DIABP  | 138        |
      | PULSE  | 68         |
      | WEIGHT | 77.0       |
      | HEIGHT | 170        |
    Then the check "VS-DBP-LT-SBP" passes
    But the check "VS-PP-PLAUSIBLE" fails
    When the coordinator corrects DIABP to 88 on the "Screening" vital signs because "mean of three readings recalculated"
    Then the check "VS-PP-PLAUSIBLE" passes
    And query "VS-PP-PLAUSIBLE" is closed

  Scenario: Vital signs dated on another day than the visit raise a query
    When the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-06 |
      | SYSBP  | 158        |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | 84.2       |
      | HEIGHT | 176        |
    Then the check "VS-DAT-VISIT" fails
    And the check "VS-DAT-AFTER-IC" passes
    When the coordinator corrects VSDAT to 2026-01-05 on the "Screening" vital signs because "date of the visit, per source"
    Then the check "VS-DAT-VISIT" passes
    And query "VS-DAT-VISIT" is closed

  Scenario: Vital signs dated before consent raise a query
    When the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-02 |
      | SYSBP  | 158        |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | 84.2       |
      | HEIGHT | 176        |
    Then the check "VS-DAT-AFTER-IC" fails
    And query "VS-DAT-AFTER-IC" is open on VSDAT
    When the coordinator corrects VSDAT to 2026-01-05 on the "Screening" vital signs because "pre-screening reading entered by mistake"
    Then the check "VS-DAT-AFTER-IC" passes
    And no query is open

  Scenario: Height is required at screening, and BMI waits for it
    When the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | 158        |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | 84.2       |
    Then the check "VS-HEIGHT-SCR" fails
    And the check "VS-BMI-PLAUSIBLE" cannot be evaluated yet
    And BMI on the "Screening" vital signs has no value
    And query "VS-HEIGHT-SCR" is open on HEIGHT
    When the coordinator enters HEIGHT 176 on the "Screening" vital signs
    Then the check "VS-HEIGHT-SCR" passes
    And BMI on the "Screening" vital signs is 27.2
    And no query is open

  Scenario Outline: A BMI of <bmi> kg/m2 is implausible
    When the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | 158        |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | <weight>   |
      | HEIGHT | <height>   |
    Then BMI on the "Screening" vital signs is <bmi>
    And the check "VS-BMI-PLAUSIBLE" fails
    And query "VS-BMI-PLAUSIBLE" is open on WEIGHT
    When the coordinator corrects WEIGHT to <source weight> on the "Screening" vital signs because "pounds entered as kilograms"
    Then the check "VS-BMI-PLAUSIBLE" passes
    And query "VS-BMI-PLAUSIBLE" is closed

    Examples:
      | weight | height | bmi  | source weight |
      | 200.0  | 170    | 69.2 | 90.7          |
      | 40.0   | 190    | 11.1 | 88.0          |

  Scenario: Weight changed by more than 10 kg since screening asks for confirmation
    Given the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | 158        |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | 84.2       |
      | HEIGHT | 176        |
    And the "Day 1" visit took place on 2026-02-02
    When the coordinator saves the "Day 1" vital signs with:
      | item   | value      |
      | VSDAT  | 2026-02-02 |
      | SYSBP  | 156        |
      | DIABP  | 92         |
      | PULSE  | 70         |
      | WEIGHT | 96.0       |
    Then the check "VS-WEIGHT-CHANGE" fails
    And query "VS-WEIGHT-CHANGE" is open on WEIGHT
    And BMI on the "Day 1" vital signs is 31.0
    When the coordinator corrects WEIGHT to 86.0 on the "Day 1" vital signs because "scale reading misread"
    Then the check "VS-WEIGHT-CHANGE" passes
    And no query is open

  Scenario: A weight that could not be measured raises no weight query and leaves BMI empty
    Given the coordinator saves the "Screening" "Vital Signs" form with:
      | item   | value      |
      | VSDAT  | 2026-01-05 |
      | SYSBP  | 158        |
      | DIABP  | 94         |
      | PULSE  | 72         |
      | WEIGHT | 84.2       |
      | HEIGHT | 176        |
    And the "Day 1" visit took place on 2026-02-02
    When the coordinator saves the "Day 1" vital signs with:
      | item   | value      | not done     |
      | VSDAT  | 2026-02-02 |              |
      | SYSBP  | 150        |              |
      | DIABP  | 90         |              |
      | PULSE  | 70         |              |
      | WEIGHT |            | scale broken |
    Then the check "VS-WEIGHT-CHANGE" cannot be evaluated yet
    And BMI on the "Day 1" vital signs has no value
    And no query is open
    When the coordinator marks PULSE not done on the "Day 1" vital signs because "reading taken standing, not seated"
    Then PULSE on the "Day 1" vital signs has no value
