"""Consent documents in the study definition: texts read beside the study file, hashed, split, and checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from trialstack.protocol.consent_text import html_to_markdown, split_sections
from trialstack.protocol.definition import ConsentDocument
from trialstack.standards.loader import check_study_file, load_study_file

DEMO = Path(__file__).resolve().parents[3] / "studies" / "demo"


def _study_with_consent(tmp_path: Path, consent_yaml: str, files: dict[str, str]) -> Path:
    text = (DEMO / "study.yaml").read_text(encoding="utf-8")
    start = text.index("\nconsent:")
    end = text.index("\nblinding:")
    (tmp_path / "study.yaml").write_text(text[:start] + "\n" + consent_yaml + text[end:], encoding="utf-8")
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    return tmp_path / "study.yaml"


def test_the_text_file_is_read_and_its_sha256_is_part_of_the_definition() -> None:
    text = load_study_file(DEMO / "study.yaml").consent[0].versions[0].texts[0]
    shipped = (DEMO / "consent" / "icf-1.0-en.md").read_bytes()
    assert text.text.encode("utf-8") == shipped
    assert text.sha256 == hashlib.sha256(shipped).hexdigest()
    assert text.file == "consent/icf-1.0-en.md"


def test_changing_the_text_changes_the_study_hash(tmp_path: Path) -> None:
    consent = """consent:
  - id: ICF
    title: Consent
    required_before: SCREENING
    versions:
      - {version: "1.0", effective: 2026-01-01, ethics_approval: EC-1, texts: [{language: en, file: icf.md}]}
"""
    from trialstack.protocol.version import study_version

    first = study_version(load_study_file(_study_with_consent(tmp_path, consent, {"icf.md": "## A\n\nOne.\n"})))
    (tmp_path / "icf.md").write_text("## A\n\nOne, changed.\n", encoding="utf-8")
    second = study_version(load_study_file(tmp_path / "study.yaml"))
    assert first.hash != second.hash


@pytest.mark.parametrize(
    ("consent", "files", "pointer", "words"),
    [
        ("texts: [{language: en, file: missing.md}]", {}, "/texts/0/file", "not found"),
        ("texts: [{language: en, file: ../outside.md}]", {}, "/texts/0/file", "inside the study's folder"),
        (
            "texts: [{language: en, file: icf.md, questions: [{id: Q1, section: 9, text: Q?, "
            "options: [a, b], answer: a}]}]",
            {"icf.md": "## One\n\nx\n"},
            "/texts/0/questions/0/section",
            "section 9 does not exist",
        ),
        (
            "texts: [{language: en, file: icf.md, questions: [{id: Q1, section: 1, text: Q?, "
            "options: [a, b], answer: c}]}]",
            {"icf.md": "## One\n\nx\n"},
            "/texts/0/questions/0/answer",
            "not one of the options",
        ),
        ('sites: ["9999"]', {}, "/sites/0", "unknown site"),
        ("reconsent: {}", {}, "/reconsent", "no earlier version"),
        ("reconsent: {arms: [ZEL]}", {}, "/reconsent/arms", "allocations"),
    ],
)
def test_consent_problems_are_located(
    tmp_path: Path, consent: str, files: dict[str, str], pointer: str, words: str
) -> None:
    yaml = f"""consent:
  - id: ICF
    title: Consent
    required_before: SCREENING
    versions:
      - version: "1.0"
        effective: 2026-01-01
        ethics_approval: EC-1
        {consent}
"""
    check = check_study_file(_study_with_consent(tmp_path, yaml, files))
    located = [(problem.pointer, problem.message) for problem in check.problems]
    assert any(p.endswith(pointer) and words in m for p, m in located), located
    assert all(problem.line > 1 for problem in check.problems)


def test_an_econsent_version_needs_its_effective_date_and_ethics_reference(tmp_path: Path) -> None:
    yaml = """consent:
  - id: ICF
    title: Consent
    required_before: SCREENING
    versions:
      - {version: "1.0", texts: [{language: en, text: "## A\\n\\nB\\n"}]}
"""
    problems = {p.pointer for p in check_study_file(_study_with_consent(tmp_path, yaml, {})).problems}
    assert {"/consent/0/versions/0/effective", "/consent/0/versions/0/ethics_approval"} <= problems


def test_the_one_line_form_of_the_first_format_is_one_paper_version() -> None:
    document = ConsentDocument.model_validate(
        {"id": "ICF", "version": "1.0", "title": "Main", "required_before": "SCREENING"}
    )
    assert [v.version for v in document.versions] == ["1.0"]
    assert not document.versions[0].electronic


def test_sections_are_the_second_level_headings_with_an_introduction() -> None:
    sections = split_sections("# Title\n\nIntro text.\n\n## Why\n\nBecause.\n\n## How\n\n- one\n", "Doc")
    assert [(s.number, s.title) for s in sections] == [(1, "Doc"), (2, "Why"), (3, "How")]
    assert sections[0].markdown == "Intro text."
    assert split_sections("## Only\n\ntext\n", "Doc")[0].title == "Only"


def test_html_is_reduced_to_safe_markdown() -> None:
    html = (
        "<html><head><script>alert(1)</script></head><body><h2>Risks</h2>"
        '<p onclick="x()">You may feel <strong>dizzy</strong>.</p><ul><li>one</li><li>two</li></ul>'
        "<script>steal()</script></body></html>"
    )
    markdown = html_to_markdown(html)
    assert "script" not in markdown and "onclick" not in markdown and "alert" not in markdown
    assert "## Risks" in markdown and "**dizzy**" in markdown and "- one" in markdown
    assert [s.title for s in split_sections(html, "Doc", html=True)] == ["Risks"]


def test_texts_attached_beside_an_uploaded_study_are_used_and_line_endings_do_not_matter() -> None:
    from trialstack.protocol.yaml_loader import check_study_yaml

    source = (DEMO / "study.yaml").read_text(encoding="utf-8")
    texts = {path.name: path.read_text(encoding="utf-8") for path in (DEMO / "consent").glob("*.md")}
    unix = check_study_yaml(source, attached=texts)
    windows = check_study_yaml(source, attached={k: v.replace("\n", "\r\n") for k, v in texts.items()})
    assert unix.ok and windows.ok and unix.definition == windows.definition
    missing = check_study_yaml(source, attached={}).problems
    assert [p.pointer for p in missing] == [
        "/consent/0/versions/0/texts/0/file",
        "/consent/0/versions/0/texts/1/file",
    ]
    assert "was not attached" in missing[0].message


def test_a_new_version_asks_everyone_to_re_consent_unless_it_says_otherwise() -> None:
    document = ConsentDocument.model_validate(
        {
            "id": "ICF", "title": "Main", "required_before": "SCREENING",
            "versions": [{"version": "1.0"}, {"version": "2.0"}, {"version": "2.1", "reconsent": "none"},
                         {"version": "3.0", "reconsent": {"sites": ["0102"]}}],
        }
    )  # fmt: skip
    first, second, minor, scoped = document.versions
    assert document.reconsent_of(second) is not None and document.reconsent_of(second).everyone  # type: ignore[union-attr]
    assert document.reconsent_of(minor) is None
    assert document.reconsent_of(scoped).sites == ("0102",)  # type: ignore[union-attr]
    assert first.reconsent is None
