"""A rule error is reported where it is in the YAML file, whatever scalar style holds the expression.

Hypothesis writes the same check expression as a plain, quoted, literal or folded scalar, spread over
lines with any indentation, and the reported line and column must land on the unknown name.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trialstack.protocol.yaml_loader import check_study_yaml

HEAD = """\
study: {id: T-1, name: Test, phase: "2", protocol_version: "1.0"}
schedule:
  anchor: DAY1
  visits:
    - {id: DAY1, name: Day 1, day: 1, forms: [VS]}
forms:
  - id: VS
    name: Vital signs
    items:
      - {id: SYSBP, label: Systolic BP, type: integer}
      - {id: VSPOS, label: Position, type: text}
edit_checks:
  - id: VS-CHECK
    form: VS
    item: SYSBP
    message: Check.
"""

TERMS = ["SYSBP > 1", "(SYSBP <= 300)", 'VSPOS != "SITTING"', "VSPOS in ('A', 'B')", "not is_blank(SYSBP)"]
STYLES = ["plain", "double", "single", "literal", "folded", "folded_strip"]


def _render(lines: list[str], style: str, indent: int) -> str:
    """The `expression:` entry holding `lines` (joined by newlines in the value) in one YAML style."""
    pad = " " * (4 + indent)
    if style in ("literal", "folded", "folded_strip"):
        header = {"literal": "|", "folded": ">", "folded_strip": ">-"}[style]
        return f"    expression: {header}\n" + "".join(f"{pad}{line}\n" for line in lines)
    if style == "double":
        lines = [line.replace("\\", "\\\\").replace('"', '\\"') for line in lines]
        body = f"\n{pad}".join(lines)
        return f'    expression: "{body}"\n'
    if style == "single":
        lines = [line.replace("'", "''") for line in lines]
        body = f"\n{pad}".join(lines)
        return f"    expression: '{body}'\n"
    return "    expression: " + f"\n{pad}".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(st.sampled_from(TERMS), max_size=3),
    after=st.lists(st.sampled_from(TERMS), max_size=2),
    style=st.sampled_from(STYLES),
    indent=st.integers(min_value=1, max_value=6),
    breaks=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_unknown_name_is_located_in_the_file(
    before: list[str], after: list[str], style: str, indent: int, breaks: list[bool]
) -> None:
    terms = [*before, "BADNAME < 3", *after]
    lines = [terms[0]]
    for term, new_line in zip(terms[1:], breaks, strict=False):
        if new_line:
            lines.append(f"and {term}")
        else:
            lines[-1] += f" and {term}"
    text = HEAD + _render(lines, style, indent)
    problems = check_study_yaml(text).problems
    assert len(problems) == 1, "\n".join(map(str, problems))
    problem = problems[0]
    assert "BADNAME" in problem.message
    line = text.splitlines()[problem.line - 1]
    assert line[problem.column - 1 :].startswith("BADNAME"), (style, line, problem.column)
