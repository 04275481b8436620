"""The sandbox page as a clinician uses it: open a chart, read the cards, dismiss one with a reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from cds_service import Config
from fhir_fixtures.ehr import list_fixtures

LMS = next(f for f in list_fixtures(Config().fixtures_dir) if "lms" in f.slug and "metastatic" in f.slug)
REASON = "expert-contradicts"


def test_open_chart_then_dismiss_a_card_stores_the_reason(live_server: Any, page: Page, artifacts: Path) -> None:
    page.goto(f"{live_server.url}/sandbox")
    select = page.get_by_test_id("patient-select")
    expect(select).to_have_attribute("data-ready", "true")
    select.select_option(LMS.slug)

    cards = page.get_by_test_id("card")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 1
    expect(page.get_by_test_id("status")).to_contain_text("ms")
    request = json.loads(page.get_by_test_id("raw-request").text_content() or "{}")
    response = json.loads(page.get_by_test_id("raw-response").text_content() or "{}")
    assert request["context"]["patientId"] == LMS.patient and request["hookInstance"]
    assert len(response["cards"]) == cards.count()

    card = cards.filter(has=page.locator(f'option[value="{REASON}"]')).first
    summary = card.get_by_test_id("card-summary").text_content()
    card.get_by_test_id("dismiss").click()
    card.get_by_test_id("override-reason").select_option(REASON)
    card.get_by_test_id("override-comment").fill("Tumour board chose another plan")
    card.get_by_test_id("submit-dismiss").click()
    expect(card.get_by_test_id("feedback-status")).to_have_text("Feedback stored: card dismissed")
    expect(page.get_by_test_id("stored-feedback")).to_contain_text(REASON)

    dismissed = next(c for c in response["cards"] if c["summary"] == summary)
    [row] = live_server.app.extensions["sarcoma"].feedback.list()
    assert row["card"] == dismissed["uuid"]
    assert row["outcome"] == "overridden"
    assert row["overrideReason"]["reason"]["code"] == REASON
    assert row["overrideReason"]["userComment"] == "Tumour board chose another plan"

    page.evaluate("window.scrollTo(0, 0)")  # the exchange panel is sticky: show it beside the first card
    page.screenshot(path=str(artifacts / "sandbox.png"), full_page=True)


def test_feedback_report_shows_dismissed_and_accepted_cards_against_their_statements(
    live_server: Any, page: Page
) -> None:
    """Dismiss the card, open the chart again (a new hookInstance), accept a suggestion: both are reported."""
    page.goto(f"{live_server.url}/sandbox#{LMS.slug}")
    card = page.get_by_test_id("card").first
    card.get_by_test_id("dismiss").click()
    card.get_by_test_id("override-reason").select_option(REASON)
    card.get_by_test_id("submit-dismiss").click()
    expect(card.get_by_test_id("feedback-status")).to_have_text("Feedback stored: card dismissed")

    page.get_by_test_id("rerun").click()
    expect(page.get_by_test_id("card").first.get_by_test_id("dismiss")).to_be_enabled()
    card = page.get_by_test_id("card").first
    card.get_by_test_id("suggestion").first.click()
    expect(card.get_by_test_id("feedback-status")).to_have_text("Feedback stored: suggestion accepted")
    response = json.loads(page.get_by_test_id("raw-response").text_content() or "{}")
    statements = response["cards"][0]["extension"]["org.sarcoma-cds.statements"]

    expected = ["2", "1", "1", f"{REASON} (1)"]  # shown, accepted, overridden, override reasons
    table = page.get_by_test_id("feedback-report")
    for statement in statements:
        expect(table.locator(f'tr[data-statement="{statement}"] td')).to_have_text([statement, *expected])

    db = live_server.app.extensions["sarcoma"].feedback.db.path
    command = [sys.executable, "-m", "cds_service.cli", "feedback-report", "--db", str(db)]
    report = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    rows = {line.split()[0]: line.split()[1:] for line in report.splitlines() if line.split()[:1] != []}
    for statement in statements:
        assert rows[statement] == expected[:3] + [REASON, "(1)"], report


def test_card_text_is_shown_as_text_never_as_markup(live_server: Any, page: Page) -> None:
    """A hostile card cannot inject HTML or script links: the page renders markdown into elements."""
    hostile = {
        "cards": [
            {
                "uuid": "7f0c7a4e-2d53-4d5e-9a61-3f5d2b8e1c10",
                "summary": "<img src=x onerror=alert(1)> summary",
                "indicator": "critical",
                "source": {"label": "<b>label</b>", "url": "javascript:alert(1)"},
                "detail": "## Heading\n\n**bold** <script>alert(1)</script>\n\n- [bad](javascript:alert(1))\n- [good](https://example.org/x)",
                "links": [{"label": "smart app", "url": "https://example.org/launch", "type": "smart"}],
            }
        ]
    }
    page.route(
        "**/cds-services/sarcoma-patient-view",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(hostile)),
    )
    page.goto(f"{live_server.url}/sandbox#{LMS.slug}")
    card = page.get_by_test_id("card")
    expect(card).to_have_count(1)
    expect(card).to_have_class("card indicator-critical")
    expect(card.get_by_test_id("card-summary")).to_have_text("<img src=x onerror=alert(1)> summary")
    detail = card.get_by_test_id("card-detail")
    expect(detail.locator("h5")).to_have_text("Heading")  # card summary is h3; detail headings nest below
    expect(detail.locator("strong")).to_have_text("bold")
    assert detail.locator("script, img").count() == 0
    assert "<script>alert(1)</script>" in (detail.text_content() or "")
    hrefs = card.locator("a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs == ["https://example.org/x"]
    assert card.locator(".source-label b").count() == 0


def test_the_plan_card_comes_first_and_names_the_options_for_metastatic_first_line(
    live_server: Any, page: Page
) -> None:
    page.goto(f"{live_server.url}/sandbox")
    select = page.get_by_test_id("patient-select")
    expect(select).to_have_attribute("data-ready", "true")
    select.select_option("lms-metastatic-first-line")
    first = page.get_by_test_id("card").first
    expect(first).to_be_visible()
    summary = first.get_by_test_id("card-summary").text_content() or ""
    assert summary.startswith("LMS") and "1st line" in summary
    assert "doxorubicin" in summary.split(": ", 1)[1]  # the options, by drug name
