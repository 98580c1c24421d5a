"""A new person signs up, signs in, adds an IMAP account on the test stack and tests it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.mailstack, pytest.mark.django_db(transaction=True)]


def test_sign_up_sign_in_add_account_and_test_connection(
    page: Page, live_server, mailstack, mail_user, mail_settings, celery_worker_thread, artifacts_dir
):
    box = mail_user()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Create an account").click()

    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.screenshot(path=artifacts_dir / "signup.png", full_page=True)
    page.get_by_role("button", name="Create account").click()

    # Sign out and in again, as a returning person would.
    page.get_by_role("button", name=re.compile("Sign out")).click()
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    page.screenshot(path=artifacts_dir / "home-empty.png", full_page=True)
    page.get_by_role("link", name="Add a mail account").first.click()

    page.get_by_label("Email address").fill(box.address)
    page.get_by_label("Your name").fill("Carol Example")
    page.get_by_label("Account name").fill("Test stack")
    page.get_by_label("Incoming protocol").select_option("imap")
    page.get_by_label("Incoming server").fill("localhost")
    page.get_by_label("Incoming port").fill(str(mailstack.imap_port))
    page.get_by_label("Incoming security").select_option("starttls")
    page.get_by_label("Incoming user name").fill(box.address)
    page.get_by_label("Incoming password").fill(box.password)
    page.get_by_label("Outgoing (SMTP) server").fill("localhost")
    page.get_by_label("Outgoing port").fill(str(mailstack.submission_port))
    page.get_by_label("Outgoing security").select_option("starttls")
    page.screenshot(path=artifacts_dir / "add-account.png", full_page=True)
    page.get_by_role("button", name="Add account").click()

    expect(page.get_by_text("Connection test succeeded.")).to_be_visible(timeout=20_000)
    page.screenshot(path=artifacts_dir / "connection-ok.png", full_page=True)

    # Testing again from the button uses htmx and the real worker once more.
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("Connection test succeeded.")).to_be_visible(timeout=20_000)

    page.get_by_role("link", name="All mail accounts").click()
    expect(page.get_by_text("Working")).to_be_visible()


def test_phone_width_login_page_fits(page: Page, live_server, artifacts_dir):
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=artifacts_dir / "login-phone.png", full_page=True)
