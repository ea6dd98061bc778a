"""Browser tests: Debian's chromium driven by Playwright against a real server on a real database.

Each test gets its own copy of a SQLite database that holds the deployed diagrams and the
demo users and cases (made once per session), served by the real app on a free port.
Screenshots go to test-artifacts/screenshots/ (not committed).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CASEWORK_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


def _unavailable(reason: str):
    if os.environ.get("CASEWORK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"The browser tests are required (CASEWORK_REQUIRE_BROWSER=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """A headless chromium for the session; skipped when missing, a failure when required."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as error:
        _unavailable(f"Playwright is not installed ({error}); `make test` installs it")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        except Error as error:
            _unavailable(f"chromium at {CHROMIUM} did not start: {error}")
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory) -> Path:
    """A SQLite file with the bundled diagrams deployed and the demo data loaded, made once."""
    from service import create_app
    from service.cli import deploy_folder
    from service.demo import load_demo

    path = tmp_path_factory.mktemp("demo") / "casework.db"
    app = create_app({"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "browser-tests", "SCHEDULER_ENABLED": False,
                      "BPMN_PATH": str(REPO / "bpmn")})
    deploy_folder(app, REPO / "bpmn")
    load_demo(app.extensions["casework"], str(REPO / "bpmn"))
    app.extensions["casework"].uow.dispose()
    with sqlite3.connect(path) as connection:  # one self-contained file to copy
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def live_server(demo_database, tmp_path):
    """The real app, served over HTTP on a free port from a fresh copy of the demo database."""
    from werkzeug.serving import make_server

    from service import create_app

    database = tmp_path / "casework.db"
    shutil.copy(demo_database, database)
    app = create_app({"DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": "browser-tests",
                      "SCHEDULER_ENABLED": False, "BPMN_PATH": str(REPO / "bpmn")})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["casework"].uow.dispose()


@pytest.fixture
def new_page(browser):
    """Open a page in a fresh browser context (its own cookies): one per user of a test."""
    contexts = []

    def open_page(width: int = 1280, height: int = 860):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
