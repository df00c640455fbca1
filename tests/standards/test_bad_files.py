"""Every broken file in tests/data/bad/odm and tests/data/bad/usdm fails with exactly the located problems it
declares (`<!-- expect: LINE | text -->` in XML, `LINE:COLUMN POINTER | text` in a .expect file beside JSON),
and loading it writes nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import REPO_ROOT
from trialstack.protocol.problems import StudyDefinitionError
from trialstack.reliability.corpus import DtdTrap
from trialstack.standards import odm_xsd
from trialstack.standards.odm_xsd import StandardsDataMissing
from trialstack.standards.sniff import load_any_study_file

BAD = REPO_ROOT / "tests" / "data" / "bad"
ODM_FILES = sorted((BAD / "odm").glob("*.xml"))
USDM_FILES = sorted((BAD / "usdm").glob("*.json"))
_XML_EXPECT = re.compile(r"<!-- expect: (\d+) \| (.+?) -->")
_JSON_EXPECT = re.compile(r"^(\d+):(\d+) (\S+) \| (.+)$")


def _xml_expectations(path: Path) -> list[tuple[int, str]]:
    return [(int(m[1]), m[2]) for m in _XML_EXPECT.finditer(path.read_text(encoding="utf-8"))]


def _json_expectations(path: Path) -> list[tuple[int, int, str, str]]:
    lines = path.with_suffix(".expect").read_text(encoding="utf-8").splitlines()
    return [(int(m[1]), int(m[2]), m[3], m[4]) for m in map(_JSON_EXPECT.match, lines) if m]


def test_the_corpus_is_there() -> None:
    assert len(ODM_FILES) >= 12 and len(USDM_FILES) >= 10
    assert all(_xml_expectations(path) for path in ODM_FILES)
    assert all(_json_expectations(path) for path in USDM_FILES)


@pytest.mark.usefixtures("odm_xsds")
@pytest.mark.parametrize("path", ODM_FILES, ids=lambda path: path.stem)
def test_bad_odm_reports_exactly_the_expected_problems(path: Path) -> None:
    with pytest.raises(StudyDefinitionError) as raised:
        load_any_study_file(path)
    problems = raised.value.problems
    expected = _xml_expectations(path)
    assert len(problems) == len(expected), str(raised.value)
    for problem, (line, fragment) in zip(problems, expected, strict=True):
        assert problem.file == str(path)
        assert problem.line == line, str(problem)
        assert fragment in problem.message, str(problem)


@pytest.mark.parametrize("path", USDM_FILES, ids=lambda path: path.stem)
def test_bad_usdm_reports_exactly_the_expected_problems(path: Path) -> None:
    with pytest.raises(StudyDefinitionError) as raised:
        load_any_study_file(path)
    got = [(p.line, p.column, p.pointer, p.message) for p in raised.value.problems]
    expected = _json_expectations(path)
    assert len(got) == len(expected), str(raised.value)
    for (line, column, pointer, message), (want_line, want_column, want_pointer, fragment) in zip(
        got, expected, strict=True
    ):
        assert (line, column, pointer) == (want_line, want_column, want_pointer), message
        assert fragment in message


@pytest.mark.usefixtures("odm_xsds")
@pytest.mark.parametrize("path", [ODM_FILES[0], USDM_FILES[0]], ids=["odm", "usdm"])
def test_a_failed_load_writes_nothing(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    before = {entry: entry.stat().st_mtime_ns for entry in tmp_path.iterdir()}
    with pytest.raises(StudyDefinitionError):
        load_any_study_file(copy)
    assert {entry: entry.stat().st_mtime_ns for entry in tmp_path.iterdir()} == before


def test_missing_schemas_stop_an_odm_import_with_where_to_put_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALSTACK_STANDARDS_DATA", str(tmp_path))
    with pytest.raises(StandardsDataMissing, match=r"cdisc-odm-1\.3\.2-schema") as raised:
        load_any_study_file(BAD / "odm" / "dangling_form_ref.xml")
    assert "TRIALSTACK_STANDARDS_DATA" in raised.value.message


@pytest.mark.parametrize("name", ["doctype_entity_expansion", "doctype_external_entity", "doctype_dtd_fetch"])
@pytest.mark.parametrize("dtd_at", ["http", "file"])
def test_the_odm_parser_itself_expands_fetches_and_reads_nothing(name: str, dtd_at: str, tmp_path: Path) -> None:
    """Beneath the DOCTYPE refusal: the parser the ODM reader uses, given each hostile file with its DTD on a
    server on 127.0.0.1 or in a local file (defining an entity the document uses), loads no DTD, expands no
    entity and reads no file. (A parser with load_dtd and resolve_entities on fails this with the DTD in a file.)"""
    dtd = tmp_path / "odm.dtd"
    dtd.write_text('<!ENTITY leak "LEAKED-FROM-THE-DTD">', encoding="utf-8")
    text = (
        (BAD / "odm" / f"{name}.xml").read_text(encoding="utf-8").replace('Description="fetch"', 'Description="&leak;"')
    )
    with DtdTrap() as trap:
        where = f"{trap.url}/odm.dtd" if dtd_at == "http" else dtd.as_uri()
        remote = f'<!ENTITY % remote SYSTEM "{where}">\n %remote;\n <!ENTITY lol '
        hostile = text.replace("http://127.0.0.1:9/odm.dtd", where).replace("<!ENTITY lol ", remote)
        try:
            root = etree.fromstring(hostile.encode(), odm_xsd._parser())
        except etree.XMLSyntaxError:
            root = None  # refusing is as good as ignoring
        requests = list(trap.requests)
    assert requests == []
    if root is not None:
        serialized = etree.tostring(root).decode()
        assert "lollollol" not in serialized and "root:" not in serialized and "LEAKED" not in serialized
