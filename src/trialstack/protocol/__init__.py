"""The protocol as data: StudyDefinition, StudyVersion, loaders, amendments and the rule language."""
