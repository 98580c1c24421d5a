"""The operator's overview page in a real browser: figures, charts, the live section, phone width."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import AccountState
from tests.accounts.factories import make_account
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def busy_service(alice, bob, operator):
    from webmail.compose.models import OutgoingMessage
    from webmail.mail.models import SyncState

    now = timezone.now()
    fine = make_account(alice, name="Work", state=AccountState.OK)
    SyncState.objects.create(account=fine, finished_at=now)
    make_account(alice, name="Old", state=AccountState.OK)
    make_account(bob, name="Bob's", state=AccountState.AUTH_FAILED)
    n = 0
    for hours, count, state in (
        (1, 4, "sent"),
        (5, 7, "sent"),
        (5, 1, "failed"),
        (30, 3, "sent"),
        (200, 9, "sent"),
    ):
        for _ in range(count):
            n += 1
            when = now - timedelta(hours=hours)
            msg = OutgoingMessage.objects.create(
                user=alice, account=fine, state=state, message_id=f"<{n}@x>", sent_at=when
            )
            OutgoingMessage.objects.filter(pk=msg.pk).update(updated_at=when)


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_overview_page(page: Page, live_server, busy_service, artifacts_dir):
    sign_in(page, live_server.url, "operator")
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_test_id("people-total")).to_have_text("3")
    expect(page.get_by_test_id("state-auth")).to_have_text("1")
    expect(page.get_by_test_id("state-lagging")).to_have_text("1")
    expect(page.locator("svg.bars")).to_have_count(2)
    # The live section arrives through htmx (no inline script anywhere).
    expect(page.get_by_role("heading", name="Queues")).to_be_visible(timeout=10_000)
    expect(page.get_by_role("heading", name="IDLE watchers")).to_be_visible()
    page.screenshot(path=artifacts_dir / "dashboard-overview.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_role("heading", name="Queues")).to_be_visible(timeout=10_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=artifacts_dir / "dashboard-overview-phone.png", full_page=True)


def test_a_person_who_is_not_staff_cannot_open_it(page: Page, live_server, alice):
    sign_in(page, live_server.url, "alice")
    response = page.goto(f"{live_server.url}/dashboard/")
    assert response.status == 403
