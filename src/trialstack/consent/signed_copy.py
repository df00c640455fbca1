"""The participant's copy of a signed informed consent, as a PDF that is the same bytes for the same consent.

`render_signed_copy` is a pure function of a `SignedCopy`: the header (study, site, subject, document, version,
language, effective date, ethics approval, the document's SHA-256), every section's Markdown, the comprehension
answers, the optional-part choices, one block per signature, and "Page X of Y" on every page. Equal input gives
byte-identical output on any machine (ADR 0007): the font is vendored (DejaVu Sans, `fonts/`), the creation date
is the last signature's time (never the clock), the producer string is fixed, and fpdf2's file identifier is a hash
of the content. Markdown is rendered by markdown-it-py with raw HTML off (a `<tag>` in the text prints as typed)
and images off (a consent copy never fetches or embeds anything from outside the input).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF, FontFace, TextStyle
from fpdf.enums import XPos, YPos
from markdown_it import MarkdownIt

PRODUCER = "TrialStack signed consent copy 1"
FONTS = Path(__file__).parent / "fonts"
_FAMILY = "DejaVu"
_FACES = {
    "": "DejaVuSans.ttf",
    "B": "DejaVuSans-Bold.ttf",
    "I": "DejaVuSans-Oblique.ttf",
    "BI": "DejaVuSans-BoldOblique.ttf",
}
_BODY_PT = 11.0
_SMALL_PT = 9.0
_MARGIN_MM = 20.0
_LABEL_MM = 48.0
_LINE_MM = 5.6
_INK = (0, 0, 0)
_MUTED = (90, 90, 90)
_RULE = (150, 150, 150)


@dataclass(frozen=True)
class CopySection:
    title: str
    text: str
    """Markdown: paragraphs, lists, bold and italic, simple headings."""


@dataclass(frozen=True)
class CopyAnswer:
    question: str
    answer: str
    correct: bool


@dataclass(frozen=True)
class CopyChoice:
    """An optional part of the consent (e.g. storage of samples in a biobank) and whether it was agreed to."""

    text: str
    agreed: bool


@dataclass(frozen=True)
class CopySignature:
    role: str
    printed_name: str
    signed_at: str
    """ISO-8601 UTC, e.g. 2026-03-04T10:15:02.123456Z."""
    meaning: str


@dataclass(frozen=True)
class SignedCopy:
    study_id: str
    study_name: str
    site_id: str
    subject_id: str
    document_id: str
    title: str
    version: str
    language: str
    effective: str
    ethics_approval: str
    document_sha256: str
    sections: tuple[CopySection, ...]
    answers: tuple[CopyAnswer, ...]
    choices: tuple[CopyChoice, ...]
    signatures: tuple[CopySignature, ...]


def _parse_utc(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_utc(text: str) -> str:
    """`2026-03-04T10:15:02.123456Z` as `2026-03-04 10:15:02 UTC`; text that is no timestamp is shown as given."""
    moment = _parse_utc(text)
    return text if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _creation_date(copy: SignedCopy) -> datetime:
    """The last signature's time (the copy exists from then on); unsigned, the effective date; else the epoch."""
    signed = [moment for s in copy.signatures if (moment := _parse_utc(s.signed_at)) is not None]
    if signed:
        return max(signed).replace(microsecond=0)
    return (_parse_utc(copy.effective) or datetime(1970, 1, 1, tzinfo=UTC)).replace(microsecond=0)


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).disable("image")


def _tag_styles() -> dict[str, TextStyle | FontFace]:
    heading = {"h1": 13.0, "h2": 12.0, "h3": 11.5, "h4": _BODY_PT, "h5": _BODY_PT, "h6": _BODY_PT}
    styles: dict[str, TextStyle | FontFace] = {
        tag: TextStyle(font_family=_FAMILY, font_style="B", font_size_pt=size, color=_INK, t_margin=3, b_margin=1)
        for tag, size in heading.items()
    }
    styles["code"] = FontFace(family=_FAMILY)
    styles["pre"] = TextStyle(font_family=_FAMILY, t_margin=3)
    styles["blockquote"] = TextStyle(color=_MUTED, t_margin=2, b_margin=2, l_margin=8)
    styles["a"] = FontFace(color=(0, 0, 160), emphasis="UNDERLINE")
    return styles


