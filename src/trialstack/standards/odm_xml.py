"""Namespace-aware reading of ODM elements: children, attributes, translated text, aliases, locations.

ODM 1.3.2 and 2.0 share most element names but differ in namespace; an `OdmXml` is bound to one
namespace so the parsers read either version with the same calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def source_line(element: etree._Element) -> int:
    """The 1-based line an element starts on (1 when lxml does not know it)."""
    line: object = getattr(element, "sourceline", None)
    return line if isinstance(line, int) and line > 0 else 1


def element_path(element: etree._Element) -> str:
    """A readable location such as /ODM/Study[@OID='S1']/MetaDataVersion/ItemDef[@OID='I.AGE']."""
    steps = []
    node: etree._Element | None = element
    while node is not None:
        name = etree.QName(node).localname
        oid = node.get("OID")
        if oid is not None:
            steps.append(f"{name}[@OID='{oid}']")
        else:
            parent = node.getparent()
            same = [sibling for sibling in parent if sibling.tag == node.tag] if parent is not None else [node]
            steps.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = node.getparent()
    return "/" + "/".join(reversed(steps))


@dataclass(frozen=True)
class Where:
    """Where a definition came from in the ODM file: its line and readable element path."""

    line: int
    path: str

    @classmethod
    def of(cls, element: etree._Element) -> Where:
        return cls(source_line(element), element_path(element))


def attr(element: etree._Element, name: str) -> str:
    """An attribute's text, "" when absent (the XSD already required the ones the importer needs)."""
    return str(element.get(name) or "")


def name_of(element: etree._Element) -> str:
    """The element's Name, whitespace-collapsed, falling back to its OID."""
    return clean(element.get("Name")) or attr(element, "OID")


def integer(value: str | None) -> int | None:
    """An ODM integer attribute (OrderNumber, Length), None when absent or not a number."""
    return int(value) if value is not None and value.strip().isdigit() else None


def clean(text: str | None) -> str | None:
    """Whitespace runs become one space (ODM texts are often indented across lines); empty is None."""
    collapsed = " ".join((text or "").split())
    return collapsed or None


class OdmXml:
    """Element access within one ODM namespace, with the study's preferred language for texts."""

    def __init__(self, namespace: str, language: str | None = None) -> None:
        self.namespace = namespace
        self.language = language

    def q(self, name: str) -> str:
        return f"{{{self.namespace}}}{name}"

    def all(self, element: etree._Element, name: str) -> list[etree._Element]:
        return list(element.iterchildren(self.q(name)))

    def one(self, element: etree._Element, name: str) -> etree._Element | None:
        return next(element.iterchildren(self.q(name)), None)

    def is_(self, element: etree._Element, name: str) -> bool:
        return element.tag == self.q(name)

    def text(self, element: etree._Element | None, name: str | None = None) -> str | None:
        """The text of a child `name` (or of `element`) that holds TranslatedText, in the preferred language.

        Preference: no xml:lang (the document's default), the study language, English, then the first.
        """
        holder = self.one(element, name) if element is not None and name is not None else element
        if holder is None:
            return None
        texts = [(node.get(XML_LANG), clean(node.text)) for node in self.all(holder, "TranslatedText")]
        texts = [(lang, text) for lang, text in texts if text]
        if not texts:
            return None
        wanted = [None, self.language, "en"]
        for preference in wanted:
            for lang, text in texts:
                if lang == preference or (preference and lang and lang.lower().startswith(preference + "-")):
                    return text
        return texts[0][1]

    def plain(self, element: etree._Element, name: str) -> str | None:
        """The text of a plain child element (StudyName, CheckValue), whitespace-collapsed."""
        child = self.one(element, name)
        return clean(child.text) if child is not None else None

    def aliases(self, element: etree._Element) -> dict[str, str]:
        """Alias Context -> Name; ODM allows one alias per context on an element."""
        return {alias.get("Context", ""): alias.get("Name", "") for alias in self.all(element, "Alias")}
