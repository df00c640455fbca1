@uat @HTN-201
Feature: Prior and concomitant medications log
  UAT script HTN-201-UAT-07, CRF specification 1.0 (log form CM). A stopped medication needs an end
  date on or after its start date; a dose needs its unit.

  Background:
    Given subject "0102-001" is screened at site "0102" on 2026-01-07
    And the subject's consent to "ICF" version "1.0" was recorded on paper on 2026-01-07
    And the "Screening" visit took place on 2026-01-07

  Scenario: A documented medication raises no query
    When the coordinator saves the concomitant medication record 1 with:
      | item       | value                  |
      | CMTRT      | Amlodipine             |
      | Indication | Essential hypertension |
      | CMDSTXT    | 5                      |
      | Dose unit  | mg                     |
      | Frequency  | Once daily             |
      | Route      | Oral                   |
      | CMSTDAT    | 2024-06-01             |
      | CMONGO     | N                      |
      | CMENDAT    | 2026-01-06             |
    Then no query is open

  Scenario: A stopped medication needs an end date
    When the coordinator saves the concomitant medication record 1 with:
      | item    | value       |
      | CMTRT   | Paracetamol |
      | CMINDC  | Back pain   |
      | CMSTDAT | 2026-01-10  |
      | CMONGO  | N           |
    Then the check "CM-END-REQUIRED" fails
    And query "CM-END-REQUIRED" is open on CMENDAT
    When the coordinator enters CMENDAT 2026-01-12 on the concomitant medication record 1
    Then the check "CM-END-REQUIRED" passes
    And query "CM-END-REQUIRED" is closed

  Scenario: An end date before the start date raises a query
    When the coordinator saves the concomitant medication record 1 with:
      | item    | value      |
      | CMTRT   | Ibuprofen  |
      | CMINDC  | Knee pain  |
      | CMSTDAT | 2026-01-10 |
      | CMONGO  | N          |
      | CMENDAT | 2025-01-12 |
    Then the check "CM-END-GE-START" fails
    And query "CM-END-GE-START" is open on End date
    When the coordinator corrects CMENDAT to 2026-01-12 on the concomitant medication record 1 because "year typed wrongly"
    Then the check "CM-END-GE-START" passes
    And no query is open

  Scenario: A dose without a unit raises a query
    When the coordinator saves the concomitant medication record 1 with:
      | item    | value           |
      | CMTRT   | Atorvastatin    |
      | CMINDC  | Hyperlipidaemia |
      | CMDSTXT | 20              |
      | CMSTDAT | 2023-03-15      |
      | CMONGO  | Y               |
    Then the check "CM-DOSE-UNIT" fails
    And query "CM-DOSE-UNIT" is open on Dose unit
    When the coordinator enters CMDOSU mg on the concomitant medication record 1
    Then the check "CM-DOSE-UNIT" passes
    And query "CM-DOSE-UNIT" is closed

  Scenario: A negative dose raises a query
    When the coordinator saves the concomitant medication record 1 with:
      | item    | value           |
      | CMTRT   | Metformin       |
      | CMINDC  | Type 2 diabetes |
      | CMDSTXT | -500            |
      | CMDOSU  | mg              |
      | CMSTDAT | 2022-09-01      |
      | CMONGO  | Y               |
    Then the check "CM-CMDSTXT-RANGE" fails
    And query "CM-CMDSTXT-RANGE" is open on Dose per administration
    When the coordinator corrects CMDSTXT to 500 on the concomitant medication record 1 because "minus sign typed by mistake"
    Then the check "CM-CMDSTXT-RANGE" passes
    And query "CM-CMDSTXT-RANGE" is closed
