"""The bdd context: a study's Gherkin specifications, run against a study build through the real handlers.

There is no aggregate here, so the context does not have the five-module shape: `features` parses, `registry`
matches steps, `steps_*` hold the step library, `runner` executes scenarios in throwaway ledgers, and `coverage`,
`junit`, `html` and `gate` turn a run into evidence. Its one event (`events.SpecificationGateOverridden`) records
that a StudyVersion was published although its specification failed.
"""
