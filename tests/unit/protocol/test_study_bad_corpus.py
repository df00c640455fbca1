"""Every file in tests/data/bad/study reports exactly the problems its `# expect:` lines list.

An expectation reads `# expect: LINE:COLUMN POINTER | part of the message`; lines and columns are
1-based in the file, so each one pins the position a study builder's editor would jump to.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trialstack.protocol.problems import StudyDefinitionError
from trialstack.standards.loader import check_study_file, load_study_file

BAD_STUDIES = Path(__file__).resolve().parents[3] / "tests" / "data" / "bad" / "study"
_EXPECT = re.compile(r"^# expect: (\d+):(\d+) (\S+) \| (.+)$")
BAD_FILES = sorted(BAD_STUDIES.glob("*.yaml"))


def _expectations(path: Path) -> list[tuple[int, int, str, str]]:
    found = [_EXPECT.match(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(int(m[1]), int(m[2]), m[3], m[4]) for m in found if m]


def test_the_corpus_is_there() -> None:
    assert len(BAD_FILES) >= 12
    assert all(_expectations(path) for path in BAD_FILES)


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda path: path.stem)
def test_bad_study_reports_exactly_the_expected_problems(path: Path) -> None:
    check = check_study_file(path)
    assert check.definition is None
    got = [(problem.line, problem.column, problem.pointer or "/", problem.message) for problem in check.problems]
    expected = _expectations(path)
    assert len(got) == len(expected), "\n".join(str(problem) for problem in check.problems)
    for (line, column, pointer, message), (want_line, want_column, want_pointer, fragment) in zip(
        got, expected, strict=True
    ):
        assert (line, column, pointer) == (want_line, want_column, want_pointer), message
        assert fragment in message


def test_loading_a_bad_study_raises_with_every_problem() -> None:
    path = BAD_STUDIES / "wrong_types.yaml"
    with pytest.raises(StudyDefinitionError) as raised:
        load_study_file(path)
    assert len(raised.value.problems) == len(_expectations(path))
    assert raised.value.code == "study-definition-invalid"
    first = raised.value.problems[0]
    assert str(first) == f"{path}:4:9: /sites/0/id: {first.message}"
