"""Sign-up, log-in and the mail account pages, as alice and as bob."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, ConnectionCheck, Identity, MailAccount
from tests.accounts.factories import make_account
from tests.accounts.test_forms import GOOD
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_renders_with_labels(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<label for="id_username">' in body and '<label for="id_password">' in body
    assert "Content-Security-Policy" in response.headers
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_home_redirects_anonymous_people_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_it_signs_up_and_logs_in(client, django_user_model):
    response = client.post(
        reverse("signup"),
        {"username": "carol", "email": "", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response.url == reverse("mail_account_add")
    user = django_user_model.objects.get(username="carol")
    assert AuditEvent.objects.filter(user=user, kind="signup").exists()
    assert client.get(reverse("home")).status_code == 200


def test_signup_shows_field_errors_for_mismatched_passwords(client, django_user_model):
    response = client.post(
        reverse("signup"), {"username": "carol", "password1": PASSWORD, "password2": "nope"}
    )
    assert response.status_code == 200
    assert "password2" in response.context["form"].errors
    assert not django_user_model.objects.filter(username="carol").exists()


def test_signup_can_be_turned_off(client, settings):
    settings.WEBMAIL_SIGNUP = "closed"
    assert client.get(reverse("signup")).status_code == 404
    assert b"Create an account" not in client.get(reverse("login")).content


def test_login_and_failed_login_are_audited(client, alice):
    client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert AuditEvent.objects.filter(kind="login_failed", detail__username="alice").exists()
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(kind="login", user=alice).exists()
    assert "wrong" not in repr(list(AuditEvent.objects.values()))


def test_logout_needs_post(client, alice):
    client.force_login(alice)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302


def test_password_change_and_reset_pages_render(client, alice):
    assert client.get(reverse("password_reset")).status_code == 200
    client.force_login(alice)
    assert client.get(reverse("password_change")).status_code == 200


def test_it_adds_an_account_with_a_default_identity_and_requests_a_check(
    client, alice, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("mail_account_add"), GOOD)
    account = MailAccount.objects.get(user=alice)
    check = ConnectionCheck.objects.get(account=account)
    assert response.status_code == 302
    assert response.url == reverse("mail_account_edit_check", args=[account.pk, check.pk])
    assert len(callbacks) == 1  # the Celery task, enqueued after commit
    assert account.get_incoming_password() == "pw"
    assert Identity.objects.filter(account=account, is_default=True, email="alice@example.test").exists()


def test_add_form_shows_errors_instead_of_failing(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("mail_account_add"), {**GOOD, "incoming_port": "70000", "smtp_host": "a b"}
    )
    assert response.status_code == 200
    assert not MailAccount.objects.exists()
    body = response.content.decode()
    assert "Enter a port number from 1 to 65535." in body


def test_passwords_are_never_sent_back_to_the_browser(client, alice):
    account = make_account(alice, password="hunter2-secret", smtp_password="smtp-secret")
    client.force_login(alice)
    body = client.get(reverse("mail_account_edit", args=[account.pk])).content.decode()
    assert "hunter2-secret" not in body and "smtp-secret" not in body
    assert account.incoming_password_token not in body


def test_edit_with_blank_password_keeps_the_stored_one(client, alice):
    account = make_account(alice, password="keep-me")
    client.force_login(alice)
    data = {**GOOD, "incoming_password": "", "name": "Renamed"}
    response = client.post(reverse("mail_account_edit", args=[account.pk]), data)
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed"
    assert account.get_incoming_password() == "keep-me"


@pytest.mark.parametrize("name", ["mail_account_edit", "mail_account_remove", "connection_check_start"])
def test_bob_cannot_reach_alices_account(client, alice, bob, name):
    account = make_account(alice)
    client.force_login(bob)
    method = client.post if name == "connection_check_start" else client.get
    assert method(reverse(name, args=[account.pk])).status_code == 404
    assert client.post(reverse("mail_account_remove", args=[account.pk])).status_code == 404
    assert MailAccount.objects.filter(pk=account.pk).exists()


def test_bob_cannot_read_alices_connection_check(client, alice, bob):
    account = make_account(alice)
    check = ConnectionCheck.objects.create(account=account)
    client.force_login(bob)
    assert client.get(reverse("connection_check_status", args=[account.pk, check.pk])).status_code == 404


def test_it_removes_an_account_after_confirmation(client, alice):
    account = make_account(alice)
    client.force_login(alice)
    assert client.get(reverse("mail_account_remove", args=[account.pk])).status_code == 200
    assert client.post(reverse("mail_account_remove", args=[account.pk])).status_code == 302
    assert not MailAccount.objects.filter(pk=account.pk).exists()
    assert AuditEvent.objects.filter(kind="mail_account_removed", user=alice).exists()


def test_state_changes_need_csrf(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    account = make_account(alice)
    assert client.post(reverse("mail_account_remove", args=[account.pk])).status_code == 403
    assert client.post(reverse("connection_check_start", args=[account.pk])).status_code == 403


def test_preset_fills_in_known_provider(client, alice):
    client.force_login(alice)
    response = client.get(
        reverse("mail_account_preset"), {"email": "someone@gmail.com"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert 'value="imap.gmail.com"' in body and 'value="smtp.gmail.com"' in body
    response = client.get(reverse("mail_account_add"), {"email": "me@corp.example"})
    assert 'value="imap.corp.example"' in response.content.decode()


def test_account_limit_is_enforced(client, alice, settings):
    settings.WEBMAIL_MAX_ACCOUNTS_PER_PERSON = 1
    make_account(alice)
    client.force_login(alice)
    response = client.post(reverse("mail_account_add"), GOOD)
    assert response.status_code == 302
    assert MailAccount.objects.filter(user=alice).count() == 1
