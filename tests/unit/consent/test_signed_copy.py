"""The signed consent copy: a deterministic PDF that shows everything the participant signed, on every page numbered."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from pypdf import PdfReader

from trialstack.consent.signed_copy import (
    PRODUCER,
    CopyAnswer,
    CopyChoice,
    CopySection,
    CopySignature,
    SignedCopy,
    format_utc,
    render_signed_copy,
)

SHA = "9f2c1e0b7a6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b"


def a_copy(**changes: object) -> SignedCopy:
    copy = SignedCopy(
        study_id="CARDIO-1",
        study_name="Kardio-Studie für Ελληνικά und Русский",
        site_id="DE-001",
        subject_id="DE-001-0007",
        document_id="icf-main",
        title="Einwilligungserklärung",
        version="2.1",
        language="de",
        effective="2026-02-01",
        ethics_approval="EK-2026/117",
        document_sha256=SHA,
        sections=(
            CopySection(
                "Purpose",
                "We study **heart rhythm** in *adults*.\n\n## What happens\n\n- Visit one\n- Visit two\n\n"
                "1. Blood sample\n2. ECG with `leads`",
            ),
            CopySection("Risks", "Bruising where blood is taken. <b>Raw HTML</b> prints as typed."),
            CopySection("Ελληνικά", "Η συμμετοχή είναι εθελοντική."),
        ),
        answers=(
            CopyAnswer("Can you leave the study at any time?", "Yes, without giving a reason", True),
            CopyAnswer("Will you be paid?", "Не знаю", False),
        ),
        choices=(
            CopyChoice("I agree to storage of my samples in the biobank", True),
            CopyChoice("I agree to be contacted about future studies", False),
        ),
        signatures=(
            CopySignature("Participant", "Dmitriy Müller", "2026-03-04T10:15:02.123456Z", "I consent to take part"),
            CopySignature(
                "Person obtaining consent", "Dr. Άννα Γεωργίου", "2026-03-04T10:20:00.000000Z", "I explained the study"
            ),
        ),
    )
    return replace(copy, **changes)  # type: ignore[arg-type]


def text_of(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def flat(pages: list[str]) -> str:
    return re.sub(r"\s+", " ", " ".join(pages))


def test_equal_input_renders_byte_identical_pdfs_without_the_clock() -> None:
    first = render_signed_copy(a_copy())
    assert first.startswith(b"%PDF-") and first == render_signed_copy(a_copy())
    info = PdfReader(io.BytesIO(first)).metadata
    assert info is not None
    assert str(info["/Producer"]) == PRODUCER
    assert str(info["/CreationDate"]) == "D:20260304102000Z", "the creation date is the last signature's time"


def test_another_interpreter_with_another_hash_seed_renders_the_same_bytes() -> None:
    script = (
        "import hashlib, sys\n"
        "from tests.unit.consent.test_signed_copy import a_copy\n"
        "from trialstack.consent.signed_copy import render_signed_copy\n"
        "sys.stdout.write(hashlib.sha256(render_signed_copy(a_copy())).hexdigest())\n"
    )
    here = hashlib.sha256(render_signed_copy(a_copy())).hexdigest()
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    root = Path(__file__).resolve().parents[3]
    there = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True, cwd=root
    )
    assert there.stdout == here


@pytest.mark.parametrize(
    "change",
    [
        {"signatures": (CopySignature("Participant", "Dmitriy Müller", "2026-03-04T10:15:03.000000Z", "I consent"),)},
        {"signatures": (CopySignature("Participant", "Dmitry Muller", "2026-03-04T10:15:02.123456Z", "I consent"),)},
        {"choices": (CopyChoice("I agree to storage of my samples in the biobank", False),)},
    ],
)
def test_a_different_signature_or_choice_renders_different_bytes(change: dict[str, object]) -> None:
    base = a_copy(
        signatures=(CopySignature("Participant", "Dmitriy Müller", "2026-03-04T10:15:02.123456Z", "I consent"),)
    )
    assert render_signed_copy(base) != render_signed_copy(replace(base, **change))  # type: ignore[arg-type]


def test_the_pdf_shows_the_header_every_section_answer_choice_and_signature() -> None:
    copy = a_copy()
    shown = flat(text_of(render_signed_copy(copy)))
    for expected in (
        "Einwilligungserklärung",
        "Kardio-Studie für Ελληνικά und Русский (CARDIO-1)",
        "DE-001-0007",
        "icf-main",
        "2.1",
        "2026-02-01",
        "EK-2026/117",
        SHA,
        "We study heart rhythm in adults.",
        "What happens",
        "Visit one",
        "ECG with leads",
        "<b>Raw HTML</b> prints as typed.",
        "Η συμμετοχή είναι εθελοντική.",
        "Can you leave the study at any time?",
        "Yes, without giving a reason",
        "Не знаю",
        "Not correct",
        "I agree to storage of my samples in the biobank Agreed Yes",
        "I agree to be contacted about future studies Agreed No",
        "Participant",
        "Dmitriy Müller",
        "2026-03-04 10:15:02 UTC",
        "I consent to take part",
        "Person obtaining consent",
        "Dr. Άννα Γεωργίου",
        "2026-03-04 10:20:00 UTC",
    ):
        assert expected in shown, expected
    for section in copy.sections:
        assert section.title in shown


def test_a_long_document_numbers_every_page_of_the_total() -> None:
    paragraph = "The study doctor will explain every step and answer your questions before you decide. " * 12
    sections = tuple(CopySection(f"Section {n}", f"{paragraph}\n\n- a point\n- another point") for n in range(14))
    pages = text_of(render_signed_copy(a_copy(sections=sections)))
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
    assert "Dmitriy Müller" in pages[-1]


def test_an_unsigned_copy_or_odd_markdown_still_renders() -> None:
    pdf = render_signed_copy(
        a_copy(
            signatures=(),
            answers=(),
            choices=(),
            sections=(
                CopySection("Empty", ""),
                CopySection("Odd", "![x](http://example.invalid/x.png) > q\n\n```\nx\n```"),
            ),
        )
    )
    shown = flat(text_of(pdf))
    assert "Not signed." in shown and "Odd" in shown
    assert PdfReader(io.BytesIO(pdf)).metadata["/CreationDate"] == "D:20260201000000Z"  # type: ignore[index]


def test_times_are_shown_in_utc_to_the_second() -> None:
    assert format_utc("2026-03-04T10:15:02.123456Z") == "2026-03-04 10:15:02 UTC"
    assert format_utc("2026-03-04T11:15:02+01:00") == "2026-03-04 10:15:02 UTC"
    assert format_utc("not a time") == "not a time"
