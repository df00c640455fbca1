"""The malformed input corpus: every input format, broken in every way a file or a request body gets broken.

For study files (TrialStack YAML, CDISC ODM XML, USDM JSON): truncated, UTF-16, Latin-1 bytes, huge (50 MB),
deeply nested (100 000 levels), and for XML hostile ones (billion laughs, an external entity naming
file:///etc/passwd, a DTD to fetch from a server on 127.0.0.1), for YAML an alias bomb. For the API's JSON
bodies: truncated, Latin-1, UTF-16, huge, deeply nested.

Each must be refused with a located message (the file with line and column, or the body's field), nothing
written to the database, and no DTD fetched. `build_corpus` writes the files (generated, never committed);
`check_file` runs one through `trialstack study validate` and `study load`, `check_bodies` sends the bodies to the
real app served on 127.0.0.1. `trialstack reliability corpus` runs it all.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from trialstack.bootstrap import Platform
from trialstack.ledger import store
from trialstack.protocol.version import study_version
from trialstack.standards.loader import load_study_file
from trialstack.standards.odm_export import export_odm

HUGE_BYTES = 50 * 1024 * 1024
DEEP = 100_000
LOCATED = r"{file}:\d+:\d+: "


@dataclass(frozen=True)
class FileCase:
    """A broken study file and the line its problem must be reported on (None: any line)."""

    name: str
    path: Path
    line: int | None = None
    message: str = ""


@dataclass(frozen=True)
class BodyCase:
    """A broken request body, the field its problem must name (None: the body as a whole), its content type."""

    name: str
    body: bytes
    content_type: str = "application/json"
    status: tuple[int, ...] = (400, 413, 415, 422)


@dataclass
class CaseResult:
    name: str
    refused: bool
    located: bool
    ledger_unchanged: bool
    message: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class DtdTrap:
    """A web server on 127.0.0.1 that counts the requests it gets: a DTD fetch would be one."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                trap.requests.append(self.path)
                payload = b'<!ENTITY % leak SYSTEM "file:///etc/passwd">'
                self.send_response(200)
                self.send_header("Content-Type", "application/xml-dtd")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DtdTrap:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _line_of(data: bytes, needle: bytes) -> int:
    return data[: data.index(needle)].count(b"\n") + 1


