@uat @HTN-201
Feature: Schedule of assessments and visit windows
  UAT script HTN-201-UAT-05, protocol 1.0 section 6. Study day 1 is Day 1 / Randomization; each
  visit's window counts calendar days around its nominal day. A visit outside its window raises a
  query as soon as the Day 1 date is known; dates in the future are refused.

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

  Scenario: Screening 28 days before Day 1 is within its window
    When the "Day 1 / Randomization" visit took place on 2026-02-02
    Then the "Screening" visit is within its window
    And the "DAY1" visit is within its window
    And no query is open

  Scenario Outline: <visit> on study day <day> is within its window
    Given the "Day 1" visit took place on 2026-02-02
    When the "<visit>" visit took place on <date>
    Then the visit is within its window
    When the coordinator saves the "<visit>" vital signs with:
      | item   | value  |
      | VSDAT  | <date> |
      | SYSBP  | 148    |
      | DIABP  | 88     |
      | PULSE  | 70     |
      | WEIGHT | 83.6   |
    Then no query is open

    Examples:
      | visit                      | date       | day |
      | Week 2                     | 2026-02-16 | 15  |
      | Week 4                     | 2026-02-27 | 26  |
      | Week 8                     | 2026-04-04 | 62  |
      | Week 12 / End of Treatment | 2026-04-20 | 78  |

  Scenario Outline: <visit> outside its window raises a query that a corrected date closes
    Given the "Day 1" visit took place on 2026-02-02
    When the "<visit>" visit took place on <late date>
    Then the visit is out of window
    And query "<check>" is open on visit date
    When the "<visit>" visit date is corrected to <source date> because "date transcribed from the wrong page"
    Then the visit is within its window
    And query "<check>" is closed

    Examples:
      | visit   | late date  | source date | check         |
      | Week 2  | 2026-02-20 | 2026-02-19  | WEEK2-WINDOW  |
      | Week 4  | 2026-02-26 | 2026-02-27  | WEEK4-WINDOW  |
      | Week 8  | 2026-04-05 | 2026-04-04  | WEEK8-WINDOW  |
      | Week 12 | 2026-05-05 | 2026-05-04  | WEEK12-WINDOW |

  Scenario: A visit recorded before Day 1 is placed when the Day 1 date arrives
    Given the "Week 2" visit took place on 2026-01-20
    And no query is open
    When the "Day 1" visit took place on 2026-02-02
    Then the "Week 2" visit is out of window
    And query "WEEK2-WINDOW" is open on visit date

  Scenario: A visit date in the future is refused
    Given the "Day 1" visit took place on 2026-02-02
    And today is 2026-02-10
    When the "Week 2" visit took place on 2026-02-16
    Then the visit date is refused with "is in the future (today is 2026-02-10)"
    When today is 2026-02-16
    And the "Week 2" visit took place on 2026-02-16
    Then the visit date is accepted

  Scenario: Changing a recorded visit date needs a reason for change
    Given the "Day 1" visit took place on 2026-02-02
    And the "Week 2" visit took place on 2026-02-16
    When the "Week 2" visit took place on 2026-02-17
    Then the visit date is refused with "needs a reason for change"

  Scenario: Unscheduled visits are numbered and take vital signs and laboratory samples
    Given the "Day 1" visit took place on 2026-02-02
    When the "Unscheduled 1" visit took place on 2026-02-09
    And the coordinator saves the "Unscheduled 1" vital signs with:
      | item   | value      |
      | VSDAT  | 2026-02-09 |
      | SYSBP  | 176        |
      | DIABP  | 101        |
      | PULSE  | 88         |
      | WEIGHT | 84.0       |
    And the "UNSCHED.2" visit took place on 2026-02-11
    And the coordinator saves the "Unscheduled 2" laboratory with:
      | item   | value      |
      | LBPERF | Y          |
      | LBDAT  | 2026-02-11 |
      | K      | 4.4        |
      | CREAT  | 1.00       |
    Then no query is open
    And BMI on UNSCHED.1.VS is 27.1
