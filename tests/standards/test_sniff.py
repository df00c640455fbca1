"""Formats are recognised by content, never by extension: each loader is reached with a misleading name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.standards.conftest import lzzt_usdm, odm_example, odmlib
from trialstack.errors import NotFound
from trialstack.protocol.problems import StudyDefinitionError
from trialstack.standards.loader import load_study_file
from trialstack.standards.sniff import load_any_study_file, sniff_format

DEMO = REPO_ROOT / "studies" / "demo" / "study.yaml"


@pytest.mark.usefixtures("odm_xsds")
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (lambda: odm_example("MetaData_Dave_1_3_2_new_2006_01_26_extra_languages.xml"), "odm-1.3.2"),
        (lambda: odm_example("RepeatingIG-UC-D-Example.xml"), "odm-2.0"),
        (lambda: odmlib("cdash-odm-test.xml"), "odm-1.3.2"),
        (lzzt_usdm, "usdm-4"),
        (lambda: DEMO, "yaml"),
    ],
    ids=["odm-132", "odm-20", "odmlib", "usdm", "yaml"],
)
def test_the_format_comes_from_the_content(source: object, expected: str, tmp_path: Path) -> None:
    misleading = tmp_path / "study.txt"
    original = source()  # type: ignore[operator]
    shutil.copy(original, misleading)
    if (original.parent / "consent").is_dir():  # the consent texts the study names, kept beside it
        shutil.copytree(original.parent / "consent", tmp_path / "consent")
    loaded = load_any_study_file(misleading)
    assert loaded.format == expected
    assert (loaded.report is None) == (expected == "yaml")


def test_yaml_goes_through_the_yaml_loader_unchanged() -> None:
    loaded = load_any_study_file(DEMO)
    assert loaded.definition == load_study_file(DEMO) and loaded.warnings == []


def test_our_format_written_as_json_is_yaml(tmp_path: Path) -> None:
    data = load_study_file(DEMO).model_dump(mode="json", exclude_defaults=True)
    path = tmp_path / "study.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_any_study_file(path)
    assert loaded.format == "yaml" and loaded.definition == load_study_file(DEMO)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b'\xef\xbb\xbf  <?xml version="1.0"?><ODM/>', "odm"),
        (b'{"study": {"versions": []}, "usdmVersion": "4.0.0"}', "usdm"),
        (b'{"study": {"id": "X"}}', "yaml"),
        (b"study:\n  id: X\n", "yaml"),
    ],
)
def test_sniffing_reads_only_the_start(head: bytes, kind: str) -> None:
    assert sniff_format(head) == kind


def test_missing_and_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no study definition at"):
        load_any_study_file(tmp_path / "absent.yaml")
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(StudyDefinitionError, match=r"image\.png:1:1: /: not UTF-8 text: byte 0x89"):
        load_any_study_file(binary)
