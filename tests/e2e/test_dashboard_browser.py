"""The marketer dashboard in a real browser: Debian's headless Chromium, driven by Playwright,
against the dashboard origin of the local stack (static bundle + the API proxied on the same
origin). A marketer sets up a campaign from nothing, a simulated call arrives, and it shows in
the call log, the CSV export and the overview; forms show the API's field errors; an agent
sees no admin pages; sessions refresh, end on a 401 and on log out. Campaigns are edited (payout,
IVR tree, fallback), pools created with their snippet, cap usage follows the calls, publisher
payouts are overridden per campaign, a call's detail tells its story as a timeline, and a
target is edited into an RTB bidder while its buyer is disabled from its row."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import LocalStack, Marketer
from tests.support.browser import Tab, log_in, nav_links, open_tab
from tools.callsim import CallerScript, CallSimulator, PartyBehaviour

pytestmark = pytest.mark.e2e

BUYER = "Acme Insurance"
TARGET = "Acme call center"
CAMPAIGN = "Spring Medicare"
TRACKING_NUMBER = "+18775550990"
POOL_NUMBER = "+18775550991"
POOL = "Spring landing pages"
PUBLISHER = "Leads R Us"
CALLER = "+13125550990"
AGENT_EMAIL = "agent@demo.example.com"
AGENT_PASSWORD = "Agent-password-1!"
ADMIN_PAGES = ["Campaigns", "Buyers & targets", "Numbers", "Publishers", "Users"]
AGENT_PAGES = ["Overview", "Call log", "Reports", "SIP phones"]


def metric(page: Page, key: str) -> Locator:
    return page.locator(f"[data-metric={key}]")


def buyer_usage(page: Page, cap: str) -> Locator:
    usage = page.get_by_role("list", name=f"Cap usage of {BUYER}")
    return usage.locator(f"[data-cap={cap}] .cap-used")


def campaign_id(marketer: Marketer, name: str = CAMPAIGN) -> str:
    campaigns = marketer.http.get("/api/v1/campaigns").json()["campaigns"]
    return str(next(c["id"] for c in campaigns if c["name"] == name))


def dollars(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


@pytest.fixture(scope="module")
def admin(browser: Browser, stack: LocalStack, dashboard: str) -> Iterator[Tab]:
    tab = open_tab(browser, dashboard)
    # The overview refreshes every 15 s for people; the test does not wait that long.
    tab.page.evaluate("sessionStorage.setItem('ppc.refreshSeconds', '1')")
    yield tab
    tab.page.context.close()


def test_log_in_shows_the_overview_and_every_admin_page(admin: Tab, stack: LocalStack) -> None:
    page = admin.page
    # Given the login page, When the password is wrong, Then the API's refusal is shown
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    log_in(admin, stack.info["admin_email"], "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("email or password is not correct")
    # When the demo admin logs in
    log_in(admin, stack.info["admin_email"], stack.info["admin_password"])
    # Then the overview shows today's totals and the navigation has the admin pages
    expect(metric(page, "calls")).to_have_text(re.compile(r"^\d+$"))
    assert page.locator("figure.chart svg").count() >= 1
    assert set(AGENT_PAGES + ADMIN_PAGES) <= set(nav_links(page))
    expect(page.locator("#who")).to_contain_text("admin")
    admin.screenshot("overview-empty")
    assert admin.problems(allow_http_errors=True) == []  # the refused login's 401 only


def test_buyer_and_target_with_a_schedule_and_field_errors(
    admin: Tab, dashboard: str, marketer: Marketer
) -> None:
    page = admin.page
    admin.go(dashboard, "buyers")
    buyer_form = page.get_by_role("form", name="New buyer")
    # Given an empty buyer form, When it is sent, Then the browser-side check names the field
    buyer_form.get_by_role("button", name="Create buyer").click()
    expect(buyer_form.locator("[data-error-for=name]")).not_to_be_empty()
    expect(buyer_form.get_by_label("Buyer name")).to_have_attribute("aria-invalid", "true")
    # When the buyer is filled in, Then it is created
    buyer_form.get_by_label("Buyer name").fill(BUYER)
    buyer_form.get_by_label("Per day").fill("100")
    buyer_form.get_by_role("button", name="Create buyer").click()
    expect(page.get_by_role("table", name="Buyers")).to_contain_text(BUYER)
    # Each cap shows what its current period used of it: nothing yet
    expect(buyer_usage(page, "daily")).to_have_text("0 / 100")

    target_form = page.get_by_role("form", name="New target")
    target_form.get_by_label("Buyer", exact=True).select_option(label=BUYER)
    target_form.get_by_label("Target name").fill(TARGET)
    # One digit short: the browser cannot tell, the API (libphonenumber) can
    target_form.get_by_label("Destination (phone or SIP URI)").fill("+1 415 555 099")
    target_form.get_by_label("Concurrency").fill("3")
    target_form.get_by_label("Timezone").select_option("America/New_York")
    for day in ("Saturday", "Sunday"):
        target_form.get_by_label(day, exact=True).check()
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        # Open all day, so the test's call is routed whenever it runs
        target_form.get_by_label(f"{day} opens at").fill("00:00")
        target_form.get_by_label(f"{day} closes at").fill("00:00")
    target_form.get_by_label("States").fill("CA, IL tx")
    target_form.get_by_role("button", name="Create target").click()
    # Then the API's field error is shown next to the destination
    destination_error = target_form.locator("[data-error-for=destination]")
    expect(destination_error).not_to_be_empty()
    expect(target_form.get_by_label("Destination (phone or SIP URI)")).to_have_attribute(
        "aria-invalid", "true"
    )
    admin.screenshot("target-field-error")
    # When the destination is corrected, Then the target is created with its schedule
    target_form.get_by_label("Destination (phone or SIP URI)").fill("(415) 555-0990")
    target_form.get_by_role("button", name="Create target").click()
    expect(page.get_by_role("table", name="Targets")).to_contain_text(TARGET)
    expect(page.get_by_role("table", name="Targets")).to_contain_text("America/New_York")
    admin.screenshot("buyers-and-targets")
    stored = next(
        t for t in marketer.http.get("/api/v1/targets").json()["targets"] if t["name"] == TARGET
    )
    assert stored["destination"] == "+14155550990"
    assert stored["caps"]["concurrency"] == 3
    assert stored["schedule"]["timezone"] == "America/New_York"
    assert stored["schedule"]["days"]["sunday"] == [{"start": "00:00", "end": "24:00"}]
    assert len(stored["schedule"]["days"]) == 7
    assert stored["geo"]["states"] == ["CA", "IL", "TX"]
    # The API's 400 is the only console line
    assert sum(1 for _, text in admin.console[admin.checked :] if "status of 400" in text) == 1
    assert admin.problems(allow_http_errors=True) == []


def test_campaign_with_a_routing_plan_and_a_tracking_number(admin: Tab, dashboard: str) -> None:
    page = admin.page
    admin.go(dashboard, "campaigns")
    form = page.get_by_role("form", name="New campaign")
    form.get_by_label("Campaign name").fill(CAMPAIGN)
    form.get_by_label("Revenue per converted call ($)").fill("40")
    form.get_by_label("Payout per converted call ($)").fill("25")
    form.get_by_label("Conversion after (seconds connected)").fill("30")
    form.get_by_label(f"Use {TARGET}").check()
    form.get_by_label(f"Priority of {TARGET}").fill("1")
    form.get_by_role("button", name="Create campaign").click()
    campaigns = page.get_by_role("table", name="Campaigns")
    row = campaigns.get_by_role("row").filter(has_text=CAMPAIGN)
    expect(row).to_contain_text(TARGET)
    expect(row).to_contain_text("active")
    # Disable and enable again
    row.get_by_role("button", name=f"Pause {CAMPAIGN}").click()
    expect(row).to_contain_text("paused")
    row.get_by_role("button", name=f"Enable {CAMPAIGN}").click()
    expect(row).to_contain_text("active")
    admin.screenshot("campaigns")

    admin.go(dashboard, "numbers")
    add = page.get_by_role("form", name="Add a number you already own")
    add.get_by_label("Number").fill("(877) 555-0990")
    add.get_by_label("Name").fill("Spring mailer")
    add.get_by_role("button", name="Add number").click()
    numbers = page.get_by_role("table", name="Tracking numbers")
    row = numbers.get_by_role("row").filter(has_text=TRACKING_NUMBER)
    expect(row).to_contain_text("Spring mailer")
    # When the new number is assigned to the campaign, Then the list shows it
    row.get_by_role("button", name=f"Assign {TRACKING_NUMBER}").click()
    assign = page.get_by_role("form", name=f"Assign {TRACKING_NUMBER}")
    assign.get_by_label("Campaign").select_option(label=CAMPAIGN)
    assign.get_by_label("Source").fill("Direct mail")
    assign.get_by_role("button", name="Save assignment").click()
    row = page.get_by_role("table", name="Tracking numbers").get_by_role("row")
    expect(row.filter(has_text=TRACKING_NUMBER)).to_contain_text(CAMPAIGN)
    expect(row.filter(has_text=TRACKING_NUMBER)).to_contain_text("Direct mail")
    admin.screenshot("numbers")
    assert admin.problems() == []


def test_a_simulated_call_shows_in_the_overview_call_log_and_csv(
    admin: Tab, dashboard: str, stack: LocalStack, marketer: Marketer
) -> None:
    page = admin.page
    # Given the overview open (it refreshes itself)
    admin.go(dashboard, "overview")
    expect(metric(page, "calls")).to_have_text(re.compile(r"^\d+$"))
    calls_before = int(metric(page, "calls").inner_text())
    revenue_before = dollars(metric(page, "revenue").inner_text())
    # When a caller dials the campaign's number and talks for a minute
    with CallSimulator(stack.url, stack.info["twilio_auth_token"]) as cpaas:
        transcript = cpaas.place_call(
            CALLER, TRACKING_NUMBER, default_party=PartyBehaviour.answer(after=1, talk=60)
        )
    assert not transcript.application_error, transcript.to_text()
    assert transcript.dialled() == ["+14155550990"]
    assert marketer.call(transcript.call_sid)["converted"] is True
    # Then the overview counts it, and its revenue, without a reload
    expect(metric(page, "calls")).to_have_text(str(calls_before + 1))
    expect(metric(page, "revenue")).to_have_text(f"${revenue_before + 40:,.2f}")
    expect(metric(page, "best_target")).not_to_have_text("—")
    expect(page.get_by_role("table", name="Per source")).to_contain_text("Direct mail")
    admin.screenshot("overview")

    # And the call log lists it; its detail shows the target tried
    admin.go(dashboard, "calls")
    table = page.get_by_role("table", name="Calls")
    row = table.get_by_role("row").filter(has_text=CALLER)
    expect(row).to_contain_text(CAMPAIGN)
    expect(row).to_contain_text("$40.00")
    admin.screenshot("call-log")
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name=f"Call {CALLER} → {TRACKING_NUMBER}")).to_be_visible()
    tried = page.get_by_role("table", name="Targets tried")
    expect(tried).to_contain_text(TARGET)
    expect(tried).to_contain_text("connected")
    expect(page.get_by_role("region", name="Call", exact=True)).to_contain_text(transcript.call_sid)
    # The timeline: arrival, the target tried (with its time), the end with the money
    timeline = page.get_by_role("list", name="Timeline")
    expect(timeline.locator("[data-kind=arrival]")).to_contain_text(f"Call from {CALLER}")
    expect(timeline.locator("[data-kind=tried]")).to_contain_text(f"{TARGET}: connected")
    expect(timeline.locator("[data-kind=end]")).to_contain_text("revenue $40.00, payout $25.00")
    admin.screenshot("call-detail")

    # And the CSV export (an authenticated fetch handed to the browser as a download) has it
    admin.go(dashboard, "calls")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    exported = next(r for r in rows if r["call_sid"] == transcript.call_sid)
    assert (exported["from"], exported["revenue_cents"]) == (CALLER, "4000")
    assert download.value.suggested_filename.startswith("calls-")
    assert admin.problems() == []


def test_cap_usage_counts_the_call(admin: Tab, dashboard: str, marketer: Marketer) -> None:
    page = admin.page
    # Given the call of the previous test, When the buyers page opens
    admin.go(dashboard, "buyers")
    # Then the buyer's daily cap shows it, and the target's concurrency slot is free again
    expect(buyer_usage(page, "daily")).to_have_text("1 / 100")
    target_usage = page.get_by_role("list", name=f"Cap usage of {TARGET}")
    expect(target_usage.locator("[data-cap=concurrency] .cap-used")).to_have_text("0 / 3")
    usage = marketer.http.get("/api/v1/caps/usage").json()
    buyers = marketer.http.get("/api/v1/buyers").json()["buyers"]
    buyer_id = next(b["id"] for b in buyers if b["name"] == BUYER)
    assert usage["buyers"][buyer_id]["daily"] == 1
    admin.screenshot("cap-usage")
    assert admin.problems() == []


def test_edit_a_campaign_payout_fallback_and_ivr(
    admin: Tab, dashboard: str, stack: LocalStack, marketer: Marketer
) -> None:
    page = admin.page
    admin.go(dashboard, "campaigns")
    page.get_by_role("link", name=f"Edit {CAMPAIGN}").click()
    form = page.get_by_role("form", name=f"Edit {CAMPAIGN}")
    # The stored settings are in the form, money in dollars
    expect(form.get_by_label("Payout per converted call ($)")).to_have_value("25.00")
    expect(form.get_by_label(f"Use {TARGET}")).to_be_checked()
    form.get_by_label("Payout per converted call ($)").fill("30")
    # One digit short: the API's error shows next to the fallback number
    form.get_by_label("Fallback number (optional)").fill("+1 415 555 099")
    # An IVR question with two answers
    form.get_by_role("button", name="Add IVR node").click()
    node = form.get_by_role("group", name="IVR node 1")
    node.get_by_label("Node name").fill("age")
    node.get_by_label("Prompt (said to the caller)").fill(
        "Are you over 65? Press 1 for yes, 2 for no."
    )
    node.get_by_label("Tag (stores the answer)").fill("age_over_65")
    node.get_by_label("Next node").fill("zip")
    for index, (keys, answer) in enumerate([("1", "yes"), ("2", "no")], start=1):
        node.get_by_role("button", name="Add answer").click()
        choice = node.get_by_role("group", name=f"Answer {index}")
        choice.get_by_label("Keys").fill(keys)
        choice.get_by_label("Tag value").fill(answer)
    # A link to a node that does not exist is refused before sending, next to the field
    form.get_by_role("button", name="Save campaign").click()
    expect(node.locator("[data-error-for='ivr.nodes.age.next']")).to_have_text(
        "no node is named zip"
    )
    node.get_by_label("Next node").fill("")
    form.get_by_role("button", name="Save campaign").click()
    expect(form.locator("[data-error-for=fallback_number]")).not_to_be_empty()
    expect(form.get_by_label("Fallback number (optional)")).to_have_attribute(
        "aria-invalid", "true"
    )
    admin.screenshot("campaign-edit-error")
    form.get_by_label("Fallback number (optional)").fill("(415) 555-0999")
    form.get_by_role("button", name="Save campaign").click()
    row = page.get_by_role("table", name="Campaigns").get_by_role("row").filter(has_text=CAMPAIGN)
    expect(row).to_contain_text("$40.00 / $30.00")
    expect(row).to_contain_text("1 questions")
    stored = marketer.http.get(f"/api/v1/campaigns/{campaign_id(marketer)}").json()["campaign"]
    assert stored["payout_cents"] == 3000
    assert stored["revenue_cents"] == 4000
    assert stored["fallback_number"] == "+14155550999"
    assert stored["ivr"]["start"] == "age"
    age = stored["ivr"]["nodes"]["age"]
    assert age["tag"] == "age_over_65"
    assert [(c["digits"], c["value"]) for c in age["choices"]] == [("1", "yes"), ("2", "no")]
    # What was not touched is kept
    assert stored["plan"][0]["priority"] == 1
    assert stored["conversion"] == {
        "kind": "duration",
        "buffer_seconds": 30,
        "tag": None,
        "value": None,
    }
    assert stored["rtb"]["margin"] is None and stored["pixels"] == []

    # When a caller answers the IVR, Then the call's timeline shows the answer and the new payout
    with CallSimulator(stack.url, stack.info["twilio_auth_token"]) as cpaas:
        transcript = cpaas.place_call(
            "+13125550991",
            TRACKING_NUMBER,
            script=CallerScript(inputs=["1"]),
            default_party=PartyBehaviour.answer(after=1, talk=60),
        )
    assert transcript.dialled() == ["+14155550990"], transcript.to_text()
    admin.go(dashboard, f"calls/{transcript.call_sid}")
    timeline = page.get_by_role("list", name="Timeline")
    expect(timeline.locator("[data-kind=ivr]")).to_contain_text("age_over_65 = yes")
    expect(timeline.locator("[data-kind=tried] time")).to_have_text(re.compile(r"\d\d:\d\d:\d\d"))
    expect(timeline.locator("[data-kind=end]")).to_contain_text("payout $30.00")
    admin.screenshot("call-timeline")
    # The API's 400 (the fallback number) is the only console line
    assert admin.problems(allow_http_errors=True) == []


def test_create_a_pool_and_see_its_snippet(admin: Tab, dashboard: str, marketer: Marketer) -> None:
    page = admin.page
    marketer.post("/api/v1/numbers", {"number": POOL_NUMBER})
    admin.go(dashboard, "pools")
    form = page.get_by_role("form", name="New pool")
    form.get_by_label("Pool name").fill(POOL)
    form.get_by_label("Campaign").select_option(label=CAMPAIGN)
    form.get_by_label(f"Pool number {POOL_NUMBER}").check()
    form.get_by_label("Fixed numbers per source").fill("gclid = 877 555 0990")
    form.get_by_role("button", name="Create pool").click()
    # Then the API has the pool, and the page shows the snippet with the pool's public key
    pools = page.get_by_role("table", name="Pools")
    expect(pools).to_contain_text(POOL)
    stored = next(
        p for p in marketer.http.get("/api/v1/pools").json()["pools"] if p["name"] == POOL
    )
    assert stored["numbers"] == [POOL_NUMBER]
    assert stored["source_numbers"] == {"gclid": TRACKING_NUMBER}
    snippet = page.get_by_test_id("pool-snippet")
    expect(snippet).to_contain_text(f'data-pool-key="{stored["public_key"]}"')
    expect(snippet).to_contain_text("/dni.js")
    admin.screenshot("pools")
    # When the pool is edited, Then the API has the change and the page its statistics
    pools.get_by_role("link", name=f"Edit {POOL}").click()
    expect(page.locator("[data-stat=size]")).to_have_text("1")
    edit = page.get_by_role("form", name=f"Edit {POOL}")
    edit.get_by_label("Hold a number after the visitor leaves (seconds)").fill("600")
    edit.get_by_role("button", name="Save pool").click()
    expect(page.get_by_role("table", name="Pools")).to_be_visible()
    pool = marketer.http.get(f"/api/v1/pools/{stored['id']}").json()["pool"]
    assert pool["idle_seconds"] == 600
    assert pool["numbers"] == [POOL_NUMBER]
    assert admin.problems() == []


def test_publisher_api_key_is_shown_once_and_can_be_revoked(admin: Tab, dashboard: str) -> None:
    page = admin.page
    admin.go(dashboard, "publishers")
    form = page.get_by_role("form", name="New publisher")
    form.get_by_label("Contact email").fill("not an address")
    form.get_by_role("button", name="Create publisher").click()
    expect(form.locator("[data-error-for=name]")).not_to_be_empty()
    expect(form.locator("[data-error-for=contact_email]")).not_to_be_empty()
    form.get_by_label("Publisher name").fill(PUBLISHER)
    form.get_by_label("Contact email").fill("ops@leads.example.com")
    form.get_by_role("button", name="Create publisher").click()
    publishers = page.get_by_role("table", name="Publishers")
    publishers.get_by_role("button", name=f"API keys of {PUBLISHER}").click()
    page.get_by_role("form", name=f"New API key for {PUBLISHER}").get_by_label("Key label").fill(
        "Landing pages"
    )
    page.get_by_role("button", name="Create API key").click()
    key = page.get_by_test_id("new-key")
    expect(key).to_have_text(re.compile(r"^\S{20,}$"))
    plaintext = key.inner_text()
    admin.screenshot("publisher-key")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=re.compile(r"^Revoke key")).click()
    expect(page.get_by_role("table", name="API keys")).to_contain_text("revoked")
    # The plaintext is not shown again
    assert plaintext not in page.content()
    assert admin.problems() == []


def test_edit_a_publisher_payout_per_campaign(
    admin: Tab, dashboard: str, marketer: Marketer
) -> None:
    page = admin.page
    admin.go(dashboard, "publishers")
    publishers = page.get_by_role("table", name="Publishers")
    publishers.get_by_role("button", name=f"Edit {PUBLISHER}").click()
    form = page.get_by_role("form", name=f"Edit {PUBLISHER}")
    form.get_by_label(f"Payout for {CAMPAIGN} ($)").fill("12.5")
    form.get_by_role("button", name="Save publisher").click()
    row = page.get_by_role("table", name="Publishers").get_by_role("row").filter(has_text=PUBLISHER)
    expect(row).to_contain_text(f"{CAMPAIGN}: $12.50")
    stored = next(
        p
        for p in marketer.http.get("/api/v1/publishers").json()["publishers"]
        if p["name"] == PUBLISHER
    )
    assert stored["payout_overrides"] == {campaign_id(marketer): 1250}
    assert stored["contact_email"] == "ops@leads.example.com"
    admin.screenshot("publisher-payouts")
    assert admin.problems() == []


def test_reports_group_and_compare(admin: Tab, dashboard: str) -> None:
    page = admin.page
    admin.go(dashboard, "reports")
    form = page.get_by_role("form", name="Report options")
    form.get_by_label("Group by").select_option("campaign")
    form.get_by_role("button", name="Run report").click()
    report = page.get_by_role("table", name="Report")
    expect(report).to_contain_text(CAMPAIGN)
    expect(page.get_by_text("vs previous").first).to_be_visible()
    with page.expect_download() as download:
        form.get_by_role("button", name="Download CSV").click()
    assert CAMPAIGN in Path(download.value.path()).read_text()
    admin.screenshot("reports")
    assert admin.problems() == []


def test_edit_a_target_into_an_rtb_bidder_and_disable_a_buyer(
    admin: Tab, dashboard: str, marketer: Marketer
) -> None:
    page = admin.page
    admin.go(dashboard, "buyers")
    page.get_by_role("table", name="Targets").get_by_role("link", name=f"Edit {TARGET}").click()
    form = page.get_by_role("form", name=f"Edit {TARGET}")
    # Given the edit form, Then it shows the stored values
    expect(form.get_by_label("Concurrency")).to_have_value("3")
    expect(form.get_by_label("Timezone")).to_have_value("America/New_York")
    expect(form.get_by_label("Sunday", exact=True)).to_be_checked()
    expect(form.get_by_label("States")).to_have_value("CA IL TX")
    expect(form.get_by_label("Buyer", exact=True)).to_be_disabled()
    # When caps and hours change and the target becomes a bidder with a URL the API refuses
    form.get_by_label("Concurrency").fill("5")
    form.get_by_label("Per day").fill("40")
    form.get_by_label("Sunday", exact=True).uncheck()
    form.get_by_label("Monday opens at").fill("08:00")
    form.get_by_label("Monday closes at").fill("20:00")
    form.locator("summary", has_text="Real-time bidding").click()
    form.get_by_label("Make this target an RTB bidder").check()
    form.get_by_label("Bidder URL").fill("ftp://bids.example.com/ping")
    form.get_by_label("Bids below are ignored ($)").fill("5")
    form.get_by_role("button", name="Save target").click()
    # Then the API's error shows next to the URL
    expect(form.locator("[data-error-for='rtb.url']")).not_to_be_empty()
    expect(form.get_by_label("Bidder URL")).to_have_attribute("aria-invalid", "true")
    admin.screenshot("target-edit-rtb-error")
    # When the URL is fixed, Then the target is saved with every change
    form.get_by_label("Bidder URL").fill("https://bids.example.com/ping")
    form.get_by_role("button", name="Save target").click()
    targets = page.get_by_role("table", name="Targets")
    expect(targets.get_by_role("row").filter(has_text=TARGET)).to_contain_text("RTB bidder")
    listed = marketer.http.get("/api/v1/targets").json()["targets"]
    target_id = next(t["id"] for t in listed if t["name"] == TARGET)
    stored = marketer.http.get(f"/api/v1/targets/{target_id}").json()["target"]
    assert (stored["caps"]["concurrency"], stored["caps"]["daily"]) == (5, 40)
    assert stored["schedule"]["timezone"] == "America/New_York"
    assert stored["schedule"]["days"]["monday"] == [{"start": "08:00", "end": "20:00"}]
    assert "sunday" not in stored["schedule"]["days"]
    assert stored["rtb"]["url"] == "https://bids.example.com/ping"
    assert (stored["rtb"]["floor_cents"], stored["rtb"]["static_bid_cents"]) == (500, None)
    assert stored["rtb"]["response_map"]["bid_amount"] == "bidAmount"
    # What was not touched is kept
    assert stored["destination"] == "+14155550990"
    assert stored["geo"]["states"] == ["CA", "IL", "TX"]
    assert stored["enabled"] is True

    # When the buyer is disabled from its row, Then the API has it disabled, caps kept
    buyers = page.get_by_role("table", name="Buyers")
    buyers.get_by_role("button", name=f"Disable {BUYER}").click()
    expect(buyers.get_by_role("button", name=f"Enable {BUYER}")).to_be_visible()
    buyer = next(
        b for b in marketer.http.get("/api/v1/buyers").json()["buyers"] if b["name"] == BUYER
    )
    assert buyer["enabled"] is False
    assert buyer["caps"]["daily"] == 100
    admin.screenshot("buyers-edited")
    # The API's 400 (the bidder URL) is the only console line
    assert sum(1 for _, text in admin.console[admin.checked :] if "status of 400" in text) == 1
    assert admin.problems(allow_http_errors=True) == []


def test_the_token_is_refreshed_before_it_expires(admin: Tab, dashboard: str) -> None:
    page = admin.page
    admin.go(dashboard, "overview")
    before = page.evaluate("JSON.parse(sessionStorage.getItem('ppc.session'))")
    # Given a token a minute from expiry, When the app starts, Then it refreshes it at once
    page.evaluate(
        "s => sessionStorage.setItem('ppc.session', JSON.stringify(s))",
        {**before, "expiresAt": int(page.evaluate("Date.now()")) + 61_000},
    )
    page.reload()
    page.wait_for_function(
        "old => JSON.parse(sessionStorage.getItem('ppc.session')).idToken !== old",
        arg=before["idToken"],
    )
    expect(metric(page, "calls")).to_have_text(re.compile(r"^\d+$"))
    assert admin.problems() == []


def test_a_401_returns_to_the_login_page_and_log_out_ends_the_session(
    admin: Tab, dashboard: str, stack: LocalStack
) -> None:
    page = admin.page
    # Given a token the API refuses, When a page asks the API, Then the login page shows
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem('ppc.session'));
            sessionStorage.setItem('ppc.session', JSON.stringify({...s, idToken: 'forged'}));
        }"""
    )
    page.reload()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ppc.session')") is None
    # When the admin logs in again and then out, Then the session is gone
    log_in(admin, stack.info["admin_email"], stack.info["admin_password"])
    expect(metric(page, "calls")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ppc.session')") is None
    assert admin.problems(allow_http_errors=True) == []


def test_an_agent_sees_no_admin_pages(browser: Browser, dashboard: str, stack: LocalStack) -> None:
    # Given an agent created by the admin through the API
    token = httpx.post(
        f"{stack.url}/api/v1/auth/login",
        json={"email": stack.info["admin_email"], "password": stack.info["admin_password"]},
    ).json()["id_token"]
    created = httpx.post(
        f"{stack.url}/api/v1/users",
        json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD, "role": "agent"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code in {201, 409}, created.text
    # When the agent logs in on a tablet-sized screen
    tab = open_tab(browser, dashboard, width=800)
    try:
        page = tab.page
        log_in(tab, AGENT_EMAIL, AGENT_PASSWORD)
        expect(metric(page, "calls")).to_be_visible()
        # Then the menu is collapsed behind a button that the keyboard opens
        menu = page.get_by_role("button", name="Menu")
        expect(menu).to_have_attribute("aria-expanded", "false")
        menu.focus()
        page.keyboard.press("Enter")
        expect(menu).to_have_attribute("aria-expanded", "true")
        # and it lists only the agent's pages
        assert nav_links(page) == AGENT_PAGES
        tab.screenshot("agent-tablet")
        # and an admin page's address shows that it is not allowed
        tab.go(dashboard, "buyers")
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        assert page.get_by_role("form", name="New buyer").count() == 0
        # and the agent's pages work
        tab.go(dashboard, "calls")
        expect(page.get_by_role("table", name="Calls")).to_contain_text(CALLER)
        assert tab.problems() == []
    finally:
        tab.page.context.close()
