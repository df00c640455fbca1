"""Browser tests: Playwright drives Debian's chromium against a real uvicorn server on a free 127.0.0.1 port,
serving a fresh SQLite demo database. A failing test leaves a screenshot of every page it opened in
artifacts/screenshots/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.web.support import PASSWORD, REPO_ROOT, seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
Login = Callable[..., Page]
FAILED = pytest.StashKey[bool]()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within 60 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; skipped when missing outside CI, a failure in CI (the browser tests must run there)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: install Debian's chromium (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def web_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh SQLite demo database with the browser tests' users (support.seed); its URL."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('web-db') / 'web.db'}"
    seed(database_url)
    return database_url


@pytest.fixture(scope="session")
def live_server(web_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The seeded database served by uvicorn in its own process; yields the base URL."""
    database_url = web_database
    port = _free_port()
    log = tmp_path_factory.mktemp("web-server") / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.web.support", "serve", "--db", database_url, "--port", str(port)],
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def server(chromium: Path, live_server: str) -> str:
    """The live server, for tests that drive the browser (so they skip or fail first on a missing chromium)."""
    return live_server


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if getattr(report, "when", None) == "call":
        item.stash[FAILED] = bool(getattr(report, "failed", False))
    return report


@pytest.fixture
def login(browser: Browser, server: str, request: pytest.FixtureRequest) -> Iterator[Login]:
    """`login("coord.a")`: a fresh browser context signed in as that user (through the sign-in page)."""
    pages: list[tuple[str, Page]] = []

    def sign_in(username: str, width: int = 1280) -> Page:
        context = browser.new_context(base_url=server, viewport={"width": width, "height": 900})
        context.set_default_timeout(10_000)
        page = context.new_page()
        pages.append((username, page))
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    yield sign_in
    if request.node.stash.get(FAILED, False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for index, (username, page) in enumerate(pages):
            page.screenshot(path=SCREENSHOTS / f"{request.node.name}-{index}-{username}.png", full_page=True)
    for _, page in pages:
        page.context.close()
