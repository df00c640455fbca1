@uat @HTN-201
Feature: Drug supply: kit lists, shipments, quarantine, dispensing and resupply
  UAT script HTN-201-UAT-14, protocol 1.0 section 6.4 (study drug supply) and the IRT specification.
  Kits of zelvoprin or placebo (identical packaging) are registered at the depot DEPOT_US from the vendor's kit
  list; the IRT ships each site its stock, first expiry first out, and keeps it between 3 and 8 usable kits of each
  treatment, counting the kits the site's subjects need at visits due in the next 14 days. A shipment received
  with a temperature excursion waits in quarantine until the supply manager assesses it. One kit is dispensed at
  Day 1, Week 4 and Week 8 (the kit the system assigns for the subject's treatment), never one that expires within
  30 days of the visit. Site staff handle kit numbers only: no step below shows them a treatment.

  Background: a subject in screening at site 0101, eligible on every screening measurement
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

  Scenario: The initial shipment arrives with a temperature excursion; its kits are dispensed only once released
    Given the supply manager generates 8 kits per treatment at depot "DEPOT_US", lot "LOT-A01" expiring on 2027-06-30, numbered from 1001
    When the system checks the drug stock of site "0101" on 2026-01-12
    Then a resupply shipment "SH-0001" of 16 kits to site "0101" was requested
    And kit "1001" is in transit
    Given the depot dispatches shipment "SH-0001" on 2026-01-13
    When the coordinator receives shipment "SH-0001" on 2026-01-15 with a temperature excursion: "data logger 11.2 °C for 3 h 40 min"
    Then the receipt is accepted
    And kits "1001, 1008, 1016" are quarantined
    And site "0101" has 0 kits available
    Given the "Day 1" visit took place on 2026-02-02
    And the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Yes   |
      | IEEXC02 | No    |
      | IEEXC04 | No    |
      | IEYN    | Yes   |
    And the investigator enrols the subject on 2026-02-02
    And the coordinator enters SYSBP 150 on the "Day 1" vital signs
    And the coordinator randomizes the subject
    When the coordinator dispenses kit "1001" to the subject at the "Day 1" visit
    Then the dispensing is refused with "kit 1001 is in quarantine until it is assessed"
    When the coordinator dispenses the subject's kit at the "Day 1" visit
    Then the dispensing is refused with "site 0101 has no usable kit"
    When the supply manager releases the kits of shipment "SH-0001" on 2026-02-02 because "within the product's stability data: up to 25 °C for 72 h"
    Then kits "1001, 1008, 1016" are available
    When the coordinator dispenses the subject's kit at the "Day 1" visit
    Then the dispensing is accepted
    And site "0101" has 15 kits available
    And the allocation is not visible to the coordinator

  Scenario: A kit expiring within 30 days of the visit is never dispensed
    Given the supply manager imports the kit list "HTN-201-kits-batch-1.csv" at depot "DEPOT_US":
      | kit  | treatment | lot     | expiry     |
      | 1001 | ZEL       | LOT-S01 | 2026-03-20 |
      | 1002 | PBO       | LOT-S01 | 2026-03-20 |
      | 1003 | ZEL       | LOT-S01 | 2026-03-20 |
      | 1004 | PBO       | LOT-S01 | 2026-03-20 |
      | 2001 | ZEL       | LOT-A01 | 2027-06-30 |
      | 2002 | PBO       | LOT-A01 | 2027-06-30 |
      | 2003 | ZEL       | LOT-A01 | 2027-06-30 |
      | 2004 | PBO       | LOT-A01 | 2027-06-30 |
    And the system checks the drug stock of site "0101" on 2026-01-12
    And the depot dispatches shipment "SH-0001" on 2026-01-13
    And the coordinator receives shipment "SH-0001" on 2026-01-15
    And the "Day 1" visit took place on 2026-02-02
    And the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Yes   |
      | IEEXC02 | No    |
      | IEEXC04 | No    |
      | IEYN    | Yes   |
    And the investigator enrols the subject on 2026-02-02
    And the coordinator enters SYSBP 150 on the "Day 1" vital signs
    And the coordinator randomizes the subject
    When the coordinator dispenses the subject's kit at the "Day 1" visit
    Then the kit dispensed at the "Day 1" visit is from lot "LOT-S01"
    When the "Week 4" visit took place on 2026-03-02
    And the coordinator records the return of the kit dispensed at the "Day 1" visit as "partly used" with 4 tablets left
    And the coordinator dispenses kit "1003" to the subject at the "Week 4" visit
    Then the dispensing is refused with "kit 1003 expires on 2026-03-20, within the 30 do-not-dispense days"
    When the coordinator dispenses kit "1004" to the subject at the "Week 4" visit
    Then the dispensing is refused with "kit 1004 expires on 2026-03-20, within the 30 do-not-dispense days"
    When the coordinator dispenses the subject's kit at the "Week 4" visit
    Then the dispensing is accepted
    And the kit dispensed at the "Week 4" visit is from lot "LOT-A01"
    And kits "1003, 1004" are available

  Scenario Outline: A kit list with a bad line is refused whole, naming the line (<problem>)
    When the supply manager imports the kit list "HTN-201-kits-batch-2.csv" at depot "DEPOT_US":
      | kit    | treatment   | lot     | expiry     |
      | 1001   | ZEL         | LOT-A01 | 2027-06-30 |
      | 1002   | PBO         | LOT-A01 | 2027-06-30 |
      | <kit3> | <treatment> | LOT-A01 | <expiry>   |
    Then the kit list is refused with "<message>"
    And no kit is registered

    Examples:
      | problem                   | kit3 | treatment | expiry     | message                                                                        |
      | a duplicate kit number    | 1002 | ZEL       | 2027-06-30 | HTN-201-kits-batch-2.csv line 4: kit number 1002 is a duplicate of line 3      |
      | an unknown treatment      | 1003 | ZEL-10    | 2027-06-30 | HTN-201-kits-batch-2.csv line 4: treatment 'ZEL-10' of kit 1003 is not an arm  |
      | an expiry that is no date | 1003 | PBO       | 2027-02-30 | HTN-201-kits-batch-2.csv line 4: expiry '2027-02-30' of kit 1003 is not a date |

  Scenario: The stock check ships ahead of the subjects about to be randomized
    Given the supply manager generates 12 kits per treatment at depot "DEPOT_US", lot "LOT-A01" expiring on 2027-06-30, numbered from 1001
    And the supply manager requests 3 kits per treatment for site "0101" on 2026-01-12
    And the depot dispatches shipment "SH-0001" on 2026-01-13
    And the coordinator receives shipment "SH-0001" on 2026-01-15
    Then a manual shipment "SH-0001" of 6 kits to site "0101" was requested
    When the system checks the drug stock of site "0101" on 2026-01-16
    Then a resupply shipment "SH-0002" of 12 kits to site "0101" was requested

  Scenario: Dispensing that takes the site below its minimum triggers a resupply
    Given the supply manager generates 12 kits per treatment at depot "DEPOT_US", lot "LOT-A01" expiring on 2027-06-30, numbered from 1001
    And the supply manager requests 3 kits per treatment for site "0101" on 2026-01-12
    And the depot dispatches shipment "SH-0001" on 2026-01-13
    And the coordinator receives shipment "SH-0001" on 2026-01-15
    And the "Day 1" visit took place on 2026-02-02
    And the coordinator saves the "Day 1" eligibility confirmation with:
      | item    | value |
      | IEINC03 | Yes   |
      | IEEXC02 | No    |
      | IEEXC04 | No    |
      | IEYN    | Yes   |
    And the investigator enrols the subject on 2026-02-02
    And the coordinator enters SYSBP 150 on the "Day 1" vital signs
    And the coordinator randomizes the subject
    And there is no shipment "SH-0002"
    When the coordinator dispenses the subject's kit at the "Day 1" visit
    Then the dispensing is accepted
    And site "0101" has 5 kits available
    # 6 kits of the treatment now below its minimum, and one of the other, so no shipment holds a single treatment
    And a resupply shipment "SH-0002" of 7 kits to site "0101" was requested
    And the allocation is not visible to the monitor