class _CopyPDF(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-14)
        self.set_draw_color(*_RULE)
        self.line(self.l_margin, self.get_y() - 1, self.w - self.r_margin, self.get_y() - 1)
        self.set_font(_FAMILY, "", _SMALL_PT - 1)
        self.set_text_color(*_MUTED)
        width = self.w - self.l_margin - self.r_margin
        self.cell(width * 0.75, 5, self._footer_text, align="L")
        self.cell(width * 0.25, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(*_INK)


class _Writer:
    def __init__(self, copy: SignedCopy) -> None:
        self.copy = copy
        footer = (
            f"{copy.study_id} · site {copy.site_id} · subject {copy.subject_id} · {copy.document_id} v{copy.version}"
        )
        pdf = _CopyPDF(footer)
        for style, name in _FACES.items():
            pdf.add_font(_FAMILY, style, str(FONTS / name))
        pdf.set_producer(PRODUCER)
        pdf.set_creator(PRODUCER)
        pdf.set_creation_date(_creation_date(copy))
        pdf.set_title(f"{copy.title} (version {copy.version}): signed copy for {copy.subject_id}")
        pdf.set_subject(f"{copy.study_id} {copy.document_id} {copy.version} {copy.language}")
        pdf.set_lang(copy.language or "en")
        pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
        pdf.set_auto_page_break(auto=True, margin=_MARGIN_MM)
        pdf.add_page()
        self.pdf = pdf
        self.markdown = _markdown()

    @property
    def width(self) -> float:
        return float(self.pdf.w - self.pdf.l_margin - self.pdf.r_margin)

    def font(self, style: str = "", size: float = _BODY_PT) -> None:
        self.pdf.set_font(_FAMILY, style, size)

    def text(self, text: str, style: str = "", size: float = _BODY_PT, gap: float = 0.0) -> None:
        self.font(style, size)
        self.pdf.multi_cell(self.width, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if gap:
            self.pdf.ln(gap)

    def heading(self, text: str) -> None:
        if self.pdf.get_y() > self.pdf.h - self.pdf.b_margin - 25:
            self.pdf.add_page()
        self.pdf.ln(3)
        self.text(text, "B", 13.0)
        self.pdf.set_draw_color(*_RULE)
        self.pdf.line(self.pdf.l_margin, self.pdf.get_y() + 0.5, self.pdf.w - self.pdf.r_margin, self.pdf.get_y() + 0.5)
        self.pdf.ln(2.5)

    def field(self, label: str, value: str, size: float = _BODY_PT) -> None:
        self.font("B", _BODY_PT)
        top, page = self.pdf.get_y(), self.pdf.page_no()
        self.pdf.multi_cell(_LABEL_MM, _LINE_MM, label, new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.font("", size)
        self.pdf.multi_cell(self.width - _LABEL_MM, _LINE_MM, value or "—", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if self.pdf.page_no() == page and self.pdf.get_y() < top + _LINE_MM:
            self.pdf.set_y(top + _LINE_MM)

    def markdown_text(self, text: str) -> None:
        html = self.markdown.render(text)
        if not html.strip():
            return
        self.font("", _BODY_PT)
        self.pdf.write_html(
            html,
            font_family=_FAMILY,
            tag_styles=_tag_styles(),
            li_prefix_color=_INK,
            ul_bullet_char="•",
            warn_on_tags_not_matching=False,
        )
        self.pdf.set_text_color(*_INK)

    def render(self) -> bytes:
        copy = self.copy
        self.text("Signed informed consent: participant's copy", "", _SMALL_PT)
        self.pdf.ln(1)
        self.text(copy.title, "B", 16.0, gap=3)
        self.field("Study", f"{copy.study_name} ({copy.study_id})" if copy.study_name else copy.study_id)
        self.field("Site", copy.site_id)
        self.field("Subject", copy.subject_id)
        self.field("Document", copy.document_id)
        self.field("Version", copy.version)
        self.field("Language", copy.language)
        self.field("Effective", copy.effective)
        self.field("Ethics approval", copy.ethics_approval)
        self.field("Document SHA-256", copy.document_sha256, size=_SMALL_PT - 0.5)
        for section in copy.sections:
            self.heading(section.title)
            self.markdown_text(section.text)
        if copy.answers:
            self.heading("Comprehension questions")
            for number, answer in enumerate(copy.answers, start=1):
                self.text(f"{number}. {answer.question}", "B")
                self.field("Answer given", answer.answer)
                self.field("Assessment", "Correct" if answer.correct else "Not correct: discussed with the participant")
                self.pdf.ln(1.5)
        if copy.choices:
            self.heading("Optional parts")
            for choice in copy.choices:
                self.text(choice.text)
                self.field("Agreed", "Yes" if choice.agreed else "No")
                self.pdf.ln(1.5)
        self.heading("Signatures")
        if not copy.signatures:
            self.text("Not signed.", "I")
        for signature in copy.signatures:
            if self.pdf.get_y() > self.pdf.h - self.pdf.b_margin - 32:
                self.pdf.add_page()
            top, page = self.pdf.get_y(), self.pdf.page_no()
            self.text(signature.role, "B")
            self.field("Printed name", signature.printed_name)
            self.field("Signed (UTC)", format_utc(signature.signed_at))
            self.field("Meaning", signature.meaning)
            bottom = self.pdf.get_y()
            if self.pdf.page_no() == page:
                self.pdf.set_draw_color(*_RULE)
                self.pdf.line(self.pdf.l_margin - 3, top, self.pdf.l_margin - 3, bottom)
            self.pdf.ln(3)
        return bytes(self.pdf.output())


def render_signed_copy(copy: SignedCopy) -> bytes:
    """The PDF of one signed consent: a pure function of `copy`, byte-identical for equal input."""
    return _Writer(copy).render()
