"""Dynamic number insertion in a real browser: `dni.js` from the local stack on a publisher's
pages (served from another origin, so CORS is real), in Debian's headless Chromium driven by
Playwright, and a simulated call to a visitor's number attributed to that visitor."""

from __future__ import annotations

import itertools
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.e2e.conftest import ROOT, LocalStack, Marketer
from tests.support import free_port
from tools.callsim import CallSimulator, PartyBehaviour

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts" / "dni"
DEFAULT_NUMBER = "(800) 555-0100"
POOL_NUMBERS = [f"+1628555{n:04d}" for n in range(101, 106)]
OVERFLOW_NUMBER = "+16285550199"
VISITOR_A_QUERY = "?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=TeSt123"
SEARCH_REFERRER = "https://www.google.com/search?q=plumber"
VISITOR_B_QUERY = "?utm_source=bing&utm_medium=cpc&utm_campaign=summer&utm_term=drain+repair"
_callers = itertools.count(100)

LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><title>Acme Plumbing</title>
<script async src="{api}/dni.js" data-pool-key="{key}" data-number="(800) 555-0100"
        data-class="ppc-number" {extra}></script>
</head><body>
<h1>Acme Plumbing</h1>
<p>Call now: <span class="ppc-number" id="header-number">(800) 555-0100</span></p>
<p id="plain">Or dial 800.555.0100 any time, or +1 800 555 0100 from abroad.</p>
<p><a id="call-link" href="tel:+18005550100">1-800-555-0100</a></p>
<p id="other">Head office: (212) 555-0199</p>
<p><a id="next" href="/pricing.html">Pricing</a></p>
</body></html>
"""

PRICING = """<!doctype html>
<html><head><meta charset="utf-8"><title>Pricing</title>
<script async src="{api}/dni.js" data-pool-key="{key}" data-number="800-555-0100"></script>
</head><body>
<h1>Pricing</h1>
<p>Questions? <span class="ppc-number" id="header-number"></span></p>
<p id="plain">Text 800 555 0100, call 8005550100 or fax 800-555-0100.</p>
<p><a id="call-link" href="tel:800-555-0100">Tap to call</a></p>
</body></html>
"""


@dataclass
class Site:
    """The publisher's website: pages by path, on its own loopback port."""

    pages: dict[str, str]
    server: ThreadingHTTPServer

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def serve_site(pages: dict[str, str]) -> Site:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/favicon.ico":  # keep the console free of the browser's own 404
                self.send_response(204)
                self.end_headers()
                return
            html = pages.get(self.path.split("?", 1)[0])
            body = (html or "not found").encode()
            self.send_response(200 if html else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Site(pages, server)


@dataclass
class Pool:
    public_key: str
    numbers: list[str]


@dataclass
class Visitor:
    """One browser context (its own storage) with the page it has open and what it logged."""

    context: BrowserContext
    page: Page
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def session(self) -> dict[str, Any]:
        return dict(self.page.evaluate("window.ppcDni.session"))

    def number(self) -> str:
        return str(self.session()["number"])

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_for_dni(page: Page, timeout_ms: float = 15_000) -> str:
    """Wait until the script has either swapped the numbers or given up; return which."""
    page.wait_for_function(
        "() => window.ppcDni && window.ppcDni.status !== 'pending'", timeout=timeout_ms
    )
    return str(page.evaluate("window.ppcDni.status"))


def text(page: Page, selector: str) -> str:
    return str(page.text_content(selector))


def parts(e164: str) -> tuple[str, str, str]:
    """Area code, exchange and line of a +1 number."""
    digits = e164.removeprefix("+1")
    return digits[:3], digits[3:6], digits[6:]


def script_errors(visitor: Visitor) -> list[str]:
    """Console errors other than Chromium's own line for a refused or failed request."""
    return [
        message
        for kind, message in visitor.console
        if kind == "error" and not message.startswith("Failed to load resource")
    ]


@pytest.fixture(scope="module")
def pool(marketer: Marketer) -> Pool:
    key = marketer.pool("Website visitors", "+14155559001", POOL_NUMBERS, OVERFLOW_NUMBER)
    assert key.startswith("pk_"), key
    return Pool(key, POOL_NUMBERS)


@pytest.fixture(scope="module")
def site(stack: LocalStack, pool: Pool) -> Iterator[Site]:
    fill = {"api": stack.url, "key": pool.public_key}
    closed = free_port()  # nothing listens here
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    silent_api = f"http://127.0.0.1:{silent.getsockname()[1]}"
    pages = {
        "/landing.html": LANDING.format(**fill, extra=""),
        "/pricing.html": PRICING.format(**fill),
        "/down.html": LANDING.format(**fill, extra=f'data-api="http://127.0.0.1:{closed}"'),
        "/slow.html": LANDING.format(**fill, extra=f'data-api="{silent_api}" data-timeout="1000"'),
        "/unknown-key.html": LANDING.format(api=stack.url, key="pk_unknown0000", extra=""),
    }
    publisher = serve_site(pages)
    yield publisher
    publisher.server.shutdown()
    publisher.server.server_close()
    silent.close()


def open_visitor(
    browser: Browser, url: str, *, init_script: str | None = None, referer: str | None = None
) -> Visitor:
    context = browser.new_context()
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    visitor = Visitor(context, page)
    page.on("console", lambda message: visitor.console.append((message.type, message.text)))
    page.on("pageerror", lambda error: visitor.errors.append(str(error)))
    page.goto(url, referer=referer)
    return visitor


@pytest.fixture(scope="module")
def visitor_a(browser: Browser, site: Site) -> Iterator[Visitor]:
    visitor = open_visitor(
        browser, f"{site.origin}/landing.html{VISITOR_A_QUERY}", referer=SEARCH_REFERRER
    )
    assert wait_for_dni(visitor.page) == "swapped", visitor.page.evaluate("window.ppcDni.error")
    yield visitor
    visitor.context.close()


@pytest.fixture(scope="module")
def visitor_b(browser: Browser, site: Site) -> Iterator[Visitor]:
    visitor = open_visitor(browser, f"{site.origin}/landing.html{VISITOR_B_QUERY}")
    assert wait_for_dni(visitor.page) == "swapped", visitor.page.evaluate("window.ppcDni.error")
    yield visitor
    visitor.context.close()


def test_numbers_are_swapped_in_text_and_tel_links_keeping_their_format(
    visitor_a: Visitor, pool: Pool
) -> None:
    # Given visitor A on the landing page, When dni.js has a session
    session = visitor_a.session()
    number = session["number"]
    area, exchange, line = parts(number)
    # Then the pool number shows everywhere the page's own number was, in the page's format
    assert number in pool.numbers
    assert session["kind"] == "pool" and session["overflow"] is False
    page = visitor_a.page
    assert text(page, "#header-number") == f"({area}) {exchange}-{line}"
    assert text(page, "#plain") == (
        f"Or dial {area}.{exchange}.{line} any time, or +1 {area} {exchange} {line} from abroad."
    )
    assert text(page, "#call-link") == f"1-{area}-{exchange}-{line}"
    assert page.get_attribute("#call-link", "href") == f"tel:{number}"
    # and other numbers on the page are left alone
    assert text(page, "#other") == "Head office: (212) 555-0199"
    # When the page adds the number later, Then it is swapped too (MutationObserver)
    late = '<p id="late">Late: 800 555 0100 <a id="late-link" href="tel:18005550100">call</a></p>'
    page.evaluate("html => document.body.insertAdjacentHTML('beforeend', html)", late)
    page.wait_for_function(
        "n => document.querySelector('#late').textContent === 'Late: ' + n + ' call'",
        arg=f"{area} {exchange} {line}",
    )
    assert page.get_attribute("#late-link", "href") == f"tel:{number}"
    visitor_a.screenshot("landing-visitor-a")
    assert visitor_a.errors == [] and script_errors(visitor_a) == []


def test_two_browser_contexts_get_different_pool_numbers(
    visitor_a: Visitor, visitor_b: Visitor, pool: Pool
) -> None:
    assert visitor_b.number() in pool.numbers
    assert visitor_a.number() != visitor_b.number()
    assert visitor_a.session()["session_id"] != visitor_b.session()["session_id"]
    assert visitor_a.session()["visitor_id"] != visitor_b.session()["visitor_id"]
    visitor_b.screenshot("landing-visitor-b")
    assert visitor_b.errors == [] and script_errors(visitor_b) == []


def test_the_session_survives_a_navigation_to_another_page(visitor_a: Visitor) -> None:
    # Given visitor A's session on the landing page
    before = visitor_a.session()
    # When A follows the link to the pricing page
    with visitor_a.page.expect_navigation():
        visitor_a.page.click("#next")
    assert wait_for_dni(visitor_a.page) == "swapped", visitor_a.page.evaluate("window.ppcDni.error")
    # Then the same session shows the same number, in this page's formats
    after = visitor_a.session()
    assert (after["session_id"], after["number"]) == (before["session_id"], before["number"])
    assert after["visitor_id"] == before["visitor_id"]
    area, exchange, line = parts(after["number"])
    page = visitor_a.page
    assert text(page, "#header-number") == after["national"]
    assert text(page, "#plain") == (
        f"Text {area} {exchange} {line}, call {area}{exchange}{line}"
        f" or fax {area}-{exchange}-{line}."
    )
    assert page.get_attribute("#call-link", "href") == f"tel:{after['number']}"
    visitor_a.screenshot("pricing-visitor-a")
    assert visitor_a.errors == [] and script_errors(visitor_a) == []


def test_heartbeats_keep_the_number_and_pause_while_the_page_is_hidden(
    visitor_a: Visitor,
) -> None:
    page = visitor_a.page
    # A heartbeat crosses origins (CORS preflight, X-Pool-Key) and keeps the session.
    assert page.evaluate("window.ppcDni.heartbeat()") == 200
    assert page.evaluate("window.ppcDni.beating") is True
    # When the tab is hidden, Then the heartbeat timer stops; When shown again, it resumes.
    set_visibility = """state => {
        Object.defineProperty(document, 'visibilityState', {value: state, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }"""
    page.evaluate(set_visibility, "hidden")
    assert page.evaluate("window.ppcDni.beating") is False
    page.evaluate(set_visibility, "visible")
    page.wait_for_function("() => window.ppcDni.beating === true")
    assert visitor_a.errors == [] and script_errors(visitor_a) == []


def test_a_call_to_a_visitors_number_is_attributed_to_that_visitor(
    stack: LocalStack, marketer: Marketer, site: Site, visitor_a: Visitor, visitor_b: Visitor
) -> None:
    # Given two visitors holding two pool numbers
    calls = {}
    with CallSimulator(stack.url, stack.info["twilio_auth_token"]) as cpaas:
        # When a caller dials each visitor's number
        for name, visitor in (("a", visitor_a), ("b", visitor_b)):
            transcript = cpaas.place_call(
                f"+1312555{next(_callers):04d}",
                visitor.number(),
                default_party=PartyBehaviour.answer(after=1, talk=20),
            )
            assert not transcript.application_error
            calls[name] = marketer.call(transcript.call_sid)
    # Then each call carries its own visitor's landing attribution
    a_tags, b_tags = calls["a"]["tags"], calls["b"]["tags"]
    assert {k: a_tags.get(k) for k in ("utm_source", "utm_medium", "utm_campaign", "gclid")} == {
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring",
        "gclid": "TeSt123",
    }
    assert a_tags.get("dni_session_id") == visitor_a.session()["session_id"]
    assert a_tags.get("landing_page") == f"{site.origin}/landing.html{VISITOR_A_QUERY}"
    assert a_tags.get("referrer", "").startswith("https://www.google.com/")
    assert {k: b_tags.get(k) for k in ("utm_source", "utm_campaign", "utm_term")} == {
        "utm_source": "bing",
        "utm_campaign": "summer",
        "utm_term": "drain repair",
    }
    assert b_tags.get("dni_session_id") == visitor_b.session()["session_id"]
    assert "gclid" not in b_tags


def test_the_session_persists_in_a_cookie_when_local_storage_is_blocked(
    browser: Browser, site: Site
) -> None:
    blocked = """(() => {
        const refuse = () => { throw new DOMException('blocked', 'SecurityError'); };
        Storage.prototype.getItem = refuse;
        Storage.prototype.setItem = refuse;
    })();"""
    visitor = open_visitor(browser, f"{site.origin}/landing.html", init_script=blocked)
    try:
        assert wait_for_dni(visitor.page) == "swapped"
        before = visitor.session()
        assert "ppc_dni_" in visitor.page.evaluate("document.cookie")
        visitor.page.goto(f"{site.origin}/pricing.html")
        assert wait_for_dni(visitor.page) == "swapped"
        after = visitor.session()
        assert (after["session_id"], after["number"]) == (before["session_id"], before["number"])
        assert visitor.errors == [] and script_errors(visitor) == []
    finally:
        visitor.context.close()


@pytest.mark.parametrize(
    ("page_path", "why"),
    [
        ("/down.html", "Failed to fetch"),  # connection refused
        ("/slow.html", "abort"),  # no answer within data-timeout
        ("/unknown-key.html", r"HTTP 40[14]"),  # a 4xx the page can read: CORS on errors too
    ],
    ids=["closed-port", "no-answer", "unknown-key"],
)
def test_the_original_number_stays_when_the_api_fails(
    browser: Browser, site: Site, page_path: str, why: str
) -> None:
    # Given the API is unreachable, never answers (timeout), or refuses the pool key
    visitor = open_visitor(browser, f"{site.origin}{page_path}{VISITOR_A_QUERY}")
    try:
        # When the script gives up
        assert wait_for_dni(visitor.page) == "failed"
        assert re.search(why, str(visitor.page.evaluate("window.ppcDni.error")))
        # Then the page still shows its own number everywhere, and nothing was thrown
        page = visitor.page
        assert text(page, "#header-number") == DEFAULT_NUMBER
        assert text(page, "#plain") == (
            "Or dial 800.555.0100 any time, or +1 800 555 0100 from abroad."
        )
        assert page.get_attribute("#call-link", "href") == "tel:+18005550100"
        assert page.evaluate("window.ppcDni.session") is None
        visitor.screenshot(f"api-fails{page_path.replace('/', '-').removesuffix('.html')}")
        assert visitor.errors == []
        assert script_errors(visitor) == []
    finally:
        visitor.context.close()
