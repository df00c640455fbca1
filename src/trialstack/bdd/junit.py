"""JUnit XML of a run, for CI servers: one testsuite per feature file, one testcase per scenario.

The StudyVersion hash, the run's time, the seed and the TrialStack version go into `<properties>` of every
suite, so the XML alone says what build of which study was tested with which platform.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from trialstack.bdd.results import ERROR, FAILED, RunResult, ScenarioResult


def run_properties(run: RunResult) -> dict[str, str]:
    return {
        "study_id": run.study_id,
        "protocol_version": run.protocol_version,
        "study_version_hash": run.version_hash,
        "trialstack_version": run.trialstack_version,
        "run_started_at": run.started_at.isoformat(timespec="seconds"),
        "seed": str(run.seed),
    }


def failure_text(result: ScenarioResult) -> str:
    """The failing step, expected vs actual, and the events the step (or the action before it) produced."""
    failure = result.failure
    if failure is None:
        return ""
    lines = [f"{failure.step.location}: {failure.step}", failure.message]
    if failure.expected or failure.actual:
        lines += [f"expected: {failure.expected}", f"actual:   {failure.actual}"]
    events = result.action_events
    lines.append("events produced:" if events else "events produced: none")
    lines += [f"  {event}" for event in events]
    return "\n".join(lines)


def junit_xml(run: RunResult) -> str:
    root = ET.Element(
        "testsuites",
        name=f"{run.study_id} specification",
        tests=str(len(run.scenarios)),
        failures=str(run.count(FAILED)),
        errors=str(run.count(ERROR)),
        time=f"{run.seconds:.3f}",
        timestamp=run.started_at.isoformat(timespec="seconds"),
    )
    for file, results in run.by_file().items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=results[0].scenario.feature,
            file=file,
            tests=str(len(results)),
            failures=str(sum(1 for r in results if r.status == FAILED)),
            errors=str(sum(1 for r in results if r.status == ERROR)),
            skipped="0",
            time=f"{sum(r.seconds for r in results):.3f}",
            timestamp=run.started_at.isoformat(timespec="seconds"),
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in run_properties(run).items():
            ET.SubElement(properties, "property", name=name, value=value)
        for result in results:
            _testcase(suite, file, result)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(suite: ET.Element, file: str, result: ScenarioResult) -> None:
    location = result.scenario.location
    case = ET.SubElement(
        suite,
        "testcase",
        classname=file.removesuffix(".feature").replace("/", "."),
        name=result.scenario.name,
        file=file,
        line=str(location.example_line or location.line),
        time=f"{result.seconds:.3f}",
    )
    failure = result.failure
    if failure is not None:
        tag = "error" if result.status == ERROR else "failure"
        element = ET.SubElement(case, tag, message=failure.message, type=f"step {failure.status}")
        element.text = failure_text(result)
    steps = "\n".join(f"{s.status:<7} {s.step}" for s in result.steps)
    output = ET.SubElement(case, "system-out")
    output.text = f"{steps}\nledger: {result.ledger_events} events, head {result.ledger_head}"
