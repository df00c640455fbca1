"""USDM narrative text (HTML with `<usdm:tag name="..."/>` parameters) as plain, readable text.

Eligibility criterion texts are syntax templates: `at least <usdm:tag name="min_age"/> years`, with the
tag resolved through a dictionary whose parameter maps point (`<usdm:ref klass id attribute>`) at a
value elsewhere in the file. The HTML is read with lxml, never with regular expressions.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from lxml import etree, html

from trialstack.standards.usdm_model import SyntaxTemplateDictionary

Lookup = Callable[[str, str], object]  # (object id, attribute) -> value, None when absent


def _value_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return "" if value is None else str(value)


def resolve_reference(reference: str, lookup: Lookup) -> str | None:
    """The value a `<usdm:ref klass=".." id=".." attribute=".."/>` points at, as text; None if unresolved."""
    try:
        node = html.fragment_fromstring(reference, create_parent="div")
    except etree.ParserError:
        return None
    for ref in node.iter():
        if isinstance(ref.tag, str) and ref.tag.endswith("ref") and ref.get("id") and ref.get("attribute"):
            value = lookup(str(ref.get("id")), str(ref.get("attribute")))
            return None if value is None else _value_text(value)
    return None


def plain_text(text: str, dictionary: SyntaxTemplateDictionary | None, lookup: Lookup) -> str:
    """`text` without markup, its template tags replaced by their values (or kept as [tag] when unknown)."""
    if not text.strip():
        return ""
    try:
        root = html.fragment_fromstring(text, create_parent="div")
    except etree.ParserError:
        return " ".join(text.split())
    maps = {entry.tag: entry.reference for entry in dictionary.parameter_maps} if dictionary else {}
    for tag in list(root.iter()):
        if isinstance(tag.tag, str) and tag.tag.endswith("tag") and tag.get("name"):
            name = str(tag.get("name"))
            value = resolve_reference(maps[name], lookup) if name in maps else None
            tag.text = value if value is not None else f"[{name}]"
    for block in root.iter("p", "li", "br"):
        block.tail = " " + (block.tail or "")
    return " ".join(root.text_content().split())
