@uat @HTN-201
Feature: Local laboratory (chemistry)
  UAT script HTN-201-UAT-03, CRF specification 1.0 (form LB at Screening, Week 4, Week 12,
  Unscheduled and End of Study). Samples are taken on the visit day or up to 3 days before it;
  screening results may be at most 28 days old at Day 1.

  Background:
    Given subject "0101-001" is screened at site "0101" on 2026-01-05
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-05
    And the "Screening" visit took place on 2026-01-05
    And the coordinator saves the "Screening" "Informed Consent" form with:
      | item   | value      |
      | ICDAT  | 2026-01-05 |
      | ICVERS | 1.0        |

  Scenario: Plausible screening chemistry raises no query
    When the coordinator saves the "Screening" laboratory with:
      | item                          | value      |
      | Was a blood sample collected? | Yes        |
      | Date of sample collection     | 2026-01-05 |
      | Potassium                     | 4.2        |
      | Sodium                        | 140        |
      | Creatinine                    | 0.95       |
      | ALT                           | 22         |
      | Glucose                       | 96         |
    Then the check "LB-K-ALERT" passes
    And the check "LB-DAT-VISIT" passes
    And no query is open

  Scenario: No sample collected: the results are not asked for and nothing is checked
    When the coordinator saves the "Screening" laboratory with:
      | item   | value |
      | LBPERF | No    |
    Then no query is open
    And the check "LB-K-ALERT" cannot be evaluated yet

  Scenario Outline: <item> outside its plausible range raises a query that a correction closes
    Given the coordinator saves the "Screening" laboratory with:
      | item   | value      |
      | LBPERF | Y          |
      | LBDAT  | 2026-01-05 |
      | K      | 4.2        |
      | SODIUM | 140        |
      | CREAT  | 0.95       |
      | ALT    | 22         |
      | GLUC   | 96         |
    When the coordinator corrects <item> to <implausible> on the "Screening" laboratory because "result keyed from the wrong line"
    Then the check "<check>" fails
    And query "<check>" is open on <item>
    When the coordinator corrects <item> to <report> on the "Screening" laboratory because "corrected against the lab report"
    Then the check "<check>" passes
    And query "<check>" is closed

    Examples:
      | item   | implausible | report | check           |
      | K      | 8.1         | 4.2    | LB-K-RANGE      |
      | SODIUM | 178         | 140    | LB-SODIUM-RANGE |
      | CREAT  | 12.40       | 0.95   | LB-CREAT-RANGE  |
      | ALT    | 2400        | 22     | LB-ALT-RANGE    |
      | GLUC   | 700         | 96     | LB-GLUC-RANGE   |

  Scenario: Potassium outside 3.0 to 6.0 mmol/L is an alert to assess for an adverse event
    When the coordinator saves the "Screening" laboratory with:
      | item   | value      |
      | LBPERF | Y          |
      | LBDAT  | 2026-01-05 |
      | K      | 2.8        |
      | CREAT  | 0.95       |
    Then the check "LB-K-RANGE" passes
    But the check "LB-K-ALERT" fails
    And query "LB-K-ALERT" is open on Potassium
    When the coordinator answers query "LB-K-ALERT" with "Repeat sample taken; result confirmed by the lab."
    Then query "LB-K-ALERT" is answered

  Scenario: ALT above 3 x ULN raises a query
    When the coordinator saves the "Screening" laboratory with:
      | item   | value      |
      | LBPERF | Y          |
      | LBDAT  | 2026-01-05 |
      | ALT    | 135        |
    Then the check "LB-ALT-3ULN" fails
    And query "LB-ALT-3ULN" is open on ALT
    When the coordinator corrects ALT to 35 on the "Screening" laboratory because "AST value entered as ALT"
    Then the check "LB-ALT-3ULN" passes
    And query "LB-ALT-3ULN" is closed

  Scenario Outline: A sample collected <when> raises a query
    When the coordinator saves the "Screening" laboratory with:
      | item   | value         |
      | LBPERF | Y             |
      | LBDAT  | <sample date> |
      | K      | 4.2           |
    Then the check "LB-DAT-VISIT" fails
    And query "LB-DAT-VISIT" is open on LBDAT
    When the coordinator corrects LBDAT to 2026-01-03 on the "Screening" laboratory because "date of the requisition form"
    Then the check "LB-DAT-VISIT" passes
    And no query is open

    Examples:
      | when                       | sample date |
      | after the visit            | 2026-01-06  |
      | more than 3 days before it | 2026-01-01  |

  Scenario: Screening results older than 28 days at Day 1 raise a query on the sample date
    Given the coordinator saves the "Screening" laboratory with:
      | item   | value      |
      | LBPERF | Y          |
      | LBDAT  | 2026-01-05 |
      | K      | 4.2        |
      | CREAT  | 0.95       |
    When the "Day 1" visit took place on 2026-02-05
    Then the check "LB-SCR-WINDOW" fails
    And query "LB-SCR-WINDOW" is open on LBDAT
    When the "Day 1" visit date is corrected to 2026-02-02 because "randomization date taken from the IRT confirmation"
    Then the check "LB-SCR-WINDOW" passes
    And query "LB-SCR-WINDOW" is closed

  Scenario: Creatinine rising by more than 50% since screening raises a query
    Given the coordinator saves the "Screening" laboratory with:
      | item   | value      |
      | LBPERF | Y          |
      | LBDAT  | 2026-01-05 |
      | CREAT  | 0.90       |
    And the "Day 1" visit took place on 2026-02-02
    And the "Week 4" visit took place on 2026-03-02
    When the coordinator saves the "Week 4" laboratory with:
      | item   | value      |
      | LBPERF | Y          |
      | LBDAT  | 2026-03-02 |
      | CREAT  | 1.50       |
    Then the check "LB-CREAT-RISE" fails
    And query "LB-CREAT-RISE" is open on CREAT
    When the coordinator corrects CREAT to 1.10 on the "Week 4" laboratory because "unit conversion error"
    Then the check "LB-CREAT-RISE" passes
    And no query is open
