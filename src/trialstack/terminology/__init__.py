"""Standard vocabularies the protocol and the contexts share: UCUM units (with the spellings laboratories send) and
the NCI CTCAE v5.0 grading criteria. Reference data with pure functions, no business context: the protocol's
validator checks a study's units and CTCAE terms with them, and `labs` converts and grades with the same."""
