@uat @HTN-201
Feature: Eligibility and enrolment at Day 1
  UAT script HTN-201-UAT-04, protocol 1.0 section 5 (inclusion IN01-IN04, exclusion EX01-EX06).
  The subject is enrolled at the Day 1 visit only when every criterion is met on the data entered;
  the eligibility confirmation form must agree with the inclusion and exclusion answers.

  Background: a 57-year-old man, eligible on every screening measurement
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

  Scenario: An eligible subject is enrolled at Day 1
    When the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Yes   |
      | IEEXC02 | No    |
      | IEEXC04 | No    |
      | IEYN    | Yes   |
    Then no query is open
    And criterion "IN01, IN02, IN03, IN04, EX01, EX02, EX03, EX04, EX05, EX06" is met
    And the subject can be enrolled
    When the investigator enrols the subject on 2026-02-02
    Then the subject is enrolled

  Scenario: Eligibility cannot be decided while the confirmation form is incomplete
    When the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Y     |
    Then eligibility cannot be decided without "EX02, EX04"
    When the investigator enrols the subject on 2026-02-02
    Then the enrolment is refused with "eligibility cannot be decided"
    And the subject is in screening

  Scenario Outline: A subject who does not meet <criterion> at screening cannot be enrolled
    Given the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Y     |
      | IEEXC02 | N     |
      | IEEXC04 | N     |
      | IEYN    | Y     |
    When the coordinator corrects <item> to <value> on the "Screening" <form> because "corrected against the source"
    Then criterion "<criterion>" is not met
    And the subject cannot be enrolled because "<criterion>"
    When the investigator enrols the subject on 2026-02-02
    Then the enrolment is refused with "<criterion>"

    Examples:
      | criterion | form         | item    | value      |
      | IN01      | demographics | BRTHDAT | 1949-05-20 |
      | IN02      | vital signs  | SYSBP   | 184        |
      | EX01      | vital signs  | DIABP   | 112        |
      | EX03      | laboratory   | K       | 5.4        |
      | EX06      | laboratory   | CREAT   | 1.80       |

  Scenario Outline: A subject answered <answer> to <item> on the confirmation form cannot be enrolled
    When the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value   |
      | IEINC03 | <inc03> |
      | IEEXC02 | <exc02> |
      | IEEXC04 | <exc04> |
      | IEYN    | No      |
    Then no query is open
    And the subject cannot be enrolled because "<criterion>"

    Examples:
      | criterion | item    | answer | inc03 | exc02 | exc04 |
      | IN03      | IEINC03 | No     | N     | N     | N     |
      | EX02      | IEEXC02 | Yes    | Y     | Y     | N     |
      | EX04      | IEEXC04 | Yes    | Y     | N     | Y     |

  Scenario: Consent that cannot be found makes the subject ineligible
    Given the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Y     |
      | IEEXC02 | N     |
      | IEEXC04 | N     |
      | IEYN    | Y     |
    When the coordinator clears ICDAT on the "Screening" informed consent because "signed ICF not in the site file"
    Then the subject cannot be enrolled because "IN04"

  Scenario: A woman who is pregnant or breastfeeding cannot be enrolled
    Given the coordinator corrects the "Screening" demographics because "sex recorded wrongly at screening":
      | item     | value  |
      | SEX      | Female |
      | CHILDPOT | Yes    |
    When the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Y     |
      | IEEXC02 | N     |
      | IEEXC04 | N     |
      | IEYN    | N     |
    Then eligibility cannot be decided without "EX05"
    When the coordinator enters IEEXC05 Yes on the "Day 1" eligibility confirmation
    Then the subject cannot be enrolled because "EX05"

  Scenario: The confirmation cannot say eligible when inclusion 3 is not met
    When the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | N     |
      | IEEXC02 | N     |
      | IEEXC04 | N     |
      | IEYN    | Y     |
    Then the check "IE-INC03-CONSISTENT" fails
    And query "IE-INC03-CONSISTENT" is open on IEYN
    When the coordinator corrects IEYN to N on the "Day 1" eligibility confirmation because "subject not eligible"
    Then the check "IE-INC03-CONSISTENT" passes
    And query "IE-INC03-CONSISTENT" is closed
    And the subject cannot be enrolled because "IN03"

  Scenario: The confirmation cannot say eligible when an exclusion applies
    When the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Y     |
      | IEEXC02 | N     |
      | IEEXC04 | Y     |
      | IEYN    | Y     |
    Then the check "IE-EXC-CONSISTENT" fails
    And query "IE-EXC-CONSISTENT" is open on IEYN
    When the coordinator corrects IEEXC04 to N on the "Day 1" eligibility confirmation because "stroke was 14 months ago"
    Then the check "IE-EXC-CONSISTENT" passes
    And the subject can be enrolled

  Scenario: More than 28 days between screening and Day 1 requires rescreening
    Given the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Y     |
      | IEEXC02 | N     |
      | IEEXC04 | N     |
      | IEYN    | Y     |
    When the "Day 1" visit date is corrected to 2026-02-04 because "randomization happened two days later"
    Then the check "IE-SCR-WINDOW" fails
    And query "IE-SCR-WINDOW" is open on IEYN
    And the "Screening" visit is out of window
    When the "Day 1" visit date is corrected to 2026-02-02 because "IRT confirmation shows 2 February"
    Then the check "IE-SCR-WINDOW" passes
    And the "Screening" visit is within its window
    And no query is open

  Scenario: A screen failure closes the casebook to new visit data
    Given the coordinator corrects SYSBP to 184 on the "Screening" vital signs because "mean of three readings recalculated"
    And the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Y     |
      | IEEXC02 | N     |
      | IEEXC04 | N     |
      | IEYN    | N     |
    And the subject cannot be enrolled because "IN02"
    When the investigator records a screen failure on 2026-02-02 because "SBP above 179 mmHg at screening"
    Then the subject is screen failed
    When the coordinator enters PULSE 70 on the "Day 1" vital signs
    Then the save is refused with "failed screening"

  Scenario: A screen failure's screening data are still corrected with a reason, but no later visit is added
    Given the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | N     |
      | IEEXC02 | N     |
      | IEEXC04 | N     |
      | IEYN    | N     |
    And the investigator records a screen failure on 2026-02-02 because "hypertension diagnosed 6 weeks before screening"
    And the subject is screen failed
    When the monitor raises a query on PULSE on the "Screening" vital signs saying "Source says 78?"
    And the coordinator enters PULSE 78 on the "Screening" vital signs
    Then the save is refused with "needs a reason for change"
    When the coordinator corrects PULSE to 78 on the "Screening" vital signs because "transcription error"
    Then the save is accepted
    And PULSE on the "Screening" vital signs is 78
    When the coordinator answers query "Q-0101-001-001" with "Corrected from the source worksheet."
    And the data manager closes query "Q-0101-001-001" with "Correction verified."
    Then query "Q-0101-001-001" is closed
    When the "Week 2" visit took place on 2026-02-16
    Then the visit date is refused with "failed screening"
