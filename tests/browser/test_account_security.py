"""Two-factor authentication in a real browser: enrol with the key shown, then sign in with a code."""

from __future__ import annotations

import base64
import re

import pytest
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def code(secret: str, drift: int = 0) -> str:
    key = base64.b32decode(secret.replace(" ", "") + "=" * (-len(secret.replace(" ", "")) % 8))
    return f"{totp(key, drift=drift):06d}"


def test_enrol_and_sign_in_with_a_code(page: Page, live_server, alice, artifacts_dir):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto(f"{live_server.url}/settings/security/")
    page.get_by_role("link", name="Set up two-factor authentication").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text()
    page.screenshot(path=artifacts_dir / "2fa-setup.png", full_page=True)
    page.get_by_label("Authentication code").fill(code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    assert page.get_by_test_id("recovery-codes").locator("li").count() == 10
    page.screenshot(path=artifacts_dir / "2fa-recovery-codes.png", full_page=True)
    page.get_by_role("link", name="I saved them").click()
    expect(page.get_by_text("Signing in asks for a code")).to_be_visible()

    page.get_by_role("button", name="Sign out alice").click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Authentication code").fill("000000" if code(secret, 1) != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    page.screenshot(path=artifacts_dir / "2fa-login-code.png", full_page=True)
    # The code of the enrolment was used once: the next time step's code is accepted (tolerance 1).
    page.wait_for_timeout(1100)  # django-otp's throttle after one wrong code
    page.get_by_label("Authentication code").fill(code(secret, 1))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name=re.compile("Sign out alice"))).to_be_visible()
