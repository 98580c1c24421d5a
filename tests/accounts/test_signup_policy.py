"""Sign-up policies: open (with and without email verification), invite-only and closed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts import people
from accounts.models import AuditEvent, Invite
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def signup_data(username="carol", email=""):
    return {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD}


def link_in(message) -> str:
    return re.search(r"http://testserver(\S+)", message.body).group(1)


def test_open_signup_with_verification_waits_for_the_link(client, settings, django_user_model):
    settings.WEBMAIL_SIGNUP_VERIFY_EMAIL = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post(reverse("signup"), signup_data(email="carol@example.test"))
    assert response.status_code == 200
    carol = django_user_model.objects.get(username="carol")
    assert not carol.is_active
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["carol@example.test"]
    # Not signed in, and the password alone does not sign in before verification.
    assert client.get(reverse("home")).status_code == 302
    client.post(reverse("login"), {"username": "carol", "password": PASSWORD})
    assert "_auth_user_id" not in client.session

    response = client.get(link_in(mail.outbox[0]))
    assert response.status_code == 302 and response.url == reverse("mail_account_add")
    carol.refresh_from_db()
    assert carol.is_active and carol.profile.email_verified_at is not None
    assert AuditEvent.objects.filter(user=carol, kind="email_verified").exists()
    assert client.get(reverse("home")).status_code == 200


def test_verification_requires_an_address(client, settings, django_user_model):
    settings.WEBMAIL_SIGNUP_VERIFY_EMAIL = True
    response = client.post(reverse("signup"), signup_data(email=""))
    assert response.status_code == 200 and "email" in response.context["form"].errors
    assert not django_user_model.objects.exists()


def test_a_tampered_or_stale_verification_link_fails(client, settings, alice):
    token = people.verification_token(alice)
    assert client.get(reverse("signup_verify", args=[token + "x"])).status_code == 400
    alice.email = "changed@example.test"
    alice.save()
    assert client.get(reverse("signup_verify", args=[token])).status_code == 400


def test_open_signup_without_verification_still_verifies_a_given_address(client, settings, django_user_model):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.post(reverse("signup"), signup_data(email="carol@example.test"))
    carol = django_user_model.objects.get(username="carol")
    assert carol.is_active and "_auth_user_id" in client.session
    client.get(link_in(mail.outbox[0]))
    carol.refresh_from_db()
    assert carol.profile.email_verified_at is not None


def test_invite_only_hides_open_signup_and_accepts_an_invite_once(
    client, settings, operator, django_user_model
):
    settings.WEBMAIL_SIGNUP = "invite"
    assert client.get(reverse("signup")).status_code == 404
    assert b"Create an account" not in client.get(reverse("login")).content
    invite, token = people.do_create_invite(operator, email="carol@example.test")
    assert token not in str(Invite.objects.values_list("token_hash", flat=True)[0])

    page = client.get(reverse("signup_invite", args=[token]))
    assert page.status_code == 200 and b"carol@example.test" in page.content
    response = client.post(reverse("signup_invite", args=[token]), signup_data(email="carol@example.test"))
    assert response.status_code == 302
    carol = django_user_model.objects.get(username="carol")
    invite.refresh_from_db()
    assert invite.used_by == carol and invite.used_at is not None
    assert carol.profile.email_verified_at is not None  # the invite was addressed to it

    client.logout()
    again = client.post(reverse("signup_invite", args=[token]), signup_data(username="dave"))
    assert again.status_code == 404
    assert not django_user_model.objects.filter(username="dave").exists()


def test_an_expired_invite_does_not_work(client, settings, operator):
    settings.WEBMAIL_SIGNUP = "invite"
    invite, token = people.do_create_invite(operator)
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("signup_invite", args=[token])).status_code == 404
    assert client.get(reverse("signup_invite", args=["made-up"])).status_code == 404


def test_closed_signup_refuses_invites_too(client, settings, operator):
    settings.WEBMAIL_SIGNUP = "closed"
    _, token = people.do_create_invite(operator)
    assert client.get(reverse("signup_invite", args=[token])).status_code == 404
    assert client.get(reverse("signup")).status_code == 404


def test_staff_make_invites_on_the_dashboard(client, settings, operator):
    settings.WEBMAIL_SIGNUP = "invite"
    client.force_login(operator)
    response = client.post(reverse("dashboard:invites"), {"email": "", "note": "for Dana", "days": 3})
    assert response.status_code == 200
    link = response.context["link"]
    assert "/settings/signup/invite/" in link
    invite = Invite.objects.get()
    assert invite.created_by == operator and invite.note == "for Dana"
    assert timedelta(days=2, hours=23) < invite.expires_at - timezone.now() <= timedelta(days=3)
    client.post(reverse("dashboard:invite_revoke", args=[invite.pk]))
    invite.refresh_from_db()
    assert not invite.usable
