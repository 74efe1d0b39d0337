"""The dashboard's SIP phones page in a real browser (Debian's headless Chromium via
Playwright) against the local stack: an admin adds an edge (its secret shown once, a bad
domain refused next to the field), adds a phone (username, password and realm shown once),
sees it go online when the edge reports a registration, sets a new password and revokes it;
an agent sees the same lists without any form or button that changes them."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect

from tests.e2e.conftest import LocalStack, Marketer
from tests.support.browser import Tab, log_in, nav_links, open_tab

pytestmark = pytest.mark.e2e

RUN = secrets.token_hex(3)
EDGE = f"Office {RUN}"
DOMAIN = f"office-{RUN}.example.com"
EXTENSION = "1001"
LABEL = "Front desk"
USER_AGENT = "Grandstream GXP1625"
SOURCE = "udp:203.0.113.7:5060"
AGENT_EMAIL = f"phones-agent-{RUN}@demo.example.com"
AGENT_PASSWORD = "Agent-password-1!"
# Filled in by the tests in order: the edge's secret (to report as the edge) and id.
EDGE_STATE: dict[str, str] = {}


@pytest.fixture(scope="module")
def admin(browser: Browser, stack: LocalStack, dashboard: str) -> Iterator[Tab]:
    tab = open_tab(browser, dashboard)
    # The page refreshes every 10 s for people; the test does not wait that long.
    tab.page.evaluate("sessionStorage.setItem('ppc.refreshSeconds', '1')")
    log_in(tab, stack.info["admin_email"], stack.info["admin_password"])
    expect(tab.page.get_by_role("heading", name="Today's performance")).to_be_visible()
    yield tab
    tab.page.context.close()


def edge_section(page: Page) -> Locator:
    return page.get_by_role("region", name=f"{EDGE} · {DOMAIN}")


def phones(page: Page) -> Locator:
    return page.get_by_role("table", name=f"Phones on {EDGE}")


def phone_row(page: Page) -> Locator:
    return phones(page).get_by_role("row").filter(has_text=f"sip:{EXTENSION}@{DOMAIN}")


def devices_of_edge(marketer: Marketer) -> list[dict[str, Any]]:
    reply = marketer.http.get(f"/api/v1/sip-edges/{EDGE_STATE['id']}")
    assert reply.status_code == 200, reply.text
    return list(reply.json()["devices"])


def report(stack: LocalStack, registered: bool) -> None:
    """What the edge's Kamailio sends when the phone registers (or unregisters)."""
    now = time.time()
    reply = httpx.post(
        f"{stack.url}/edge/v1/registrations",
        json={
            "extension": EXTENSION,
            "registered": registered,
            "contact_count": 1 if registered else 0,
            "user_agent": USER_AGENT,
            "source": SOURCE,
            "expires": now + 3600,
            "at": now,
        },
        headers={"X-Edge-Secret": EDGE_STATE["secret"]},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"result": "applied"}


def test_admin_adds_an_edge_and_sees_its_secret_once(
    admin: Tab, dashboard: str, marketer: Marketer
) -> None:
    page = admin.page
    # Given the SIP phones page from the navigation
    page.get_by_role("navigation", name="Main").get_by_role("link", name="SIP phones").click()
    expect(page.get_by_role("heading", name="SIP phones", level=1)).to_be_visible()
    assert "SIP phones" in nav_links(page)
    form = page.get_by_role("form", name="New SIP edge")
    # When the domain is not a host name, Then the API's error shows next to the field
    form.get_by_label("Edge name").fill(EDGE)
    form.get_by_label("SIP domain").fill("not a domain!")
    form.get_by_role("button", name="Create edge").click()
    expect(form.locator("[data-error-for=domain]")).to_have_text(
        re.compile("must be a host name like sip.office.example.com")
    )
    expect(form.get_by_label("SIP domain")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("SIP domain")).to_be_focused()
    admin.screenshot("phones-edge-field-error")
    assert sum(1 for _, text in admin.console[admin.checked :] if "status of 400" in text) == 1
    assert admin.problems(allow_http_errors=True) == []

    # When the domain is fixed, Then the edge is created and its secret shown once
    form.get_by_label("SIP domain").fill(DOMAIN.upper())
    form.get_by_role("button", name="Create edge").click()
    section = edge_section(page)
    secret_box = section.get_by_test_id("edge-secret")
    expect(secret_box).to_have_text(re.compile(r"^edg_\S{20,}$"))
    expect(section.get_by_role("region", name=f"Edge secret of {EDGE}")).to_contain_text(
        "EDGE_SHARED_SECRET"
    )
    expect(form.locator("[data-error-for=domain]")).to_be_empty()
    secret = secret_box.inner_text()
    stored = next(
        e for e in marketer.http.get("/api/v1/sip-edges").json()["edges"] if e["domain"] == DOMAIN
    )
    assert stored["name"] == EDGE
    assert secret.startswith(stored["secret_prefix"])
    EDGE_STATE.update(secret=secret, id=stored["id"])
    # The edges list has it: no phones, never synced, only the secret's prefix
    row = page.get_by_role("table", name="SIP edges").get_by_role("row").filter(has_text=EDGE)
    expect(row).to_contain_text(DOMAIN)
    expect(row).to_contain_text("0 / 0")
    expect(row).to_contain_text("never")
    expect(row).to_contain_text(f"{stored['secret_prefix']}…")
    expect(phones(page)).to_have_count(0)
    expect(section).to_contain_text("No phones yet")
    admin.screenshot("phones-edge-secret")

    # When the same domain is added again, Then "taken" shows next to the domain
    form.get_by_label("Edge name").fill("Again")
    form.get_by_label("SIP domain").fill(DOMAIN)
    form.get_by_role("button", name="Create edge").click()
    expect(form.locator("[data-error-for=domain]")).to_have_text("taken")
    assert sum(1 for _, text in admin.console[admin.checked :] if "status of 409" in text) == 1
    assert admin.problems(allow_http_errors=True) == []


