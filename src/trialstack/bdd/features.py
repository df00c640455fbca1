"""Feature files parsed with the official Gherkin parser and compiled to runnable scenarios.

The Cucumber "pickle" compiler does the Gherkin semantics (Backgrounds, Rules, Scenario Outlines expanded per
Examples row, `And`/`But` resolved to Given/When/Then); this module only maps each pickle back to the lines of
the file, so every report and error can say exactly where a step is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gherkin.errors import CompositeParserException, ParserException
from gherkin.parser import Parser
from gherkin.pickles.compiler import Compiler

from trialstack.bdd.errors import Location, Problem, SpecificationError


@dataclass(frozen=True)
class DataTable:
    """A step's table: the first row names the columns."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.header, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class Step:
    keyword: str
    kind: str
    """Context (Given), Action (When) or Outcome (Then); an `And` takes the kind of the step before it."""
    text: str
    location: Location
    table: DataTable | None = None
    doc_string: str | None = None

    def __str__(self) -> str:
        return f"{self.keyword.strip()} {self.text}"


@dataclass(frozen=True)
class Scenario:
    feature: str
    name: str
    location: Location
    steps: tuple[Step, ...]
    tags: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.feature}: {self.name}"


@dataclass(frozen=True)
class Feature:
    name: str
    file: str
    description: str
    scenarios: tuple[Scenario, ...]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a Gherkin AST (steps, examples rows, scenarios), depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _table(argument: dict[str, Any] | None) -> DataTable | None:
    if not argument or "dataTable" not in argument:
        return None
    rows = [tuple(cell["value"] for cell in row["cells"]) for row in argument["dataTable"]["rows"]]
    return DataTable(rows[0], tuple(rows[1:])) if rows else None


def _doc_string(argument: dict[str, Any] | None) -> str | None:
    if not argument or "docString" not in argument:
        return None
    content = argument["docString"].get("content")
    return str(content) if content is not None else ""


def parse_feature_text(text: str, file: str) -> Feature | None:
    """Parse one feature file's text; None when it holds no Feature. SpecificationError names file and line."""
    try:
        document: Any = Parser().parse(text)
    except CompositeParserException as error:
        raise SpecificationError([_syntax_problem(file, e) for e in error.errors]) from None
    except ParserException as error:
        raise SpecificationError([_syntax_problem(file, error)]) from None
    feature = document.get("feature")
    if not feature:
        return None
    nodes = {node["id"]: node for node in _walk(feature) if "id" in node and "location" in node}
    document["uri"] = file
    pickles: list[Any] = Compiler().compile(document)
    scenarios: list[Scenario] = []
    names_seen: dict[str, int] = {}
    for pickle in pickles:
        scenario_node = nodes[pickle["astNodeIds"][0]]
        row = nodes[pickle["astNodeIds"][1]] if len(pickle["astNodeIds"]) > 1 else None
        example_line = row["location"]["line"] if row is not None else None
        steps = tuple(_step(step, nodes, file, example_line) for step in pickle["steps"])
        name = pickle["name"]
        names_seen[name] = names_seen.get(name, 0) + 1
        if row is not None and names_seen[name] > 1:
            name = f"{name} (example {names_seen[name]})"
        location = Location(file, scenario_node["location"]["line"], example_line)
        tags = tuple(tag["name"] for tag in pickle.get("tags", []))
        scenarios.append(Scenario(feature["name"], name, location, steps, tags))
    return Feature(feature["name"], file, (feature.get("description") or "").strip(), tuple(scenarios))


def _step(pickle_step: dict[str, Any], nodes: dict[str, Any], file: str, example_line: int | None) -> Step:
    node = nodes[pickle_step["astNodeIds"][0]]
    return Step(
        keyword=node["keyword"],
        kind=pickle_step.get("type", "Unknown"),
        text=pickle_step["text"],
        location=Location(file, node["location"]["line"], example_line),
        table=_table(pickle_step.get("argument")),
        doc_string=_doc_string(pickle_step.get("argument")),
    )


def _syntax_problem(file: str, error: Exception) -> Problem:
    location = getattr(error, "location", None) or {}
    message = str(error)
    if message.startswith("(") and "): " in message:
        message = message.split("): ", 1)[1]
    return Problem(Location(file, int(location.get("line", 0))), f"Gherkin syntax error: {message}")


def feature_files(features_dir: Path) -> list[Path]:
    return sorted(features_dir.rglob("*.feature"))


def load_features(features_dir: Path, relative_to: Path | None = None) -> list[Feature]:
    """Every `*.feature` under `features_dir`, in path order; every syntax error of every file at once."""
    features: list[Feature] = []
    problems: list[Problem] = []
    for path in feature_files(features_dir):
        shown = str(path.relative_to(relative_to)) if relative_to is not None else str(path)
        try:
            feature = parse_feature_text(path.read_text(encoding="utf-8"), shown)
        except SpecificationError as error:
            problems += error.problems
            continue
        if feature is not None:
            features.append(feature)
    if problems:
        raise SpecificationError(problems)
    return features
