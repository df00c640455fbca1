"""Read an ODM file safely, tell 1.3.2 from 2.0 by its namespace, and validate it against the CDISC XSD.

Validation comes first: nothing is mapped from a file the official schema rejects, and every schema
error is reported with its line. The XSDs are not shipped with TrialStack (they are CDISC's); they are
looked up in `TRIALSTACK_STANDARDS_DATA` or in `../shared/data` beside the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from lxml import etree

from trialstack.errors import TrialStackError
from trialstack.protocol.problems import StudyDefinitionError, StudyProblem
from trialstack.standards.odm_xml import element_path, source_line

OdmVersion = Literal["1.3.2", "2.0"]
ODM_NAMESPACES: dict[str, OdmVersion] = {
    "http://www.cdisc.org/ns/odm/v1.3": "1.3.2",
    "http://www.cdisc.org/ns/odm/v2.0": "2.0",
}
NAMESPACE_OF: dict[OdmVersion, str] = {version: namespace for namespace, version in ODM_NAMESPACES.items()}
_SCHEMA_FILES: dict[OdmVersion, tuple[str, str]] = {
    "1.3.2": ("cdisc-odm-1.3.2-schema", "ODM1-3-2.xsd"),
    "2.0": ("cdisc-odm-2.0-schema", "ODM.xsd"),
}
_ROOTS = frozenset({"ODM", "MetaDataVersion"})


class StandardsDataMissing(TrialStackError):
    """The CDISC schema files needed to validate a file are not where TrialStack looks for them."""

    code = "standards-data-missing"


def standards_data_dir() -> Path:
    """`TRIALSTACK_STANDARDS_DATA`, else `../shared/data` beside the repository root."""
    configured = os.environ.get("TRIALSTACK_STANDARDS_DATA")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


@cache
def _schema(version: OdmVersion, directory: Path) -> etree.XMLSchema:
    folder, root = _SCHEMA_FILES[version]
    path = directory / folder / root
    if not path.is_file():
        raise StandardsDataMissing(
            f"cannot validate ODM {version}: the CDISC XSD {path} is missing; put the schema set in "
            f"{directory / folder} or point TRIALSTACK_STANDARDS_DATA at the folder that holds {folder}/"
        )
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def odm_schema(version: OdmVersion) -> etree.XMLSchema:
    """The compiled XSD of an ODM version (compiled once per process)."""
    return _schema(version, standards_data_dir())


def _parser() -> etree.XMLParser:
    # No DTDs, entities or network: a study file is data, never a reason to fetch or expand anything. Without
    # huge_tree, libxml2 also refuses nesting deeper than 256 elements and text nodes over 10 MB.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
    )


def _doctype_problem(data: bytes, file: str) -> StudyProblem | None:
    """ODM has no DTD: a DOCTYPE (the carrier of entity expansion, external entities and DTD fetching) is
    refused before the parser sees it."""
    found = data.find(b"<!DOCTYPE")  # legal only before the root; anywhere else it is no ODM either
    if found < 0:
        return None
    line = data.count(b"\n", 0, found) + 1
    column = found - (data.rfind(b"\n", 0, found) + 1) + 1
    message = "a DOCTYPE is not allowed in a study file: ODM needs no DTD, and entities are never expanded or fetched"
    return _problem(file, line, column, "/", message)


@dataclass(frozen=True)
class OdmDocument:
    """A parsed, schema-valid ODM file: its tree, version, and the file name for messages."""

    tree: etree._ElementTree
    version: OdmVersion
    file: str

    @property
    def root(self) -> etree._Element:
        return self.tree.getroot()


def _problem(file: str, line: int | None, column: int | None, where: str, message: str) -> StudyProblem:
    return StudyProblem(file, max(line or 1, 1), max(column or 1, 1), where, message)


def parse_odm(data: bytes, file: str) -> OdmDocument:
    """Parse and schema-validate ODM bytes; StudyDefinitionError with every located problem otherwise."""
    doctype = _doctype_problem(data, file)
    if doctype is not None:
        raise StudyDefinitionError(file, [doctype])
    try:
        tree = etree.ElementTree(etree.fromstring(data, _parser()))
    except etree.XMLSyntaxError as error:
        line, column = error.position if error.position else (error.lineno, 0)
        message = f"not well-formed XML: {error.msg}"
        if "encoding" in error.msg.lower() or "utf-8" in error.msg.lower():
            message += " (the bytes are not in the encoding the XML declaration names, UTF-8 when it names none)"
        raise StudyDefinitionError(file, [_problem(file, line, column, "/", message)]) from None
    root = tree.getroot()
    qname = etree.QName(root)
    version = ODM_NAMESPACES.get(qname.namespace or "")
    if version is None or qname.localname not in _ROOTS:
        expected = " or ".join(f"{{{namespace}}}ODM" for namespace in ODM_NAMESPACES)
        raise StudyDefinitionError(
            file,
            [
                _problem(
                    file, source_line(root), 1, "/", f"root element {root.tag} is not CDISC ODM (expected {expected})"
                )
            ],
        )
    validate_odm(tree, version, file)
    return OdmDocument(tree, version, file)


def validate_odm(tree: etree._ElementTree, version: OdmVersion, file: str) -> None:
    """Raise StudyDefinitionError listing every XSD violation with its line, or return."""
    schema = odm_schema(version)
    if schema.validate(tree):
        return
    namespace = NAMESPACE_OF[version]
    problems = [
        _problem(
            file,
            entry.line,
            entry.column + 1,
            _readable(tree, entry.path),
            f"ODM {version} XSD: {entry.message.replace('{' + namespace + '}', '')}",
        )
        for entry in cast(Iterable[Any], schema.error_log)
    ]
    raise StudyDefinitionError(file, problems)


def _readable(tree: etree._ElementTree, path: str | None) -> str:
    """The schema's positional XPath (/*/*[3]/*) as a path with names and OIDs."""
    try:
        found = tree.xpath(path) if path else []
    except etree.XPathError:
        return path or "/"
    return (
        element_path(found[0])
        if isinstance(found, list) and found and isinstance(found[0], etree._Element)
        else path or "/"
    )
