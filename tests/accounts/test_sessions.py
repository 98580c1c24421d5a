"""The list of signed-in sessions, signing out the others, and sign-out everywhere on password change."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, SignInSession
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def browser(agent: str, ip: str) -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert client.post(reverse("login"), {"username": "alice", "password": PASSWORD}).status_code == 302
    return client


def test_sign_in_records_address_and_browser(alice):
    laptop = browser("Firefox on the laptop", "198.51.100.1")
    browser("Phone browser", "198.51.100.2")
    page = laptop.get(reverse("security"))
    body = page.content.decode()
    assert "Firefox on the laptop" in body and "Phone browser" in body and "198.51.100.2" in body
    assert "this browser" in body
    assert SignInSession.objects.filter(user=alice).count() == 2


def test_sign_out_other_sessions(alice):
    laptop = browser("Laptop", "198.51.100.1")
    phone = browser("Phone", "198.51.100.2")
    laptop.post(reverse("sign_out_other_sessions"))
    assert phone.get(reverse("home")).status_code == 302
    assert laptop.get(reverse("home")).status_code == 200
    assert SignInSession.objects.filter(user=alice).count() == 1
    assert AuditEvent.objects.filter(user=alice, kind="sessions_revoked", detail__count=1).exists()


def test_password_change_signs_out_everywhere_else(alice):
    laptop = browser("Laptop", "198.51.100.1")
    phone = browser("Phone", "198.51.100.2")
    new = "another long passphrase 42"
    response = laptop.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    assert laptop.get(reverse("home")).status_code == 200
    assert phone.get(reverse("home")).status_code == 302
    assert AuditEvent.objects.filter(user=alice, kind="password_changed").exists()
    # The list shows only the browser that changed it, and no dead session rows remain.
    assert len(laptop.get(reverse("security")).context["sessions"]) == 1
    assert Session.objects.count() == 1


def test_bob_never_sees_alices_sessions(alice, bob):
    browser("Alice's browser", "198.51.100.1")
    client = Client()
    client.force_login(bob)
    assert b"Alice's browser" not in client.get(reverse("security")).content


def test_pages_work_while_the_session_cache_is_away(alice, settings):
    """Sessions live in PostgreSQL with a Redis copy in front: without Redis, pages still work."""
    from django.core.cache import caches

    laptop = browser("Laptop", "198.51.100.1")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    try:
        assert laptop.get(reverse("home")).status_code == 200
        assert laptop.get(reverse("security")).status_code == 200
    finally:
        caches["default"].close()