def test_admin_adds_a_phone_and_sees_its_password_once(
    admin: Tab, dashboard: str, marketer: Marketer
) -> None:
    page = admin.page
    admin.go(dashboard, "phones")
    section = edge_section(page)
    form = section.get_by_role("form", name=f"New phone on {EDGE}")
    me = marketer.http.get("/api/v1/me").json()
    admin_id, admin_email = me["user_id"], me["email"]
    # When the extension is not a SIP username, Then the browser's check names the field
    form.get_by_label("Extension").fill("10 01")
    form.get_by_role("button", name="Add phone").click()
    expect(form.locator("[data-error-for=extension]")).not_to_be_empty()
    expect(form.get_by_label("Extension")).to_have_attribute("aria-invalid", "true")
    # When the phone is filled in properly, Then it is created
    form.get_by_label("Extension").fill(EXTENSION)
    form.get_by_label("Label").fill(LABEL)
    form.get_by_label("Operator").select_option(label=admin_email)
    form.get_by_role("button", name="Add phone").click()
    # and what to type into the phone is shown once
    shown = section.get_by_role("region", name=f"Phone {EXTENSION} on {EDGE}")
    expect(shown).to_be_focused()
    expect(shown.get_by_test_id("phone-username")).to_have_text(EXTENSION)
    expect(shown.get_by_test_id("phone-realm")).to_have_text(DOMAIN)
    expect(shown.get_by_test_id("phone-server")).to_have_text(DOMAIN)
    password_box = shown.get_by_test_id("phone-password")
    expect(password_box).to_have_text(re.compile(r"^\S{16,}$"))
    password = password_box.inner_text()
    # and the phone is listed, offline, with its operator and SIP address
    row = phone_row(page)
    expect(row).to_contain_text(LABEL)
    expect(row).to_contain_text(admin_email)
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "offline")
    expect(row).to_contain_text("never")
    expect(page.get_by_role("table", name="SIP edges")).to_contain_text("0 / 1")
    admin.screenshot("phones-new-password")
    devices = devices_of_edge(marketer)
    assert [(d["extension"], d["label"], d["user_id"]) for d in devices] == [
        (EXTENSION, LABEL, admin_id)
    ]
    assert "password" not in devices[0]
    # When the same extension is added again, Then the API's "taken" is next to the field
    form.get_by_label("Extension").fill(EXTENSION)
    form.get_by_role("button", name="Add phone").click()
    expect(form.locator("[data-error-for=extension]")).to_have_text("taken")
    expect(form.get_by_label("Extension")).to_have_attribute("aria-invalid", "true")
    assert sum(1 for _, text in admin.console[admin.checked :] if "status of 409" in text) == 1
    # and the password shown is still the one of the phone
    expect(password_box).to_have_text(password)
    # When the page is loaded again, Then the password is not shown any more
    page.reload()
    expect(phone_row(page)).to_contain_text(LABEL)
    assert password not in page.content()
    assert section.get_by_test_id("phone-password").count() == 0
    assert admin.problems(allow_http_errors=True) == []


