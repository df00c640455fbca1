"""Consent document text: read from the files beside the study, and split into the sections a participant reads.

Sections are the document's second-level headings (`## Title` in Markdown, `<h2>` in HTML); text before the first
heading is an introduction. HTML is reduced to the Markdown it can say (paragraphs, lists, emphasis, headings) so
that every page and the signed copy render one safe form of it, never the study's raw markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import html as lxml_html

from trialstack.protocol.problems import Finding

MAX_TEXT_BYTES = 2 * 1024 * 1024
_HEADING = re.compile(r"^##(?!#)\s*(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Section:
    number: int
    title: str
    markdown: str


def resolve_text_files(data: Any, base_dir: Path | None, attached: Mapping[str, str] | None = None) -> list[Finding]:
    """Replace each `file:` of a consent text by the file's content as `text` (the name is kept as `file`).

    Line endings become LF, so the text's SHA-256 does not depend on the platform that saved or uploaded it.

    Files are read from `base_dir` (the study file's folder), or taken from `attached` (name → text, as uploaded
    beside the study on the build page, matched by path or by file name).
    """
    findings: list[Finding] = []
    documents = data.get("consent") if isinstance(data, dict) else None
    if not isinstance(documents, list):
        return findings
    for d, document in enumerate(documents):
        versions = document.get("versions") if isinstance(document, dict) else None
        for v, version in enumerate(versions if isinstance(versions, list) else []):
            texts = version.get("texts") if isinstance(version, dict) else None
            for t, entry in enumerate(texts if isinstance(texts, list) else []):
                if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or "text" in entry:
                    continue
                pointer = f"/consent/{d}/versions/{v}/texts/{t}/file"
                text, problem = (
                    _attached(entry["file"], attached) if attached is not None else _read(entry["file"], base_dir)
                )
                if problem is not None:
                    findings.append(Finding(pointer, problem))
                    continue
                entry["text"] = text.replace("\r\n", "\n")
                if "format" not in entry and entry["file"].lower().endswith((".html", ".htm")):
                    entry["format"] = "html"
    return findings


def _attached(name: str, attached: Mapping[str, str]) -> tuple[str, str | None]:
    found = attached.get(name)
    if found is None:
        found = next((text for key, text in attached.items() if Path(key).name == Path(name).name), None)
    if found is None:
        given = ", ".join(sorted(attached)) or "none"
        return "", f"consent text '{name}' was not attached with the study file (attached: {given})"
    return found.removeprefix("\ufeff"), None


def _read(name: str, base_dir: Path | None) -> tuple[str, str | None]:
    if base_dir is None:
        return "", f"cannot read consent text '{name}': a study given as text alone must carry it inline as `text:`"
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        return "", f"consent text '{name}' must be a path inside the study's folder"
    path = base_dir / relative
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            return "", f"consent text '{name}' is larger than {MAX_TEXT_BYTES // (1024 * 1024)} MB"
        data = path.read_bytes()
    except FileNotFoundError:
        return "", f"consent text file '{name}' not found next to the study file (looked at {path})"
    except OSError as error:
        return "", f"cannot read consent text '{name}': {error.strerror}"
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), None
    except UnicodeDecodeError as error:
        return "", f"consent text '{name}' is not UTF-8 (byte {error.start})"


def split_sections(text: str, title: str, *, html: bool = False) -> tuple[Section, ...]:
    """The sections of a document, numbered from 1; an untitled introduction takes the document's title."""
    markdown = html_to_markdown(text) if html else text
    parts: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] = (title, [])
    for line in markdown.splitlines():
        heading = _HEADING.match(line)
        if heading:
            if "".join(current[1]).strip() or parts:
                parts.append(current)
            current = (heading.group(1), [])
        elif not line.startswith("# ") or current[1]:
            current[1].append(line)
    parts.append(current)
    return tuple(Section(n, name, "\n".join(lines).strip()) for n, (name, lines) in enumerate(parts, start=1) if name)


_BLOCKS = {"p": "", "h1": "# ", "h2": "## ", "h3": "### ", "h4": "#### "}
_INLINE = {"strong": "**", "b": "**", "em": "*", "i": "*"}


def html_to_markdown(text: str) -> str:
    """The allowed structure of an HTML document as Markdown; scripts, styles and attributes are dropped."""
    if not text.strip():
        return ""
    root: Any = lxml_html.document_fromstring(text)
    for bad in list(root.iter("script", "style", "head")):
        bad.drop_tree()
    body = root.find("body")
    blocks: list[str] = []
    for element in (body if body is not None else root).iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _BLOCKS and not _inside(element, ("li",)):
            blocks.append(_BLOCKS[tag] + _inline(element))
        elif tag == "li":
            parent = element.getparent()
            marker = "1. " if parent is not None and parent.tag == "ol" else "- "
            blocks.append(marker + _inline(element))
    return "\n\n".join(block for block in blocks if block.strip()) + "\n"


def _inside(element: Any, tags: tuple[str, ...]) -> bool:
    return any(parent.tag in tags for parent in element.iterancestors())


def _inline(element: Any) -> str:
    pieces = [_escape(element.text or "")]
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        inner = _inline(child) if tag not in ("ul", "ol") else ""
        mark = _INLINE.get(tag, "")
        pieces.append(f"{mark}{inner.strip()}{mark}" if mark and inner.strip() else ("\n" if tag == "br" else inner))
        pieces.append(_escape(child.tail or ""))
    return re.sub(r"[ \t\r\f\v]+", " ", "".join(pieces)).strip()


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#])", r"\\\1", text)