def _write_huge(path: Path, head: bytes, unit: bytes, tail: bytes) -> None:
    with path.open("wb") as out:
        out.write(head)
        block = unit * max(1, (1024 * 1024) // len(unit))
        written = len(head)
        while written < HUGE_BYTES:
            out.write(block)
            written += len(block)
        out.write(tail)


def valid_sources(study: Path) -> dict[str, bytes]:
    """A valid file of each format to break: the study's YAML, its ODM export, and a small USDM document."""
    yaml = study.read_bytes()
    odm = io.BytesIO()
    export_odm(study_version(load_study_file(study)), odm, created_at=datetime(2026, 1, 5, tzinfo=UTC))
    usdm = {
        "usdmVersion": "4.0",
        "systemName": "TrialStack corpus",
        "study": {"id": "Study_1", "name": "CORPUS", "instanceType": "Study", "versions": []},
    }
    return {"yaml": yaml, "odm": odm.getvalue(), "usdm": json.dumps(usdm, indent=2).encode()}


def truncated(data: bytes) -> bytes:
    """The file cut two thirds of the way in, inside a flow mapping (`{` left open) where there is one after that
    point: a YAML file cut at a line boundary can still be a valid, shorter study (its later sections optional), which
    is not the broken file this case is about. XML and JSON cut anywhere are broken."""
    cut = len(data) * 2 // 3
    brace = data.find(b"{", cut)
    return data[: brace + 1] if brace >= 0 else data[:cut]


def build_corpus(folder: Path, study: Path, dtd_url: str) -> list[FileCase]:
    """Write every broken study file into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = valid_sources(study)
    cases: list[FileCase] = []

    def add(name: str, data: bytes, line: int | None = None, message: str = "") -> None:
        path = folder / name
        path.write_bytes(data)
        cases.append(FileCase(name, path, line, message))

    for kind, extension in (("yaml", "yaml"), ("odm", "xml"), ("usdm", "json")):
        data = sources[kind]
        add(f"truncated.{kind}.{extension}", truncated(data))
        add(f"utf16.{kind}.{extension}", data.decode("utf-8").encode("utf-16"), 1, "UTF-16")
        add(f"utf16-no-bom.{kind}.{extension}", data.decode("utf-8").encode("utf-16-le"), 1, "UTF-16")
    latin = "\nnote: Café au lait\n".encode("latin-1")
    add("latin1.yaml.yaml", sources["yaml"] + latin, sources["yaml"].count(b"\n") + 2, "UTF-8")
    odm = sources["odm"]
    latin_odm = odm.replace(b"<Study ", "<!-- Café -->\n<Study ".encode("latin-1"), 1)
    add("latin1.odm.xml", latin_odm, _line_of(latin_odm, b"<!-- Caf"), "UTF-8")
    usdm_latin = sources["usdm"].replace(b'"CORPUS"', '"CORPUS é"'.encode("latin-1"))
    add("latin1.usdm.json", usdm_latin, _line_of(usdm_latin, b'"CORPUS '), "UTF-8")

    huge = [
        ("huge.yaml.yaml", b"study:\n  notes:\n", b"    - padding padding padding padding\n", b""),
        ("huge.odm.xml", odm.split(b"<Study ")[0], b"<!-- padding padding padding padding -->\n", b"</ODM>\n"),
        ("huge.usdm.json", b'{"usdmVersion": "4.0", "study": {"padding": [', b'"padding padding", ', b'""]}}'),
    ]
    for name, head, unit, tail in huge:
        _write_huge(folder / name, head, unit, tail)
        cases.append(FileCase(name, folder / name, 1, "MB"))

    add("nested.yaml.yaml", b"study: " + b"[" * DEEP + b"]" * DEEP + b"\n", 1, "nested")
    add("nested-block.yaml.yaml", b"".join(b" " * i + b"k:\n" for i in range(2_000)), None, "nested")
    xml_head = odm.split(b"<Study ")[0]
    add("nested.odm.xml", xml_head + b"<a>" * DEEP + b"</a>" * DEEP + b"</ODM>\n", None, "depth")
    add("nested.usdm.json", b'{"usdmVersion": "4.0", "study": ' + b"[" * DEEP + b"]" * DEEP + b"}", 1, "nested")

    declaration, _, rest = odm.partition(b"\n")
    laughs = (
        b'<!DOCTYPE ODM [\n <!ENTITY lol "lol">\n'
        + b"".join(
            f' <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">\n'.encode()
            for n in range(1, 10)
        )
        + b"]>\n"
    )
    bomb = declaration + b"\n" + laughs + rest.replace(b"<Study ", b"<!-- &lol9; -->\n<Study ", 1)
    add("billion-laughs.odm.xml", bomb, 2, "DOCTYPE")
    xxe_doctype = b'<!DOCTYPE ODM [\n <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
    description = rest.index(b"Description=")
    xxe = declaration + b"\n" + xxe_doctype + rest[:description] + b'Description="&xxe;" ' + rest[description:]
    add("external-entity.odm.xml", xxe, 2, "DOCTYPE")
    fetch_doctype = f'<!DOCTYPE ODM SYSTEM "{dtd_url}/odm.dtd">\n'.encode()
    add("dtd-fetch.odm.xml", declaration + b"\n" + fetch_doctype + rest, 2, "DOCTYPE")
    parameter = f'<!DOCTYPE ODM [\n <!ENTITY % remote SYSTEM "{dtd_url}/entities.dtd">\n %remote;\n]>\n'.encode()
    add("parameter-entity.odm.xml", declaration + b"\n" + parameter + rest, 2, "DOCTYPE")

    anchors = "".join(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 12))
    add("alias-bomb.yaml.yaml", ("a0: &a0 [lol]\n" + anchors + "study: *a11\n").encode(), None, "alias")
    return cases


def body_corpus() -> list[BodyCase]:
    """Broken bodies for a form save (PUT .../forms/{form}); the same parser reads every JSON body."""
    good = json.dumps({"items": {"VSDAT": {"value": "2026-01-05"}}, "reason": "Café"}, ensure_ascii=False)
    return [
        BodyCase("truncated", good[: len(good) // 2].encode()),
        BodyCase("latin1", good.encode("latin-1")),
        BodyCase("utf16", good.encode("utf-16")),
        BodyCase("utf16-no-bom", good.encode("utf-16-le")),
        BodyCase("huge", b'{"items": {}, "reason": "' + b"x" * HUGE_BYTES + b'"}'),
        BodyCase("nested", b'{"items": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
        BodyCase("nested-objects", b'{"items": ' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}"),
    ]


def ledger_size(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return store.count_events(connection)


def check_file(case: FileCase, database_url: str, run_cli: Callable[[list[str]], tuple[int, str]]) -> CaseResult:
    """`study validate` and `study load --db` on the file: both refuse, both locate, the ledger is unchanged."""
    from trialstack.bootstrap import bootstrap
    from trialstack.settings import Settings

    platform = bootstrap(Settings.from_env(database_url), migrate=True)
    try:
        before = ledger_size(platform)
        result = CaseResult(case.name, True, True, True, "")
        located = re.compile(LOCATED.format(file=re.escape(str(case.path))) + r".+", re.MULTILINE)
        for command in (["study", "validate", str(case.path)], ["study", "load", str(case.path), "--db", database_url]):
            code, output = run_cli(command)
            found = located.search(output)
            if not result.message and found:
                result.message = found.group(0)
            if code == 0:
                result.refused = False
                result.problems.append(f"{' '.join(command[:2])} accepted it")
            if found is None:
                result.located = False
                result.problems.append(f"{' '.join(command[:2])} did not say where: {output.strip()[-300:]!r}")
            elif case.line is not None and not any(
                m.group(0).startswith(f"{case.path}:{case.line}:") for m in located.finditer(output)
            ):
                result.located = False
                result.problems.append(f"{' '.join(command[:2])} did not point at line {case.line}: {found.group(0)}")
            if case.message and found is not None and case.message.lower() not in output.lower():
                result.problems.append(f"{' '.join(command[:2])} did not mention {case.message!r}: {found.group(0)}")
        if ledger_size(platform) != before:
            result.ledger_unchanged = False
            result.problems.append("the ledger changed")
    finally:
        platform.close()
    return result


def check_bodies(
    platform: Platform, base_url: str, token: str, study_id: str, subject_id: str, form: str
) -> list[CaseResult]:
    """Send each broken body to the real app; each is a problem+json 4xx naming what is wrong, writing nothing."""
    results = []
    url = f"{base_url}/api/v1/studies/{study_id}/subjects/{subject_id}/forms/{form}"
    with httpx.Client(timeout=120) as client:
        for case in body_corpus():
            before = ledger_size(platform)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": case.content_type}
            response = client.put(url, content=case.body, headers=headers)
            result = CaseResult(case.name, response.status_code in case.status, False, True, response.text[:300])
            if not result.refused:
                result.problems.append(f"answered {response.status_code}: {response.text[:300]}")
            if response.headers.get("content-type") != "application/problem+json":
                result.problems.append(f"answered {response.headers.get('content-type')}, not problem+json")
            else:
                problem = response.json()
                result.located = bool(problem.get("field")) and bool(problem.get("detail"))
                if not result.located:
                    result.problems.append(f"the problem names no field: {problem}")
            if ledger_size(platform) != before:
                result.ledger_unchanged = False
                result.problems.append("the ledger changed")
            results.append(result)
    return results


def cli_runner() -> Callable[[list[str]], tuple[int, str]]:
    """Run a `trialstack` command in this process: its exit code and everything it printed."""
    from typer.testing import CliRunner

    from trialstack.cli.main import app

    runner = CliRunner()

    def run(arguments: list[str]) -> tuple[int, str]:
        result = runner.invoke(app, arguments, catch_exceptions=False)
        return result.exit_code, result.output

    return run


def check_api_bodies(database_url: str, study: Path) -> list[CaseResult]:
    """The body corpus against the real app served on 127.0.0.1, with the study loaded and a token."""
    from trialstack.api.app import create_app
    from trialstack.reliability.fuzz import fuzz_target
    from trialstack.reliability.serving import served

    with fuzz_target(database_url, study, subjects=1) as (platform, target), served(create_app(platform)) as url:
        return check_bodies(platform, url, target.token, target.study_id, target.subjects[0], target.forms[0])


@dataclass
class CorpusReport:
    files: list[CaseResult]
    bodies: list[CaseResult]
    dtd_requests: list[str]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.files + self.bodies) and not self.dtd_requests

    def summary(self) -> str:
        lines = []
        for title, results in (("study files", self.files), ("API bodies", self.bodies)):
            refused = sum(r.refused and r.located and r.ledger_unchanged for r in results)
            lines.append(f"{title}: {refused}/{len(results)} refused with a located message, nothing written")
            for result in results:
                state = "ok" if result.ok else "FAILED: " + "; ".join(result.problems)
                lines.append(f"  {result.name}: {state}" + (f" | {result.message[:160]}" if result.ok else ""))
        lines.append(f"DTD fetches seen by the trap on 127.0.0.1: {len(self.dtd_requests)}")
        return "\n".join(lines)


def run_corpus(folder: Path, study: Path, database_url: str, api_database_url: str | None = None) -> CorpusReport:
    """Every broken file through `study validate` and `study load`, every broken body through the API."""
    run_cli = cli_runner()
    with corpus_folder(folder, study) as (cases, trap):
        files = [check_file(case, database_url, run_cli) for case in cases]
        requests = list(trap.requests)
    bodies = check_api_bodies(api_database_url or database_url, study)
    return CorpusReport(files, bodies, requests)


@contextmanager
def corpus_folder(folder: Path, study: Path) -> Iterator[tuple[list[FileCase], DtdTrap]]:
    """The corpus written into `folder`, with the DTD trap serving on 127.0.0.1 while it is used."""
    with DtdTrap() as trap:
        yield build_corpus(folder, study, trap.url), trap
