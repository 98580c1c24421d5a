"""Sign-in lockout (django-axes): per user name and address, with a cool-off, lifted by staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def fail(client, n, ip="203.0.113.5"):
    for _ in range(n):
        response = client.post(reverse("login"), {"username": "alice", "password": "wrong"}, REMOTE_ADDR=ip)
    return response


def sign_in(client, ip="203.0.113.5"):
    return client.post(reverse("login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR=ip)


def test_repeated_failures_lock_the_name_from_that_address(client, settings, alice):
    settings.AXES_FAILURE_LIMIT = 3
    fail(client, 2)
    response = fail(client, 1)
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert sign_in(client).status_code == 429  # even the right password waits
    assert AuditEvent.objects.filter(kind="locked_out", user=alice).exists()


def test_the_person_elsewhere_is_not_locked_out(client, settings, alice):
    settings.AXES_FAILURE_LIMIT = 3
    fail(client, 3, ip="203.0.113.66")
    response = sign_in(client, ip="198.51.100.7")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_the_lock_ends_after_the_cool_off(client, settings, alice):
    settings.AXES_FAILURE_LIMIT = 3
    fail(client, 3)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(hours=2))
    assert sign_in(client).status_code == 302


def test_staff_unlock_a_person(client, settings, alice, operator):
    settings.AXES_FAILURE_LIMIT = 3
    fail(client, 3)
    staff = client.__class__()
    staff.force_login(operator)
    page = staff.get(reverse("dashboard:lockouts"))
    assert b"alice" in page.content
    staff.post(reverse("dashboard:unlock"), {"username": "alice"})
    assert not AccessAttempt.objects.filter(username="alice").exists()
    assert AuditEvent.objects.filter(kind="unlocked", user=alice, detail__operator="operator").exists()
    assert sign_in(client).status_code == 302


def test_wrong_authenticator_codes_count_towards_the_lock(client, settings, alice):
    from accounts import two_factor

    settings.AXES_FAILURE_LIMIT = 3
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    two_factor.confirm_device(two_factor.pending_device(alice))
    sign_in(client)
    client.post(reverse("login_code"), {"code": "aaaaaa"}, REMOTE_ADDR="203.0.113.5")
    client.post(reverse("login_code"), {"code": "aaaaaa"}, REMOTE_ADDR="203.0.113.5")
    client.post(reverse("login_code"), {"code": "aaaaaa"}, REMOTE_ADDR="203.0.113.5")
    assert sign_in(client).status_code == 429
