"""Converters between the StudyDefinition and CDISC standards: ODM 1.3.2 / 2.0 and USDM v4.

Pure functions over files and models: nothing here touches the ledger or a database. Importers
return a definition plus the warnings a study builder must read (what was defaulted or not mapped);
every problem that stops an import is a located `StudyDefinitionError`.
"""