def test_a_registration_shows_the_phone_online(
    admin: Tab, dashboard: str, stack: LocalStack
) -> None:
    page = admin.page
    admin.go(dashboard, "phones")
    row = phone_row(page)
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "offline")
    # When the edge reports the phone registered
    report(stack, registered=True)
    # Then the page shows it online, with its user agent and address, on its next refresh
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "online")
    expect(row.locator(".badge")).to_have_text("online")
    expect(row).to_contain_text(USER_AGENT)
    expect(row).to_contain_text(SOURCE)
    expect(row).not_to_contain_text("never")
    expect(page.get_by_role("table", name="SIP edges")).to_contain_text("1 / 1")
    expect(page.get_by_text(re.compile(r"^1 of 1 phones online\. Updated"))).to_be_visible()
    expect(edge_section(page)).to_contain_text("1 of 1 phones online; last sync never.")
    admin.screenshot("phones-online")
    # When it unregisters, Then "Refresh now" shows it offline again
    report(stack, registered=False)
    page.get_by_role("button", name="Refresh now").click()
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "offline")
    assert admin.problems() == []


def test_set_a_new_password_then_revoke_the_phone(
    admin: Tab, dashboard: str, marketer: Marketer
) -> None:
    page = admin.page
    admin.go(dashboard, "phones")
    section = edge_section(page)
    row = phone_row(page)
    assert devices_of_edge(marketer)[0]["password_rotated_at"] is None
    # When a new password is asked for (and confirmed), Then it is shown once
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name=f"New password for {EXTENSION} on {EDGE}").click()
    shown = section.get_by_role("region", name=f"Phone {EXTENSION} on {EDGE}: new password")
    password_box = shown.get_by_test_id("phone-password")
    expect(password_box).to_have_text(re.compile(r"^\S{16,}$"))
    assert dialogs and EXTENSION in dialogs[0]
    password = password_box.inner_text()
    assert devices_of_edge(marketer)[0]["password_rotated_at"] is not None
    admin.screenshot("phones-rotated-password")
    # The password survives the page's own refreshes, and is gone when dismissed
    status = page.get_by_text(re.compile(r"phones online\. Updated"))
    expect(status).not_to_have_text(status.inner_text())
    expect(password_box).to_have_text(password)
    shown.get_by_role("button", name="I have copied it").click()
    expect(section).to_be_focused()
    assert password not in page.content()

    # When the phone is revoked but the confirm is dismissed, Then nothing changes
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name=f"Revoke {EXTENSION} on {EDGE}").click()
    expect(row).to_have_count(1)
    assert [d["extension"] for d in devices_of_edge(marketer)] == [EXTENSION]
    # When it is confirmed, Then it is gone from the list and from the API
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Revoke {EXTENSION} on {EDGE}").click()
    expect(section).to_contain_text("No phones yet")
    expect(phones(page)).to_have_count(0)
    expect(page.get_by_role("table", name="SIP edges")).to_contain_text("0 / 0")
    assert devices_of_edge(marketer) == []
    admin.screenshot("phones-revoked")
    assert admin.problems() == []


def test_an_agent_sees_the_phones_read_only(
    browser: Browser, dashboard: str, stack: LocalStack, marketer: Marketer
) -> None:
    # Given a phone on the edge again, and an agent created by the admin through the API
    marketer.post(
        f"/api/v1/sip-edges/{EDGE_STATE['id']}/devices", {"extension": EXTENSION, "label": LABEL}
    )
    report(stack, registered=True)
    created = marketer.http.post(
        "/api/v1/users", json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD, "role": "agent"}
    )
    assert created.status_code == 201, created.text
    # When the agent logs in and opens SIP phones
    tab = open_tab(browser, dashboard)
    try:
        page = tab.page
        log_in(tab, AGENT_EMAIL, AGENT_PASSWORD)
        expect(page.get_by_role("heading", name="Today's performance")).to_be_visible()
        page.get_by_role("navigation", name="Main").get_by_role("link", name="SIP phones").click()
        # Then the edges and phones are listed with their status
        edges = page.get_by_role("table", name="SIP edges")
        expect(edges.get_by_role("row").filter(has_text=EDGE)).to_contain_text("1 / 1")
        row = phone_row(page)
        expect(row).to_contain_text(LABEL)
        expect(row.locator("[data-status]")).to_have_attribute("data-status", "online")
        expect(row).to_contain_text(USER_AGENT)
        # but nothing that changes them
        assert page.get_by_role("form").count() == 0
        expect(page.locator("main")).not_to_contain_text("null")
        assert page.locator("main button").all_inner_texts() == ["Refresh now"]
        assert edges.get_by_role("columnheader", name="Actions").count() == 0
        assert phones(page).get_by_role("columnheader", name="Actions").count() == 0
        tab.screenshot("phones-agent")
        assert tab.problems() == []
    finally:
        tab.page.context.close()
