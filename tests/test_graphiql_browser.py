"""GraphiQL in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
which .ci/run installs) loads the page from a live server that reaches no network beyond
itself, lists `Query` in the documentation explorer, shows and renews the demo token in the
headers tab, runs the example and reads its result, runs a subscription over the
WebSocket, all within the page's Content-Security-Policy (the browser reports no violation of
it), and keeps its history in localStorage without the token.

Skipped only on a developer's machine without Chromium; in CI (`CI=true`) it always runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from sinergi.app import create_app
from sinergi.settings import Environment, Settings
from tests.support import tools
from tests.support.cli import sinergi
from tests.support.databases import as_service
from tests.support.demo_data import demo_clients
from tests.support.http import Api
from tests.support.served import free_port
from tests.support.windows import clear_of_an_edge

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TOKEN_LIFETIME = 6  # seconds: the page renews the token after 80% of it
RENEWALS = (
    "return performance.getEntriesByType('resource')"
    ".filter((entry) => entry.name.endsWith('/graphiql/token')).length"
)
"""How many renewals the page has asked for."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        tools.missing("no chromium and chromedriver: apt-get install chromium chromium-driver")
    os.environ["SE_OFFLINE"] = "true"  # Selenium must not look for a driver online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations among them
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def _serving(demo_url: str, token_lifetime: int, tokens_per_client: int = 300) -> Iterator[str]:
    """uvicorn in development mode over the demo database, its tokens lasting `token_lifetime`,
    at most `tokens_per_client` of them for a client in a window."""
    settings = Settings(
        environment=Environment.DEVELOPMENT,
        rate_limit=1_000_000,
        token_lifetime_seconds=token_lifetime,
        tokens_per_client=tokens_per_client,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, database_url=as_service(demo_url)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _until(lambda: server.started, 30, "uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def served(demo_url: str, api: Api) -> Iterator[str]:
    """A server whose tokens expire within seconds (the demo clients registered by `api`)."""
    with _serving(demo_url, TOKEN_LIFETIME) as url:
        yield url


@pytest.fixture(scope="module")
def served_longer(demo_url: str, api: Api) -> Iterator[str]:
    """A server whose tokens outlast a test: a subscription ends as its connection's token
    expires."""
    with _serving(demo_url, 300) as url:
        yield url


def _until(condition: Callable[[], Any], seconds: float, failure: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, failure
        time.sleep(0.2)


def _editors(driver: Any) -> dict[str, str]:
    """The text of GraphiQL's CodeMirror editors, by the section holding each."""
    texts: dict[str, str] = driver.execute_script(
        """
        const found = {};
        for (const element of document.querySelectorAll('.CodeMirror')) {
          const section = element.closest('.graphiql-response') ? 'response'
            : element.closest('.graphiql-editor-tool') ? 'tool' : 'query';
          found[section] = element.CodeMirror.getValue();
        }
        return found;
        """
    )
    return texts


def _set_query(driver: Any, query: str) -> None:
    """Types `query` into the query editor, and waits for GraphiQL to parse it (100 ms after an
    edit): ▶ tells a subscription, which goes over the WebSocket, by the parsed document."""
    editor = """
        const editor = [...document.querySelectorAll('.CodeMirror')].find((element) =>
          !element.closest('.graphiql-response') && !element.closest('.graphiql-editor-tool'));
        """
    driver.execute_script(editor + "editor.CodeMirror.setValue(arguments[0]);", query)
    _until(
        lambda: (
            driver.execute_script(editor + "return editor.CodeMirror.documentAST?.loc.source.body;")
            == query
        ),
        10,
        "GraphiQL did not parse the query",
    )


def test_graphiql_works_offline_with_docs_a_renewed_token_and_a_result(
    browser: Any, served: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{served}/graphql")
    failed = browser.execute_script(
        "return performance.getEntriesByType('resource')"
        ".map(e => e.name).filter(n => !n.startsWith(location.origin))"
    )
    assert failed == [], "the page loads nothing from another origin"

    _until(lambda: browser.find_elements(By.CSS_SELECTOR, ".graphiql-container"), 30, "no IDE")
    browser.find_element(By.CSS_SELECTOR, '[aria-label="Show Documentation Explorer"]').click()
    explorer = _until(
        lambda: [
            element
            for element in browser.find_elements(By.CSS_SELECTOR, ".graphiql-doc-explorer")
            if "Query" in element.text
        ],
        30,
        "the documentation explorer never listed Query (introspection refused?)",
    )
    assert "Mutation" in explorer[0].text  # the province may write

    first = _until(lambda: _editors(browser).get("tool"), 10, "no headers editor")
    assert '"Authorization": "Bearer ' in first
    renewed = _until(
        lambda: (tool := _editors(browser).get("tool")) != first and tool,
        TOKEN_LIFETIME * 3,
        "the demo token was not renewed before it expired",
    )
    assert '"Authorization": "Bearer ' in renewed

    time.sleep(TOKEN_LIFETIME * 0.5)  # the first token has now expired; the renewed one serves
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    result = _until(
        lambda: "totalCount" in (text := _editors(browser).get("response") or "") and text,
        30,
        "no result",
    )
    browser.save_screenshot(str(tmp_path / "graphiql.png"))
    assert '"clientId": "demo-province-62"' in result
    assert '"errors"' not in result
    console = [entry["message"] for entry in browser.get_log("browser")]
    assert not [line for line in console if "Content Security Policy" in line], console


def test_graphiql_runs_a_subscription_over_the_websocket_with_the_headers_token(
    browser: Any, served_longer: str
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{served_longer}/graphql")
    _until(lambda: browser.find_elements(By.CSS_SELECTOR, ".graphiql-container"), 30, "no IDE")
    _until(lambda: _editors(browser).get("query"), 10, "no query editor")
    _set_query(browser, "subscription { msmeChanges { entries { id change } endCursor } }")
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    try:
        result = _until(
            lambda: '"msmeChanges"' in (text := _editors(browser).get("response") or "") and text,
            30,
            "no subscription page",
        )
    except AssertionError as failure:  # it failed once in CI: say what the page showed
        shown = _editors(browser).get("response")
        console = [entry["message"] for entry in browser.get_log("browser")]
        raise AssertionError(
            f"{failure}; the response pane: {shown!r}; console: {console}"
        ) from failure
    assert '"change": "CREATED"' in result
    assert '"errors"' not in result
    console = [entry["message"] for entry in browser.get_log("browser")]
    assert not [line for line in console if "Content Security Policy" in line], console


def test_graphiql_keeps_no_token_in_local_storage(browser: Any, served_longer: str) -> None:
    """GraphiQL's history keeps each request with its headers in localStorage, whatever
    `shouldPersistHeaders` says: the page must store it without them, so no token stays there
    for a later page of this origin to read, and must rewrite a history stored with them."""
    from selenium.webdriver.common.by import By

    browser.get(f"{served_longer}/graphql")
    _until(lambda: browser.find_elements(By.CSS_SELECTOR, ".graphiql-container"), 30, "no IDE")
    stale = {"query": "{ viewer { clientId } }", "headers": '{"Authorization": "Bearer stale"}'}
    browser.execute_script(
        "localStorage.clear();"
        "localStorage.setItem('graphiql:queries', JSON.stringify({queries: [arguments[0]]}));",
        stale,
    )
    browser.refresh()
    _until(lambda: browser.find_elements(By.CSS_SELECTOR, ".graphiql-container"), 30, "no IDE")
    headers = _until(lambda: _editors(browser).get("tool"), 10, "no headers editor")
    token = json.loads(headers)["Authorization"].removeprefix("Bearer ")
    stored = _local_storage(browser)
    assert "stale" not in stored.get("graphiql:queries", ""), "the old history keeps its token"

    _set_query(browser, "{ msmes(first: 1) { totalCount } }")
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    _until(lambda: "totalCount" in (_editors(browser).get("response") or ""), 30, "no result")
    stored = _until(
        lambda: len(_history(found := _local_storage(browser))) == 2 and found,
        10,
        "the query run is not in the history",
    )
    assert [entry["query"] for entry in _history(stored)] == [  # history is still kept
        "{ viewer { clientId } }",
        "{ msmes(first: 1) { totalCount } }",
    ]
    assert not [key for key, value in stored.items() if "Bearer" in value or token in value]


def test_graphiql_stops_renewing_once_the_demo_client_has_a_new_secret(
    browser: Any, fresh_url: str
) -> None:
    """After `sinergi clients rotate demo-province-62`, each renewal counts as a wrong secret
    from this machine's address: retried every 5 s for as long as the tab stayed open, they
    locked the holder of the new secret out of the token endpoint here. The page asks once,
    stops at the 403, and says why where a person sees it."""
    from selenium.webdriver.common.by import By

    assert sinergi(fresh_url, "migrate")[0] == 0  # the reference data the demo clients name
    demo_clients(fresh_url)
    with _serving(fresh_url, TOKEN_LIFETIME) as url:
        browser.get(f"{url}/graphql")
        _until(lambda: browser.find_elements(By.CSS_SELECTOR, ".graphiql-container"), 30, "no IDE")
        assert sinergi(fresh_url, "clients", "rotate", "demo-province-62")[0] == 0
        notice = _until(
            lambda: (
                (shown := browser.find_element(By.ID, "sinergi-notice")).is_displayed() and shown
            ),
            TOKEN_LIFETIME * 3,
            "the page did not say the demo token is no longer renewed",
        )
        assert "no longer renewed" in notice.text
        assert "sinergi clients reset-demo" in notice.text
        assert browser.execute_script(RENEWALS) == 1
        time.sleep(7)  # past the 5 s it retried after
        assert browser.execute_script(RENEWALS) == 1


def test_graphiql_waits_as_long_as_a_refusal_for_a_while_says(browser: Any, fresh_url: str) -> None:
    """Past the demo client's token cap the renewal is 429 with Retry-After (the rest of the
    window): the page asks again then, not every 5 s."""
    from selenium.webdriver.common.by import By

    assert sinergi(fresh_url, "migrate")[0] == 0  # the reference data the demo clients name
    demo_clients(fresh_url)
    clear_of_an_edge(Settings().auth_failure_window_seconds, margin=60)
    refused = "/graphiql/token - Failed to load resource: the server responded with a status of 429"
    with _serving(fresh_url, TOKEN_LIFETIME, tokens_per_client=2) as url:
        browser.get_log("browser")  # what earlier tests left
        browser.get(f"{url}/graphql")  # the first token; the first renewal takes the second
        _until(lambda: browser.find_elements(By.CSS_SELECTOR, ".graphiql-container"), 30, "no IDE")
        _until(
            lambda: [line for line in _console(browser) if refused in line],
            TOKEN_LIFETIME * 3,
            "the second renewal was not refused",
        )
        time.sleep(7)  # past the 5 s it retried after
        assert not [line for line in _console(browser) if refused in line]
        assert not browser.find_element(By.ID, "sinergi-notice").is_displayed()


def _console(driver: Any) -> list[str]:
    """What the page logged since last asked, the browser's network errors among it."""
    return [entry["message"] for entry in driver.get_log("browser")]


def _local_storage(driver: Any) -> dict[str, str]:
    stored: dict[str, str] = driver.execute_script(
        "return Object.fromEntries(Object.entries(localStorage))"
    )
    return stored


def _history(stored: dict[str, str]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(stored.get("graphiql:queries", "{}")).get(
        "queries", []
    )
    return entries
