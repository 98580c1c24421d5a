"""TOTP enrolment, the two-step sign-in, recovery codes, and 2FA required for everyone."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import two_factor
from accounts.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle(settings):
    """django-otp slows down retries after a wrong code (1 s, 2 s, ...); tests retry at once."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_for(device: TOTPDevice, offset: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    device = two_factor.pending_device(user)
    return device, two_factor.confirm_device(device)


def test_person_enrols_with_a_code_from_the_app(client, alice):
    client.force_login(alice)
    page = client.get(reverse("two_factor_setup"))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'src="data:image/svg+xml' in body and '<label for="id_code">' in body
    device = TOTPDevice.objects.get(user=alice, confirmed=False)

    wrong = client.post(
        reverse("two_factor_setup"), {"code": "000000" if code_for(device) != "000000" else "111111"}
    )
    assert wrong.status_code == 200 and "code" in wrong.context["form"].errors
    assert not two_factor.has_two_factor(alice)

    done = client.post(reverse("two_factor_setup"), {"code": code_for(device)})
    assert done.status_code == 200 and len(done.context["codes"]) == 10
    assert two_factor.has_two_factor(alice)
    assert AuditEvent.objects.filter(user=alice, kind="2fa_enabled").exists()
    # The session that enrolled stays signed in and verified.
    assert client.get(reverse("security")).status_code == 200


def test_sign_in_asks_for_the_code_before_any_session_exists(client, alice):
    device, _codes = enrol(alice)
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("login_code")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("home")).status_code == 302

    bad = client.post(reverse("login_code"), {"code": "12345x"})
    assert bad.status_code == 200 and "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(user=alice, kind="2fa_failed").exists()

    ok = client.post(reverse("login_code"), {"code": code_for(device)})
    assert ok.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)
    assert client.get(reverse("home")).status_code == 200


def test_a_recovery_code_works_once(client, alice):
    _device, codes = enrol(alice)
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert client.post(reverse("login_code"), {"code": codes[0]}).status_code == 302
    assert AuditEvent.objects.filter(user=alice, kind="recovery_code_used").exists()
    assert StaticToken.objects.filter(device__user=alice).count() == 9
    client.logout()
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    again = client.post(reverse("login_code"), {"code": codes[0]})
    assert again.status_code == 200 and "_auth_user_id" not in client.session


def test_too_many_wrong_codes_start_over(client, alice):
    enrol(alice)
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    for _ in range(4):
        client.post(reverse("login_code"), {"code": "abcdef"})
    last = client.post(reverse("login_code"), {"code": "abcdef"})
    assert last.status_code in (302, 429)
    assert client.get(reverse("login_code")).status_code == 302


def test_a_session_made_elsewhere_is_ended_without_the_code(client, alice):
    """force_login stands for any way in that skips the code step (e.g. the admin's login form)."""
    enrol(alice)
    client.force_login(alice)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert "_auth_user_id" not in client.session


def test_admin_login_goes_through_the_two_step_login(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_operator_can_require_2fa_for_everyone(client, settings, alice):
    settings.WEBMAIL_REQUIRE_2FA = True
    client.force_login(alice)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url == reverse("two_factor_setup")
    assert client.get(reverse("two_factor_setup")).status_code == 200
    device = TOTPDevice.objects.get(user=alice)
    client.post(reverse("two_factor_setup"), {"code": code_for(device)})
    assert client.get(reverse("home")).status_code == 200
    # Turning it off is refused while it is required.
    client.post(reverse("two_factor_disable"), {"password": PASSWORD})
    assert two_factor.has_two_factor(alice)


def test_turning_2fa_off_needs_the_password(client, alice):
    device, _ = enrol(alice)
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    client.post(reverse("login_code"), {"code": code_for(device)})
    client.post(reverse("two_factor_disable"), {"password": "wrong"})
    assert two_factor.has_two_factor(alice)
    client.post(reverse("two_factor_disable"), {"password": PASSWORD})
    assert not two_factor.has_two_factor(alice)
    assert AuditEvent.objects.filter(user=alice, kind="2fa_disabled").exists()


def test_new_recovery_codes_replace_the_old(client, alice):
    device, old = enrol(alice)
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    client.post(reverse("login_code"), {"code": code_for(device)})
    response = client.post(reverse("recovery_codes"), {"password": PASSWORD})
    new = response.context["codes"]
    assert set(new).isdisjoint(old)
    assert set(StaticToken.objects.filter(device__user=alice).values_list("token", flat=True)) == set(new)
