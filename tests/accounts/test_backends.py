"""The sign-in backend: the person read by a prepared query, old sessions kept, a password checked once."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth import signals
from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse

from accounts.backends import PATH, ModelBackend
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_sign_in_stores_this_backend_and_the_next_page_knows_the_person(client, alice):
    assert client.post(reverse("login"), {"username": "alice", "password": PASSWORD}).status_code == 302
    assert client.session["_auth_user_backend"] == PATH
    assert client.get("/").wsgi_request.user == alice


def test_a_session_made_with_djangos_backend_still_signs_in(client, alice):
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/")
    assert response.status_code == 200 and response.wsgi_request.user == alice


def test_a_wrong_password_is_checked_once_and_reported_once(client, alice):
    failures = []

    def record(sender, credentials, **kwargs):
        failures.append(credentials.get("username"))

    signals.user_login_failed.connect(record)
    real = AbstractBaseUser.check_password
    with mock.patch.object(AbstractBaseUser, "check_password", autospec=True, side_effect=real) as checked:
        response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    signals.user_login_failed.disconnect(record)
    assert response.status_code == 200  # the form again, with its error
    assert checked.call_count == 1
    assert failures == ["alice"]


def test_get_user_refuses_inactive_missing_and_garbled_ids(alice):
    backend = ModelBackend()
    assert backend.get_user(alice.pk) == alice
    assert backend.get_user(str(alice.pk)) == alice
    assert backend.get_user(alice.pk + 1000) is None
    assert backend.get_user("x") is None
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert backend.get_user(alice.pk) is None
